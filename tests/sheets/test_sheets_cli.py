"""``companion systems`` and ``companion bench systems`` on PDFs the tests make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from sheets_helpers import draw_page, image_pdf, layout

from companion.cli import main
from companion.sheets.bench import match, vertical_iou
from companion.sheets.degrade import Degradation, Rotation, degrade_image


def _score(tmp_path: Path, name: str = "score.pdf", pages=((2, 2, 2, 2), (2, 2, 2))) -> tuple[Path, list]:
    layouts = [layout(list(p), space=8.0, top=120) for p in pages]
    imgs = [draw_page(lay, seed=i).image for i, lay in enumerate(layouts)]
    imgs.append(np.full((1181, 835), 255, np.uint8))  # a blank last page
    path = tmp_path / name
    path.write_bytes(image_pdf(imgs))
    return path, layouts


def test_systems_json(tmp_path, capsys):
    path, layouts = _score(tmp_path)
    assert main(["systems", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    pages = out["pages"]
    assert [p["page"] for p in pages] == [0, 1, 2]
    assert all(p["width"] == 835 and abs(p["height"] - 1181) <= 1 for p in pages)
    assert [len(p["systems"]) for p in pages] == [4, 3, 0]
    for p, lay in zip(pages, layouts):
        for box, sys_ in zip(p["systems"], lay):
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= 1.0 and y0 < y1
            # fractions of the page WIDTH, for y too
            assert y0 * 835 < sys_.top < sys_.bottom < y1 * 835
        assert p["n_staves"] == [2] * len(lay)


def test_systems_text_and_png(tmp_path, capsys):
    path, _ = _score(tmp_path)
    out_dir = tmp_path / "png"
    assert main(["systems", str(path), "--png", str(out_dir), "--pages", "1-2"]) == 0
    text = capsys.readouterr().out
    assert "page 1: 4 systems" in text and "page 2: 3 systems" in text
    pngs = sorted(out_dir.glob("*.png"))
    assert [p.name for p in pngs] == ["score-p001.png", "score-p002.png"]
    pix = pymupdf.Pixmap(str(pngs[0]))
    assert pix.width == 835 and pix.n >= 3
    rgb = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, pix.n)
    green = (rgb[..., 1] > 150) & (rgb[..., 0] < 60) & (rgb[..., 2] < 60)
    assert green.sum() > 4 * 2 * 700  # four boxes drawn


def test_systems_bad_input_is_a_message_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\n garbage")
    assert main(["systems", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("companion:") and "Traceback" not in err
    assert main(["systems", str(tmp_path / "none.pdf")]) == 1
    assert "no such file" in capsys.readouterr().err


def _annotate(path: Path, layouts, width: int = 835) -> None:
    systems = []
    for page, lay in enumerate(layouts):
        for s in lay:  # loose bands, as in the real annotations
            m = 5 * s.space
            systems.append({"page": page, "x0": (s.x0 - 10) / width, "y0": (s.top - m) / width,
                            "x1": (s.x1 + 10) / width, "y1": (s.bottom + m) / width})
    path.with_name(path.stem + ".systems.json").write_text(json.dumps({"systems": systems}))


def test_bench_systems_scores_annotated_pdfs(tmp_path, capsys):
    path, layouts = _score(tmp_path)
    _annotate(path, layouts)
    (tmp_path / "unannotated.pdf").write_bytes(path.read_bytes())  # ignored: no .systems.json
    assert main(["bench", "systems", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["precision"] == 1.0 and res["recall"] == 1.0 and res["f1"] == 1.0
    assert res["pages"] == 3 and res["systems_annotated"] == 7 and res["sec_per_page"] > 0
    # an annotation file missing one system: that detection is now unmatched (precision drops)
    data = json.loads(path.with_name("score.systems.json").read_text())
    data["systems"] = data["systems"][1:]
    path.with_name("score.systems.json").write_text(json.dumps(data))
    assert main(["bench", "systems", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["recall"] == 1.0 and res["precision"] == pytest.approx(6 / 7, abs=1e-3)


def test_bench_systems_degraded(tmp_path, capsys):
    path, layouts = _score(tmp_path, pages=((2, 2, 2, 2),))
    _annotate(path, layouts)
    assert main(["bench", "systems", str(tmp_path), "--degrade", "--json", "--seed", "3"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["degraded"] is True and res["f1"] == 1.0
    assert main(["bench", "systems", str(tmp_path / "nothing-here")]) == 1


def test_matching_is_one_to_one():
    assert vertical_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert match([(0, 10), (0, 10)], [(0, 10)]) == 1
    assert match([(0, 10), (20, 30)], [(1, 11), (19, 29), (50, 60)]) == 2
    assert match([(0, 10)], [(8, 30)]) == 0


def test_degradation_is_seeded_and_rotation_maps_boxes():
    img = np.full((700, 500), 255, np.uint8)
    img[300:310, 100:400] = 0  # a bar; its box in page-width fractions:
    box = (100 / 500, 300 / 500, 400 / 500, 310 / 500)
    d = Degradation(angle=2.0, blur_sigma=0.0, noise_sigma=0.0)
    a, rot_a = degrade_image(img, np.random.default_rng(5), d)
    b, rot_b = degrade_image(img, np.random.default_rng(5), d)
    assert np.array_equal(a, b) and rot_a == rot_b
    rows = np.flatnonzero((a < 128).any(axis=1))
    y0, y1 = rot_a.transform_band(box, 500)
    assert abs(rows.min() - y0) <= 2 and abs(rows.max() + 1 - y1) <= 2
    assert isinstance(rot_a, Rotation) and abs(rot_a.degrees) == 2.0
