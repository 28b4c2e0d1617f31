"""Training pairs cut from a built corpus: shapes, alignment with the spectrogram, splits, exclusion, atomicity."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE
from companion.training.data import DataError, PairSet, PassageSet
from companion.training.prepare import PrepareCancelled, PrepareOptions, prepare_pairs, prepare_piece


def _data_fixtures():
    spec = importlib.util.spec_from_file_location("data_fixtures", Path(__file__).resolve().parents[1] / "data"
                                                  / "score_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fixtures = _data_fixtures()
    why = fixtures.tools_missing()
    if why:
        pytest.skip(why)
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources

    root = tmp_path_factory.mktemp("prepare")
    src = root / "scores"
    src.mkdir()
    (src / "kern-test.krn").write_text(fixtures.KERN, encoding="utf-8")
    (src / "abc-test.abc").write_text(fixtures.ABC, encoding="utf-8")
    out = root / "corpus"
    build(find_sources([src]), BuildOptions(out=out, soundfonts=("FluidR3_GM.sf2", "TimGM6mb.sf2"),
                                            held_out_soundfont="TimGM6mb.sf2", page_width_px=1200),
          workers=1, progress=False)
    return out


def _pieces(corpus: Path) -> list[tuple[Path, dict]]:
    return [(d, json.loads((d / "meta.json").read_text())) for d in sorted((corpus / "pieces").iterdir())
            if (d / "meta.json").exists()]


def test_pairs_are_cut_at_the_onsets_with_context(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    seen: list[int] = []
    opts = PrepareOptions(audio_degrade={"train": 0.0, "valid": 0.0, "test": 0.0})
    summary = prepare_pairs(corpus, out, opts, progress=lambda done, total, name: seen.append(done))
    assert seen == [1, 2]
    assert not out.with_name("pairs.tmp").exists()
    ps = PairSet.load(out)
    assert len(ps) == summary["pairs"] > 20
    assert ps.sheet.shape[1:] == (SHEET_SHAPE[0], SHEET_SHAPE[1] + 2 * opts.sheet_ctx)
    assert ps.audio.shape[1:] == (AUDIO_SHAPE[0], AUDIO_SHAPE[1] + 2 * opts.audio_ctx)
    assert sum(v["pairs"] for v in summary["per_split"].values()) == len(ps)
    assert summary["stats"]["systems_matched"] == summary["stats"]["systems"] > 0
    # Every snippet is centred on its noteheads: on average the centre columns carry more ink than the rest.
    ink = 255.0 - ps.sheet.astype(float).mean(axis=(0, 1))
    mid = len(ink) // 2
    assert ink[mid - 4: mid + 4].mean() > 1.2 * ink.mean()
    # Without audio degradation each excerpt is the stored spectrogram centred on the onset frame.
    (d, meta), = [(d, m) for d, m in _pieces(corpus) if m["piece"] == ps.pieces[int(ps.piece[0])]]
    spec = np.load(d / "spec.npy")
    frame = int(round(float(ps.onset[0]) * float(meta.get("fps", 20.0))))
    width = ps.audio.shape[2]
    lo = frame - width // 2
    expect = np.zeros((width, spec.shape[1]), np.float32)
    expect[max(0, -lo):] = spec[max(0, lo): lo + width]
    np.testing.assert_allclose(ps.audio[0].astype(np.float32), expect.T, atol=1e-2)
    passages = PassageSet.load(out / "passages")
    assert len(passages) == summary["passages"] > 0
    assert passages.strip(0).shape[0] == 80 and passages.spectrogram(0).shape[0] == AUDIO_SHAPE[0]


def test_exclusion_applies_to_training_splits_only(corpus: Path, tmp_path: Path) -> None:
    pieces = _pieces(corpus)
    kern = next(m for d, m in pieces if "kern" in m["piece"])
    listing = tmp_path / "exclude.txt"
    listing.write_text("kern test piece  # the work's title\n", encoding="utf-8")
    summary = prepare_pairs(corpus, tmp_path / "pairs", PrepareOptions(exclude_list=str(listing)))
    kept = summary["pieces"]
    assert kept == (len(pieces) - 1 if kern["split"] in ("train", "valid") else len(pieces))


def test_degraded_pieces_differ_between_seeds(corpus: Path) -> None:
    d, meta = _pieces(corpus)[0]
    opts = PrepareOptions(page_degrade={meta["split"]: 1.0}, audio_degrade={meta["split"]: 1.0})
    a = prepare_piece(str(d), meta["split"], {**opts.to_dict(), "seed": 1})
    b = prepare_piece(str(d), meta["split"], {**opts.to_dict(), "seed": 2})
    again = prepare_piece(str(d), meta["split"], {**opts.to_dict(), "seed": 1})
    assert a["stats"]["pages_degraded"] == a["stats"]["pages"] > 0 and a["stats"]["audio_degraded"] == 1
    np.testing.assert_array_equal(a["sheet"], again["sheet"])
    assert len(a["onset"]) and not np.array_equal(a["audio"], b["audio"])


def test_cancel_keeps_the_previous_set_and_bad_input_is_clear(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs"
    first = prepare_pairs(corpus, out, limit=1)
    both = prepare_pairs(corpus, tmp_path / "two-workers", workers=2)
    assert both["pieces"] == 2 and not both["failed"]
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(PrepareCancelled):
        prepare_pairs(corpus, out, cancel=cancel)
    assert len(PairSet.load(out)) == first["pairs"], "a cancelled run leaves the earlier set as it was"
    with pytest.raises(DataError, match="not a corpus"):
        prepare_pairs(tmp_path, tmp_path / "x")
    with pytest.raises(DataError, match="no pieces"):
        prepare_pairs(corpus, tmp_path / "y", PrepareOptions(splits=("nonexistent",)))


def test_cli_prepare(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from companion.cli import main

    assert main(["data", "prepare", str(corpus), "--out", str(tmp_path / "p"), "--max-pairs", "5"]) == 0
    text = capsys.readouterr().out
    assert "pairs" in text and "passages" in text
    ps = PairSet.load(tmp_path / "p")
    counts = np.bincount(ps.piece)
    train = [ps.pieces.index(p) for p in ps.splits.get("train", [])]
    assert all(counts[i] <= 5 for i in train)


def test_silent_noteheads_and_systems_are_skipped(corpus: Path, tmp_path: Path) -> None:
    """A notehead that never sounds (NaN onset) or a system without sound (NaN start) is skipped, not fatal."""
    import shutil

    d, meta = _pieces(corpus)[0]
    copy = tmp_path / d.name
    shutil.copytree(d, copy)
    heads = np.load(copy / "noteheads.npy")
    systems = np.load(copy / "systems.npy")
    heads["onset"][0] = np.nan
    systems["start"][0] = np.nan
    np.save(copy / "noteheads.npy", heads)
    np.save(copy / "systems.npy", systems)
    opts = PrepareOptions(page_degrade={meta["split"]: 0.0}).to_dict()
    clean = prepare_piece(str(d), meta["split"], opts)
    broken = prepare_piece(str(copy), meta["split"], opts)
    assert np.isfinite(broken["onset"]).all() and len(broken["onset"]) > 0
    assert len(broken["passages"]) == len(clean["passages"]) - 1


def test_merge_keeps_one_index_per_piece_and_refuses_split_leaks(tmp_path: Path) -> None:
    from companion.training.data import merge_pairsets, synthetic_pairs, synthetic_passages

    a, b = synthetic_pairs(n_pieces=5, per_piece=4, seed=1), synthetic_pairs(n_pieces=5, per_piece=6, seed=2)
    b.pieces[4] = "other"  # a piece only the second part has (in its test split)
    b.splits["test"] = ["other"]
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    synthetic_passages(n_pieces=5, per_piece=2).save(tmp_path / "a" / "passages")
    summary = merge_pairsets([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    m = PairSet.load(tmp_path / "m")
    assert len(m) == len(a) + len(b) == summary["pairs"]
    assert m.pieces == a.pieces + ["other"]
    assert len(m.indices("train")) == len(a.indices("train")) + len(b.indices("train"))
    np.testing.assert_array_equal(m.sheet[len(a):], b.sheet)
    assert [m.pieces[i] for i in m.piece[len(a):]] == [b.pieces[i] for i in b.piece]
    assert m.splits["test"] == [p for p in a.splits["test"]] + ["other"]
    assert len(PassageSet.load(tmp_path / "m" / "passages")) == 10
    b.splits = {"train": [a.splits["test"][0]]}
    b.save(tmp_path / "leak")
    with pytest.raises(DataError, match="split"):
        merge_pairsets([tmp_path / "a", tmp_path / "leak"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
