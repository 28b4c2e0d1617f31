"""PDF pages as images: a normalised analysis image and cached display renderings.

Why pymupdf renders straight to the analysis size: decoding a 300-dpi CCITT or
JBIG2 scan and scaling it inside MuPDF to 835 px width (greyscale) costs about
20 ms, far less than rendering at full resolution and scaling in numpy. Rotated
and landscape pages come out upright because MuPDF applies ``/Rotate``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from companion.config import SheetConfig
from companion.errors import SheetError

log = logging.getLogger(__name__)

MAX_ASPECT = 8.0
"""Pages taller than this many widths (or wider than this many heights) are refused."""
MAX_DISPLAY_PIXELS = 40_000_000
"""A display rendering larger than this is made at a lower resolution instead."""


def _pymupdf():
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    # Engraved PDFs draw staff lines as hairlines that would render light grey at
    # 835 px; a minimum stroke of one device pixel keeps them as ink.
    pymupdf.TOOLS.set_graphics_min_line_width(1.0)
    return pymupdf


class Document:
    """An opened PDF. Thread-safe: MuPDF calls are serialised by a lock."""

    def __init__(self, path: Path, doc, cfg: SheetConfig, cache_size: int = 8) -> None:
        self.path = path
        self._doc = doc
        self._cfg = cfg
        self._lock = threading.RLock()
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        meta = doc.metadata or {}
        self.metadata: dict[str, str] = {
            "title": (meta.get("title") or "").strip(),
            "author": (meta.get("author") or "").strip(),
            "subject": (meta.get("subject") or "").strip(),
        }

    @property
    def n_pages(self) -> int:
        return self._doc.page_count

    page_count = n_pages

    @property
    def title(self) -> str:
        return self.metadata["title"]

    @property
    def author(self) -> str:
        return self.metadata["author"]

    def __len__(self) -> int:
        return self.n_pages

    def __enter__(self) -> "Document":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._doc.close()

    def _page(self, number: int):
        if not 0 <= number < self.n_pages:
            raise SheetError(f"{self.path.name}: page {number} does not exist ({self.n_pages} pages)")
        try:
            page = self._doc[number]
        except Exception as exc:  # damaged page tree
            raise SheetError(f"{self.path.name}: page {number + 1} cannot be read ({exc})") from exc
        r = page.rect
        if r.width <= 1 or r.height <= 1:
            raise SheetError(f"{self.path.name}: page {number + 1} has no area")
        if r.height / r.width > MAX_ASPECT or r.width / r.height > MAX_ASPECT:
            raise SheetError(f"{self.path.name}: page {number + 1} has an unusable shape "
                             f"({r.width:.0f} x {r.height:.0f} pt)")
        return page

    def _render(self, page, zoom: float) -> np.ndarray:
        fitz = _pymupdf()
        try:
            pix = page.get_pixmap(matrix=fitz.Matrix(zoom, zoom), colorspace=fitz.csGRAY, alpha=False)
        except Exception as exc:
            raise SheetError(f"{self.path.name}: page {page.number + 1} cannot be rendered ({exc})") from exc
        arr = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
        return arr.copy()

    def render_analysis(self, number: int) -> np.ndarray:
        """Greyscale ``uint8`` page, ``analysis_width`` px wide (white = 255)."""
        with self._lock:
            page = self._page(number)
            zoom = self._cfg.analysis_width / page.rect.width
            img = self._render(page, zoom)
        if img.shape[1] != self._cfg.analysis_width:  # rounding in MuPDF
            img = _fit_width(img, self._cfg.analysis_width)
        return img

    render = render_analysis

    def render_width(self, number: int, width: int) -> np.ndarray:
        """Greyscale page scaled to ``width`` px (for tools that need another scale)."""
        with self._lock:
            page = self._page(number)
            img = self._render(page, width / page.rect.width)
        return img if img.shape[1] == width else _fit_width(img, width)

    def render_display(self, number: int, dpi: int | None = None) -> np.ndarray:
        """Greyscale ``uint8`` page at ``dpi`` (default: the configured display dpi), cached.

        Why a cache: the GUI repaints and turns back and forth between a few pages.
        """
        dpi = int(dpi or self._cfg.display_dpi)
        key = (number, dpi)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            page = self._page(number)
            zoom = dpi / 72.0
            pixels = page.rect.width * page.rect.height * zoom * zoom
            if pixels > MAX_DISPLAY_PIXELS:
                zoom *= 0.99 * (MAX_DISPLAY_PIXELS / pixels) ** 0.5
            img = self._render(page, zoom)
            img.setflags(write=False)
            self._cache[key] = img
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return img

    def analysis_scale(self, number: int) -> float:
        """Analysis pixels per PDF point on page ``number`` (to map boxes to the page)."""
        with self._lock:
            return self._cfg.analysis_width / self._page(number).rect.width


def _fit_width(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape
    xs = np.clip(np.round(np.arange(width) * w / width).astype(int), 0, w - 1)
    return img[:, xs]


def _validated(doc, name: str):
    """Refuse encrypted and empty documents with a message (closing them)."""
    try:
        if doc.needs_pass and not doc.authenticate(""):
            raise SheetError(f"{name} is password-protected; save an unprotected copy and add that")
        if doc.page_count == 0:
            raise SheetError(f"{name} has no pages (the file may be truncated or damaged)")
    except SheetError:
        doc.close()
        raise
    except Exception as exc:
        doc.close()
        raise SheetError(f"{name}: not a readable PDF: {exc}") from exc
    return doc


def open_bytes(data: bytes, cfg: SheetConfig | None = None, name: str = "document.pdf") -> Document:
    """Open a PDF held in memory (same checks as :func:`open_document`)."""
    fitz = _pymupdf()
    try:
        doc = fitz.open(stream=data, filetype="pdf")
    except Exception as exc:
        raise SheetError(f"{name}: not a readable PDF (damaged or another format): {exc}") from exc
    return Document(Path(name), _validated(doc, name), cfg or SheetConfig())


def open_document(path: str | Path, cfg: SheetConfig | None = None) -> Document:
    """Open a PDF for analysis and display.

    Raises :class:`SheetError` with a message a user can act on for a missing,
    damaged, encrypted or empty file.
    """
    path = Path(path)
    cfg = cfg or SheetConfig()
    if not path.exists():
        raise SheetError(f"{path}: no such file")
    if path.is_dir():
        raise SheetError(f"{path}: is a folder, not a PDF")
    fitz = _pymupdf()
    try:
        doc = fitz.open(str(path), filetype="pdf")
    except Exception as exc:
        raise SheetError(f"{path.name}: not a readable PDF (damaged or another format): {exc}") from exc
    return Document(path, _validated(doc, path.name), cfg)
