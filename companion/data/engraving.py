"""What an engraver hands to the corpus builder, whichever engraver it was.

Why a common shape: verovio and LilyPond reach noteheads and onsets by very
different routes (SVG ids + time map versus point-and-click links + event
listener); after this point the pipeline must not care which one ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np


@dataclass
class NoteEvent:
    """One sounding of a note in score time (seconds at the notated tempo)."""

    note_id: str
    pitch: int
    onset: float
    offset: float


@dataclass
class Notehead:
    """A notehead on a page, in pixels of the stored page image (centre of the head)."""

    note_id: str
    page: int
    system: int  # index into EngravedScore.systems
    x: float
    y: float


@dataclass
class SystemBox:
    page: int
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass
class EngravedScore:
    engraver: str
    pages: list[np.ndarray]  # uint8 greyscale, white = 255
    systems: list[SystemBox]
    noteheads: list[Notehead]
    events: list[NoteEvent]
    bar_times: list[float] = field(default_factory=list)  # score seconds of bar starts
    params: dict = field(default_factory=dict)
    # How repeats were performed: "none" (the score has none), "expanded" (each
    # notehead has one event per time it sounds), or "not-expanded: <reason>"
    # (notated order, every notehead sounds once).
    repeats: str = "none"


def svg_to_png_array(svg: str, width: int) -> np.ndarray:
    """Rasterise an SVG page to a greyscale array ``width`` pixels wide.

    MuPDF ignores verovio's nested ``<svg viewBox>`` page, so it is flattened into
    a group under a root viewBox first.
    """
    import pymupdf

    m = re.search(r'<svg class="definition-scale"[^>]*?viewBox="([^"]+)"[^>]*>', svg)
    if m:
        vb = m.group(1)
        svg = svg.replace(m.group(0), '<g class="definition-scale" fill="black" stroke="black">', 1)
        last = svg.rfind("</svg>")
        inner = svg.rfind("</svg>", 0, last)
        svg = svg[:inner] + "</g>" + svg[inner + 6:]
        svg = re.sub(r"<svg ([^>]*?)>", lambda mm: f'<svg {_strip_viewbox(mm.group(1))} viewBox="{vb}">', svg, count=1)
    doc = pymupdf.open(stream=svg.encode("utf-8"), filetype="svg")
    try:
        page = doc[0]
        zoom = width / page.rect.width
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
        arr = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
        return arr.copy()
    finally:
        doc.close()


def _strip_viewbox(attrs: str) -> str:
    return re.sub(r'\s*viewBox="[^"]*"', "", attrs)
