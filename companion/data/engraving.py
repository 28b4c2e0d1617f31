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


def unfold_segments(marks: list[tuple[str, float, int, str]]) -> tuple[list[tuple[float, float]], str]:
    """Folded (notated) time spans ``[a, b)`` in playing order, and the repeat status.

    ``marks`` are (kind, time, number, text) records in any one time unit
    (LilyPond moments, verovio seconds): ``rstart`` (repeat count), ``rend``
    (how often to return from here), ``volta`` (number -1 at a bracket's start,
    +1 at its end, as LilyPond's span-direction; its volta numbers in text,
    "1,2"), ``jump`` (segno, coda, fine, dal segno: not expanded). Played like a
    performer: at a repeat end return to the repeat start while returns are
    left; a volta bracket whose numbers exclude the current pass is skipped.
    """
    whole = [(0.0, float("inf"))]
    if not marks:
        return whole, "none"
    jumps = sorted({m[3] for m in marks if m[0] == "jump"})
    if jumps:
        return whole, f"not-expanded: {'/'.join(jumps)} jump (LilyPond does not unfold it either)"
    # Several staves send the same events: keep one of each.
    marks = sorted(set(marks), key=lambda m: m[1])
    starts = sorted({m[1] for m in marks if m[0] == "rstart"})
    ends = sorted({m[1] for m in marks if m[0] == "rend"})
    if not ends:
        return whole, "none"
    # Nested repeats: two starts with no end between them.
    for a, b in zip(starts, starts[1:]):
        if not any(a < e <= b for e in ends):
            return whole, "not-expanded: nested repeats"
    returns = {}
    for m in marks:
        if m[0] == "rend":
            returns[m[1]] = max(returns.get(m[1], 0), m[2])
    voltas: dict[float, tuple[float, set[int]]] = {}
    open_at: dict[str, float] = {}
    for m in marks:
        if m[0] != "volta":
            continue
        if m[2] < 0:
            open_at[m[3]] = m[1]
        elif m[3] in open_at:
            a = open_at.pop(m[3])
            try:
                nums = {int(x) for x in m[3].split(",") if x.strip()}
            except ValueError:
                return whole, f"not-expanded: volta numbers {m[3]!r}"
            voltas[a] = (m[1], nums)
    if open_at:
        return whole, "not-expanded: a volta bracket without an end"
    times = sorted({m[1] for m in marks})
    spans: list[tuple[float, float]] = []
    done: dict[float, int] = {}
    rstart, passno, seg_start, t, jumped, leaving = 0.0, 1, 0.0, 0.0, False, False
    while len(spans) < 1000:
        # At time t: a repeat end (return?), then a repeat start, then a volta start (skip?).
        if t in returns and t > rstart:
            if done.get(t, 0) < returns[t]:
                done[t] = done.get(t, 0) + 1
                spans.append((seg_start, t))
                seg_start, t, passno, jumped = rstart, rstart, passno + 1, True
                continue
            # Leaving a finished repeat: a later repeat end with no start of its
            # own returns here (the usual reading of a lone ":|").
            rstart, leaving = t, True
            for e in [e for e in done if e > t]:
                done[e] = 0
        if t in starts and not jumped:
            rstart, passno, leaving = t, 1, False
            for e in [e for e in done if e > t]:
                done[e] = 0
        jumped = False
        if t in voltas:
            if passno not in voltas[t][1]:
                if t > seg_start:
                    spans.append((seg_start, t))
                seg_start = t = voltas[t][0]
                continue
        elif leaving:  # past the finished repeat's last volta bracket: a new pass count
            passno, leaving = 1, False
        later = [x for x in times if x > t]
        if not later:
            spans.append((seg_start, float("inf")))
            break
        t = later[0]
    else:
        return whole, "not-expanded: the repeat structure does not end"
    spans = [(a, b) for a, b in spans if b > a]
    return spans, ("expanded" if len(spans) > 1 else "none")
