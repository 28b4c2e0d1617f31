"""Sheet front end: PDF pages as images, systems found on them, strips and snippets.

Typical use (indexing)::

    from companion.sheets import open_document, detect_page, system_strip, cut_snippets

    with open_document("score.pdf") as doc:
        for page in range(doc.n_pages):
            image = doc.render_analysis(page)          # uint8, 835 px wide
            for system in detect_page(image, cfg.sheet):
                strip = system_strip(image, system)     # 160 x W
                snippets, xs = cut_snippets(strip)      # N x 80 x 100, left edges

The GUI uses ``doc.render_display(page, dpi)`` (cached) and maps analysis
pixels to display pixels by ``dpi / 72 / doc.analysis_scale(page)``.
"""

from __future__ import annotations

import time

import numpy as np

from companion.config import SheetConfig
from companion.sheets.detect import DetectOptions, System, detect_systems
from companion.sheets.document import Document, open_bytes, open_document
from companion.sheets.snippets import (
    PX_PER_SECOND,
    StripGeometry,
    cut_passage_snippets,
    cut_snippets,
    passage_strip,
    strip_geometry,
    system_strip,
)


def detect_page(image: np.ndarray, cfg: SheetConfig | None = None) -> list[System]:
    """:func:`detect_systems` under the configured per-page time limit.

    Raises :class:`~companion.errors.SheetError` when the page takes longer than
    ``cfg.page_time_limit_s``; callers skip that page.
    """
    cfg = cfg or SheetConfig()
    return detect_systems(image, DetectOptions(deadline=time.monotonic() + cfg.page_time_limit_s))


def snippets_for(image: np.ndarray, system: System, cfg: SheetConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Strip and snippets of one system with the configured sizes: (N x h x w uint8, x positions)."""
    cfg = cfg or SheetConfig()
    strip = system_strip(image, system, cfg.strip_height)
    return cut_snippets(strip, cfg.snippet_width, cfg.snippet_hop, tuple(cfg.snippet_size))


__all__ = [
    "PX_PER_SECOND",
    "DetectOptions",
    "Document",
    "StripGeometry",
    "System",
    "cut_passage_snippets",
    "cut_snippets",
    "detect_page",
    "detect_systems",
    "open_bytes",
    "open_document",
    "passage_strip",
    "snippets_for",
    "strip_geometry",
    "system_strip",
]
