import numpy as np

from companion.evaluation.scans import query_excerpts, scan_work_for
from companion.training.render_pairs import (
    RenderedPiece,
    _system_geometry,
    chopin_pieces,
    pairs_from_piece,
    passages_from_piece,
)

SVG = """<svg><svg class="definition-scale" viewBox="0 0 21000 29700">
<g class="page-margin" transform="translate(500, 500)">
<g id="s1" class="system"><g id="st" class="staff">
<path d="M0 1000 L5000 1000" stroke-width="13" /><path d="M0 1720 L5000 1720" stroke-width="13" />
<g id="note-a" class="note"><g class="notehead"><use xlink:href="#E0A4" transform="translate(2400, 1200) scale(0.72, 0.72)" /></g>
<g class="stem"><path d="M2410 1230 L2410 1994" stroke-width="18" /></g></g>
</g></g>
<g id="s2" class="system"><g class="staff"><path d="M0 3000 L5000 3000" stroke-width="13" /></g></g>
</g></svg></svg>"""


def test_system_geometry_reads_staves_and_noteheads():
    width, systems = _system_geometry(SVG)
    assert width == 21000
    assert len(systems) == 2
    top, bottom, notes = systems[0]
    assert (top, bottom) == (1500, 2220)  # staff lines + page margin; the vertical stem is not a staff line
    assert notes == [("note-a", 2900.0, 1700.0)]


def test_pairs_centre_on_notes_and_onsets():
    strip = np.full((80, 300), 255, np.uint8)
    strip[:, 150] = 0  # a vertical mark at x = 150
    spec = np.zeros((92, 200), np.float32)
    spec[:, 40] = 1.0  # an event at frame 40 (2.0 s)
    rp = RenderedPiece("p", [strip], [(0, 150.0, 2.0), (0, 150.0, 2.0), (0, 20.0, 0.0)], spec)
    sheet, audio, onset = pairs_from_piece(rp, sheet_ctx=10, audio_ctx=20)
    assert sheet.shape == (2, 80, 120) and audio.shape == (2, 92, 82)  # chord notes share one pair
    assert onset.tolist() == [0.0, 2.0]
    assert sheet[1, 0, 60] == 0  # the mark sits in the centre column
    assert audio[1, 0, 41].astype(np.float32) == 1.0  # the event sits at the centre frame
    assert sheet[0, 0, :30].min() == 255  # padded with paper left of the strip
    passages = passages_from_piece(rp)
    assert len(passages) == 1 and passages[0][1].shape[0] == 92


def test_chopin_piece_keys_merge_editions_and_skip_parts(tmp_path):
    for name in ["009-1-KI-001.krn", "009-1b-Sm-001.krn", "013-1-Sm.krn", "013-1a-X-013.krn",
                 "008-1-Sm-001-piano.krn", "003-1-Sm-violoncello.krn", "GDC-1-Sm.krn"]:
        (tmp_path / name).write_text("**kern\n*-\n")
    keys = chopin_pieces(tmp_path)
    assert sorted(keys) == ["GDC", "op009-001", "op013-001"]
    assert keys["op009-001"].name == "009-1-KI-001.krn"


def test_scan_mapping_and_query_excerpts():
    assert scan_work_for("op028-024") == "chopin-frederic-preludes-op-28"
    assert scan_work_for("op072-001") == "chopin-frederic-nocturne-in-e-minor-op-72-no-1"
    assert scan_work_for("op072-003") is None and scan_work_for("op001-001") is None
    q = query_excerpts(np.ones((92, 1000), np.float32), start=100, seconds=30.0, hop=10)
    assert q.shape == ((600 - 42) // 10 + 1, 92, 42)


def test_merge_pairsets_offsets_pieces_and_passages(tmp_path):
    from companion.training.data import PairSet, PassageSet, synthetic_pairs, synthetic_passages
    from companion.training.render_pairs import merge_pairsets

    parts = []
    for i in range(2):
        p = synthetic_pairs(n_pieces=5, per_piece=4, seed=i)
        p.pieces = [f"s{i}_{n}" for n in p.pieces]
        p.splits = {k: [f"s{i}_{n}" for n in v] for k, v in p.splits.items()}
        p.save(tmp_path / f"p{i}")
        q = synthetic_passages(n_pieces=5, per_piece=2, seed=i)
        q.pieces, q.splits = p.pieces, p.splits
        q.save(tmp_path / f"p{i}" / "passages")
        parts.append(tmp_path / f"p{i}")
    merge_pairsets(parts, tmp_path / "m")
    m = PairSet.load(tmp_path / "m")
    assert len(m) == 40 and len(m.pieces) == 10 and np.bincount(m.piece).tolist() == [4] * 10
    assert m.pieces[int(m.piece[-1])] == "s1_piece004"
    ps = PassageSet.load(tmp_path / "m" / "passages")
    second = PassageSet.load(parts[1] / "passages")
    assert len(ps) == 20 and np.array_equal(ps.strip(10), second.strip(0))
    assert len(ps.indices("train")) == 12
