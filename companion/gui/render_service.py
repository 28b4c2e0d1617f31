"""Page rendering in a helper process (Qt-free: the child imports only pymupdf).

Why a process: pymupdf holds Python's GIL while it draws, and a 300-dpi scan
takes 0.5-1 s to draw at screen size: in a thread of the app's own process
that freezes the GUI thread for as long (measured: a 1-s stall for a 2800-px
render). In a child process the GUI thread only waits on a pipe, which does
not hold the GIL. The pool is started lazily with the "spawn" method (never
fork a process that runs Qt threads) and reused for every page.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import threading
from pathlib import Path

import pymupdf

from companion.errors import SheetError


def open_pdf(path: Path) -> "pymupdf.Document":
    """Open a PDF for display, with a user-facing error for files that cannot be shown."""
    path = Path(path)
    if not path.is_file():
        raise SheetError(f"the score {path} does not exist (moved or deleted?)")
    try:
        doc = pymupdf.open(path)
    except Exception as exc:
        raise SheetError(f"{path.name} cannot be opened as a PDF ({exc}); it may be damaged") from exc
    if doc.needs_pass:
        doc.close()
        raise SheetError(f"{path.name} is password-protected; save an unprotected copy to show it")
    if doc.page_count == 0:
        doc.close()
        raise SheetError(f"{path.name} has no pages")
    return doc


def render_rgb(path: str, page: int, width_px: int) -> tuple[int, int, int, bytes]:
    """One page ``width_px`` wide as packed RGB: (width, height, bytes per line, pixels)."""
    doc = open_pdf(Path(path))
    try:
        if not 0 <= page < doc.page_count:
            raise SheetError(f"{Path(path).name} has no page {page + 1}")
        p = doc[page]
        zoom = width_px / max(1.0, p.rect.width)
        try:
            pix = p.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB)
        except Exception as exc:
            raise SheetError(f"page {page + 1} of {Path(path).name} cannot be drawn ({exc})") from exc
        return pix.width, pix.height, pix.stride, bytes(pix.samples)
    finally:
        doc.close()


def page_sizes(path: Path) -> list[tuple[float, float]]:
    """Page sizes in points (fast: reads the page tree, draws nothing)."""
    doc = open_pdf(Path(path))
    try:
        return [(p.rect.width, p.rect.height) for p in doc]
    finally:
        doc.close()


class RenderPool:
    """A lazily started process pool for :func:`render_rgb` (thread-safe)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def render(self, path: str, page: int, width_px: int) -> tuple[int, int, int, bytes]:
        """Render in the child; waiting here does not hold the GIL."""
        with self._lock:
            if self._pool is None:
                self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
            pool = self._pool
        try:
            return pool.submit(render_rgb, path, page, width_px).result()
        except cf.process.BrokenProcessPool as exc:  # the child crashed (e.g. a malicious PDF): start afresh
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise SheetError(f"page {page + 1} of {Path(path).name} made the page renderer crash") from exc

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


SHARED_POOL = RenderPool()
"""The app's page renderer (one helper process, shared by every view and window)."""
