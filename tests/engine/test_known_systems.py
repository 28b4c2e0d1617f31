"""System boxes from the engraving, and the benchmark front end that uses them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from companion.engine.known_systems import KnownSystemsFrontEnd, boxes_from_svg, sidecar
from companion.engine.render import _toolkit, systems_of_pages
from companion.errors import SheetError

pytest.importorskip("verovio")


def kern_score(measures: int = 40) -> str:
    notes = ["c", "d", "e", "f", "g", "a", "b", "cc"]
    lines = ["**kern\t**kern", "*clefF4\t*clefG2", "*M4/4\t*M4/4"]
    for m in range(measures):
        for i in range(4):
            n = notes[(m + i) % len(notes)]
            lines.append(f"4{n.upper()}\t4{n}")
        lines.append(f"={m + 2}\t={m + 2}")
    lines.append("*-\t*-")
    return "\n".join(lines) + "\n"


def test_boxes_from_the_engraving_cover_every_system_in_reading_order() -> None:
    tk = _toolkit(kern_score(), seed=0)
    svgs = [tk.renderToSVG(p) for p in range(1, tk.getPageCount() + 1)]
    systems = systems_of_pages(svgs)
    boxes = boxes_from_svg(svgs)
    assert len(systems) >= 3 and len(boxes) == len(systems)
    assert [b["page"] for b in boxes] == [p for p, _ in systems]
    for a, b in zip(boxes, boxes[1:]):
        if a["page"] == b["page"]:
            assert a["y0"] < b["y0"]
    for b in boxes:
        assert 0 <= b["x0"] < b["x1"] <= 1 and 0 <= b["y0"] < b["y1"] < 1.5
        assert 0.05 < b["y1"] - b["y0"] < 0.5  # one two-staff system, not a page


def test_known_systems_front_end_cuts_snippets_and_strips(tmp_path: Path) -> None:
    pdf = tmp_path / "score.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    for y in (100, 400):
        for k in range(5):
            page.draw_line((60, y + 8 * k), (540, y + 8 * k), width=1.5)
            page.draw_line((60, y + 70 + 8 * k), (540, y + 70 + 8 * k), width=1.5)
    doc.save(pdf)
    boxes = [{"page": 0, "x0": 0.09, "y0": (y - 20) / 595, "x1": 0.92, "y1": (y + 130) / 595} for y in (400, 100)]
    sidecar(pdf).write_text(json.dumps({"systems": boxes}))
    fe = KnownSystemsFrontEnd()
    opened = fe.open(pdf)
    img = opened.render(0)
    assert img.shape[1] == 835
    systems = fe.detect(img, 0)
    assert len(systems) == 2 and systems[0].box[1] < systems[1].box[1]  # sorted top to bottom
    snippets, xs, strip = fe.cut(img, systems[0])
    assert snippets.shape[1:] == (80, 100) and snippets.dtype == np.uint8
    assert len(xs) == len(snippets) and np.all(np.diff(xs) == 50)
    assert strip.shape[0] == 80 and strip.min() < 200
    opened.close()
    with pytest.raises(SheetError, match="no system boxes"):
        fe.open(tmp_path / "other.pdf")
