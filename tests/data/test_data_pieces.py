"""Whole rendered pieces (demo and identification benchmark) from the corpus builder's tools."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pymupdf
import pytest
import soundfile as sf

from companion.data.pieces import render_piece, score_spans, sidecar, system_boxes
from companion.errors import DataError

pytest.importorskip("verovio")


def kern_score(measures: int = 48, repeat: bool = False) -> str:
    """A two-staff kern piece long enough for several systems; ``repeat``: the first 8 bars are repeated."""
    notes = ["c", "d", "e", "f", "g", "a", "b", "cc"]
    lines = ["**kern\t**kern", "*clefF4\t*clefG2", "*M4/4\t*M4/4", "*MM120\t*MM120"]
    if repeat:
        lines += ["*>[A,A,B]\t*>[A,A,B]", "*>A\t*>A"]
    for m in range(measures):
        if repeat and m == 8:
            lines.append("*>B\t*>B")
        for i in range(4):
            n = notes[(m + i) % len(notes)]
            lines.append(f"4{n.upper()}\t4{n}")
        lines.append(f"={m + 2}\t={m + 2}")
    lines.append("*-\t*-")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def kern_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("score") / "piece.krn"
    path.write_text(kern_score(), encoding="utf-8")
    return path


def test_engraving_spans_and_boxes_cover_every_system_in_reading_order(kern_file: Path) -> None:
    from companion.data import engrave_verovio

    score = engrave_verovio.engrave(kern_file, {"staff_line_width": 0.25}, 1240)
    spans = score_spans(score)
    assert [k for _, _, k in spans] == list(range(len(score.systems)))  # no repeat: each system once, in order
    assert len(spans) >= 4 and all(a < b for a, b, _ in spans)
    boxes = system_boxes(score)
    assert [b["page"] for b in boxes] == [s.page for s in score.systems]
    for a, b in zip(boxes, boxes[1:]):
        if a["page"] == b["page"]:
            assert a["y1"] <= b["y0"] + 0.02  # stacked, barely touching
    for b in boxes:
        assert 0 <= b["x0"] < b["x1"] <= 1 and 0 <= b["y0"] < b["y1"] < 1.5
        assert 0.05 < b["y1"] - b["y0"] < 0.5  # one two-staff system, not a page


def test_rendered_piece_with_a_jump_back(kern_file: Path, tmp_path: Path) -> None:
    piece = render_piece(str(kern_file), tmp_path, "piece", seed=1, boxes=True, jump=True)
    assert piece.jump is not None and piece.jump[1] < piece.jump[0]
    order = [k for _, _, k in piece.systems]
    back = [j for j in range(len(order) - 1) if order[j + 1] < order[j]]
    assert len(back) == 1 and order[back[0]] == piece.jump[0] and order[back[0] + 1] == piece.jump[1]
    assert sorted(set(order)) == list(range(max(order) + 1))  # every system is played
    audio, sr = sf.read(piece.audio)
    assert sr == 22050 and 0.5 < np.abs(audio).max() <= 0.8  # peak 0.7, plus Vorbis overshoot
    spans = piece.systems
    assert spans[0][0] == 0.0 and abs(spans[-1][1] - len(audio) / sr) < 0.01
    assert all(spans[j][1] == spans[j + 1][0] for j in range(len(spans) - 1))
    with pymupdf.open(piece.pdf) as doc:
        assert doc.page_count == piece.n_pages and doc.metadata["title"] == "piece"
    boxes = json.loads(sidecar(Path(piece.pdf)).read_text())["systems"]
    assert len(boxes) == max(order) + 1


def test_the_scores_own_repeat_is_played_and_no_jump_is_added(tmp_path: Path) -> None:
    path = tmp_path / "repeat.krn"
    path.write_text(kern_score(repeat=True), encoding="utf-8")
    piece = render_piece(str(path), tmp_path, "repeat", seed=2, jump=True, pdf=False, max_seconds=60)
    order = [k for _, _, k in piece.systems]
    assert piece.jump is None
    assert any(b < a for a, b in zip(order, order[1:]))  # the notated repeat goes back


def test_unknown_score_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="neither a file nor a music21 corpus work"):
        render_piece("no/such/work.mxl", tmp_path, "x")
