"""Scan snippets for pre-training: annotated boxes where given, the system detector otherwise."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from companion.errors import CompanionError
from companion.training.scans import prepare_scan_snippets

def _sheets_helpers():
    """The sheet tests' page generator (loaded by path; registered so that its dataclasses work)."""
    if "sheets_helpers" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "sheets_helpers", Path(__file__).resolve().parents[1] / "sheets" / "sheets_helpers.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["sheets_helpers"] = module
        spec.loader.exec_module(module)
    return sys.modules["sheets_helpers"]


helpers = _sheets_helpers()


def _pdf(path: Path, pages: list[list[int]]) -> list:
    layouts = [helpers.layout(p, space=8.0, top=120) for p in pages]
    path.write_bytes(helpers.image_pdf([helpers.draw_page(lay, seed=i).image for i, lay in enumerate(layouts)]))
    return layouts


def test_pdfs_without_annotations_use_the_detected_systems(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    annotated = _pdf(scans / "annotated.pdf", [[2, 2]])
    boxes = [{"page": 0, "x0": s.x0 / 835, "x1": s.x1 / 835, "y0": (s.top - 20) / 835, "y1": (s.bottom + 20) / 835}
             for s in annotated[0]]
    (scans / "annotated.systems.json").write_text(json.dumps(boxes), encoding="utf-8")
    _pdf(scans / "My own scan.pdf", [[2, 2, 2], [2, 2]])  # no annotation file
    _pdf(scans / "Chopin op 10.pdf", [[2]])  # excluded by default
    (scans / "broken.pdf").write_bytes(b"%PDF-1.4 not really")

    summary = prepare_scan_snippets(scans, tmp_path / "out")
    assert summary["annotated"] == ["annotated"]
    assert summary["detected"] == [{"work": "My own scan", "systems": 5}], "every system of both pages was found"
    assert [s["work"] for s in summary["skipped"]] == ["broken"]
    assert "Chopin op 10" not in summary["works"]
    sheet = np.load(tmp_path / "out" / "sheet.npy")
    assert sheet.shape == (summary["snippets"], 80, 120) and sheet.dtype == np.uint8
    # ink in every snippet's middle (the staff lines run across the whole system)
    assert (sheet[:, :, 10:110].min(axis=(1, 2)) < 128).all()
    only_annotated = prepare_scan_snippets(scans, tmp_path / "out2", exclude=("chopin", "own"))
    assert summary["snippets"] > only_annotated["snippets"] > 0
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["summary"]["snippets"] == summary["snippets"]


def test_no_usable_scan_is_a_clear_error(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "broken.pdf").write_bytes(b"nothing")
    with pytest.raises(CompanionError, match="no usable scans.*broken"):
        prepare_scan_snippets(scans, tmp_path / "out")
    with pytest.raises(CompanionError, match="not found"):
        prepare_scan_snippets(tmp_path / "missing", tmp_path / "out")
