"""The benchmark front end that takes system boxes from a sidecar (boxes from the engraving: tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from companion.data.pieces import sidecar
from companion.engine.known_systems import KnownSystemsFrontEnd
from companion.errors import SheetError


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
