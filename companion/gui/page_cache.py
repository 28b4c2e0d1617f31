"""PDF pages as images for display: rendered in workers, cached, prefetched.

Why here and not in the view: rendering a page takes 20-200 ms, far over the
GUI thread's 50-ms budget, so every render runs in a worker; the view asks
for ``(page, width)`` and gets ``None`` (a placeholder, or a scaled copy of
any cached size: smooth zoom) until the exact size arrives with the
``page_ready`` signal. Widths are rounded up to a step so that zooming does
not render every intermediate size, and the cache is bounded in bytes.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from companion.gui.render_service import SHARED_POOL, RenderPool, page_sizes, render_rgb
from companion.gui.workers import TaskContext, TaskRunner

__all__ = ["PageCache", "page_sizes", "render_page"]

log = logging.getLogger(__name__)

WIDTH_STEP = 64
"""Rendered widths are multiples of this (pixels)."""


def render_page(path: Path, page: int, width_px: int, pool: RenderPool | None = None) -> QImage:
    """One page, ``width_px`` wide, as a QImage (call off the GUI thread; drawn in ``pool`` if given)."""
    w, h, stride, pixels = (pool.render(str(path), page, width_px) if pool is not None
                            else render_rgb(str(path), page, width_px))
    image = QImage(pixels, w, h, stride, QImage.Format.Format_RGB888)
    return image.copy()  # own the pixels: the bytes object may go away


class PageCache(QObject):
    """An LRU cache of rendered pages of any number of PDFs, filled by workers."""

    page_ready = Signal(str, int, int)
    """path, page, width: a requested page is now in the cache."""
    page_failed = Signal(str, int, str)

    def __init__(self, runner: TaskRunner, max_bytes: int = 256 * 1024 * 1024, parent: QObject | None = None,
                 pool: RenderPool | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.pool = pool if pool is not None else SHARED_POOL
        self.max_bytes = max_bytes
        self._images: OrderedDict[tuple[str, int, int], QImage] = OrderedDict()
        self._bytes = 0
        self._pending: set[tuple[str, int, int]] = set()
        self._failed: dict[tuple[str, int], str] = {}
        self.renders = 0
        """Pages rendered so far (for tests and the status bar)."""

    @staticmethod
    def step(width_px: int) -> int:
        return max(WIDTH_STEP, -(-int(width_px) // WIDTH_STEP) * WIDTH_STEP)

    def get(self, path: str, page: int, width_px: int) -> QImage | None:
        """The page at exactly the (stepped) width if cached; else schedule it and return None."""
        key = (str(path), page, self.step(width_px))
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
            return image
        self.request(*key)
        return None

    def get_cached(self, path: str, page: int, width_px: int) -> QImage | None:
        """The page at the (stepped) width if cached; never schedules a render."""
        key = (str(path), page, self.step(width_px))
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
        return image

    def any_size(self, path: str, page: int) -> QImage | None:
        """The largest cached rendering of the page (to show scaled while the exact one renders)."""
        best: QImage | None = None
        for (p, n, _w), image in self._images.items():
            if p == str(path) and n == page and (best is None or image.width() > best.width()):
                best = image
        return best

    def error(self, path: str, page: int) -> str | None:
        return self._failed.get((str(path), page))

    def request(self, path: str, page: int, width_px: int) -> None:
        key = (str(path), page, self.step(width_px))
        if key in self._images or key in self._pending or (key[0], page) in self._failed:
            return
        self._pending.add(key)
        self.runner.start(
            f"render {Path(path).name} p{page + 1}",
            _render_task, self.pool, key[0], page, key[2],
            on_finished=lambda image, k=key: self._store(k, image),
            on_failed=lambda message, user, k=key: self._fail(k, message),
            on_cancelled=lambda k=key: self._pending.discard(k),
        )

    def _store(self, key: tuple[str, int, int], image: QImage) -> None:
        self._pending.discard(key)
        self.renders += 1
        self._images[key] = image
        self._bytes += image.sizeInBytes()
        while self._bytes > self.max_bytes and len(self._images) > 1:
            _, old = self._images.popitem(last=False)
            self._bytes -= old.sizeInBytes()
        self.page_ready.emit(*key)

    def _fail(self, key: tuple[str, int, int], message: str) -> None:
        self._pending.discard(key)
        self._failed[(key[0], key[1])] = message
        self.page_failed.emit(key[0], key[1], message)

    def clear(self, path: str | None = None) -> None:
        for key in [k for k in self._images if path is None or k[0] == str(path)]:
            self._bytes -= self._images.pop(key).sizeInBytes()
        self._failed = {k: v for k, v in self._failed.items() if path is not None and k[0] != str(path)}

    def shutdown(self) -> None:
        """Stop a private pool (the shared one lives as long as the app)."""
        if self.pool is not SHARED_POOL:
            self.pool.shutdown()

    @property
    def pending(self) -> int:
        return len(self._pending)


def _render_task(ctx: TaskContext, pool: RenderPool, path: str, page: int, width_px: int) -> QImage:
    ctx.check()
    return render_page(Path(path), page, width_px, pool)
