"""End to end: a 3-piece corpus (verovio kern + ABC, LilyPond) with alignment checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from companion.data import checks, store
from companion.data.build import build_piece as _real_build_piece

# The stand-ins below run in the build's worker processes, which start from a
# fork server and import this module afresh: they reach the real build_piece
# through this module-level name, never through the parent's monkeypatching.


def test_three_pieces_built_from_both_engravers(small_corpus):
    s = small_corpus["summary"]
    assert s.failed == [], s.failed
    assert s.built == 3
    index = json.loads((small_corpus["out"] / "index.json").read_text())
    assert index["by_engraver"] == {"verovio": 2, "lilypond": 1}
    assert index["totals"]["checks_passed"] == 3


def test_reserved_piece_is_excluded_with_reason(small_corpus):
    excluded = small_corpus["summary"].excluded
    assert len(excluded) == 1 and "Joplin" in excluded[0]["reason"]
    report = json.loads((small_corpus["out"] / "report.json").read_text())
    assert any("maple" in e["piece"] for e in report["excluded"])
    assert not any("maple" in d.name for d in (small_corpus["out"] / "pieces").iterdir())


def test_every_notehead_is_aligned_and_in_order(small_corpus):
    for folder, meta in store.iter_pieces(small_corpus["out"]):
        heads = np.load(folder / "noteheads.npy")
        systems = np.load(folder / "systems.npy")
        spec = np.load(folder / "spec.npy")
        assert spec.dtype == np.float16 and spec.shape[1] == 92
        # Each score has at least 25 struck notes (ties are not re-struck).
        assert len(heads) >= 20, meta["piece"]
        assert np.all(np.isfinite(heads["onset"])) and heads["onset"].max() < len(spec) / meta["fps"]
        # Noteheads lie inside the page and close to their system box.
        for h in heads:
            box = systems[h["system"]]
            assert box["x0"] - 5 <= h["x"] <= box["x1"] + 5
            assert box["y0"] - 80 <= h["y"] <= box["y1"] + 80
        # Within the (single-staff-pair) systems, x grows with onset.
        assert checks.monotonic_score(heads) > 0.95
        assert meta["check"]["passed"], meta["check"]
        starts = systems["start"][~np.isnan(systems["start"])]
        assert np.all(np.diff(starts) > 0)
        assert np.all(systems["end"][~np.isnan(systems["start"])] > starts)


def test_kern_ties_and_pitches_match_the_score(small_corpus):
    folder = next(d for d, m in store.iter_pieces(small_corpus["out"]) if m["kind"] == "humdrum")
    heads = np.load(folder / "noteheads.npy")
    order = np.argsort(heads["onset"], kind="stable")
    # First beat: kern "C" (C3, 48) and "c" (middle C, 60) together.
    first = sorted(heads["pitch"][order][:2].tolist())
    assert first == [48, 60]
    assert len(heads) == 28  # 14 notes per hand


def test_lilypond_tie_is_not_struck_twice(small_corpus):
    folder = next(d for d, m in store.iter_pieces(small_corpus["out"]) if m["engraver"] == "lilypond")
    heads = np.load(folder / "noteheads.npy")
    # upper: 16 quarter notes + tied whole note (not struck) ; lower: 9 notes
    assert len(heads) == 16 + 9
    assert int(np.sum(heads["pitch"] == 72)) == 2  # c'' at the start and the tied one at the end


def test_rebuild_skips_unchanged_pieces_and_resumes(small_corpus):
    from companion.data.build import build
    from companion.data.sources import find_sources

    out = small_corpus["out"]
    (out / "pieces" / ".tmp-left-by-a-kill").mkdir()
    again = build(find_sources([small_corpus["src"]]), small_corpus["opts"], progress=False)
    assert again.built == 0 and again.skipped_unchanged == 3
    assert not (out / "pieces" / ".tmp-left-by-a-kill").exists()


def test_checks_catch_a_broken_alignment(small_corpus):
    folder, meta = next(iter(store.iter_pieces(small_corpus["out"])))
    heads = np.load(folder / "noteheads.npy")
    spec = np.load(folder / "spec.npy").astype(np.float32)
    from companion.audio import filterbank_center_frequencies

    freqs = filterbank_center_frequencies()
    good = checks.check_piece(heads, spec, freqs, meta["fps"])
    assert good["passed"]
    broken = heads.copy()
    rng = np.random.default_rng(0)
    broken["onset"] = rng.permutation(broken["onset"])  # joins scrambled
    bad = checks.check_piece(broken, spec, freqs, meta["fps"])
    assert not bad["passed"] and bad["reasons"]
    shifted = heads.copy()
    shifted["onset"] += 0.37  # audio and onsets out of step
    assert checks.onset_hit_rate(shifted, spec, freqs, meta["fps"], rng) < good["onset_hits"]


def test_pack_and_load(small_corpus):
    out = small_corpus["out"]
    info = store.pack(out)
    total = sum(v["pieces"] for v in info.values())
    assert total == 3
    for split, v in info.items():
        if v["pieces"] == 0:
            continue
        data = store.load_packed(out, split)
        assert isinstance(data["spec"], np.memmap) or data["spec"].dtype == np.float16
        for i, p in enumerate(data["pieces"]):
            own = np.load(out / p["folder"] / "spec.npy")
            np.testing.assert_array_equal(data["spec"][p["spec_offset"]: p["spec_offset"] + p["spec_frames"]], own)
            assert np.sum(data["noteheads"]["piece"] == i) == len(np.load(out / p["folder"] / "noteheads.npy"))


def test_inspect_draws_page_and_spectrogram(small_corpus, tmp_path):
    from PIL import Image

    from companion.data.inspect import inspect_piece

    folder, meta = next(iter(store.iter_pieces(small_corpus["out"])))
    png = tmp_path / "check.png"
    info = inspect_piece(folder, png)
    img = Image.open(png)
    assert img.width == meta["pages"][0][1] and img.height > meta["pages"][0][0]
    heads = np.load(folder / "noteheads.npy")
    assert (info.soundings, info.repeated, info.jumps) == (int(np.sum(heads["page"] == 0)), 0, [])


def test_cli_inspect(small_corpus, tmp_path, capsys):
    from companion.cli import main

    folder, meta = next(iter(store.iter_pieces(small_corpus["out"])))
    assert main(["data", "inspect", str(folder), "--png", str(tmp_path / "i.png")]) == 0
    out = capsys.readouterr().out
    assert f"{meta['n_pairs']} soundings" in out and "repeat" not in out and (tmp_path / "i.png").exists()


def test_evaluation_build_is_separate(small_corpus, tmp_path):
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources
    from companion.errors import DataError

    opts = BuildOptions(out=tmp_path / "eval", soundfonts=("FluidR3_GM.sf2", "TimGM6mb.sf2"),
                        page_width_px=600, evaluation=True)
    s = build(find_sources([small_corpus["src"]]), opts, progress=False)
    assert s.built == 1 and s.failed == []
    (meta_dir, meta), = list(store.iter_pieces(tmp_path / "eval"))
    assert meta["split"] == "evaluation" and meta["soundfont"] == "TimGM6mb.sf2"
    # A training build refuses to write into an evaluation corpus.
    with pytest.raises(DataError):
        build(find_sources([small_corpus["src"]]),
              BuildOptions(out=tmp_path / "eval", soundfonts=("FluidR3_GM.sf2",)), progress=False)


def test_cli_summary(small_corpus, capsys):
    from companion.cli import main

    assert main(["data", "summary", str(small_corpus["out"])]) == 0
    assert "3 pieces" in capsys.readouterr().out


def test_cli_build_resumes_and_applies_exclude_list(small_corpus, tmp_path, capsys):
    from companion.cli import main

    args = ["data", "build", str(small_corpus["src"]), "--out", str(small_corpus["out"]),
            "--soundfonts", "FluidR3_GM.sf2,TimGM6mb.sf2", "--page-width", "800", "--no-progress"]
    assert main(args) == 0
    assert "built 0, unchanged 3" in capsys.readouterr().out
    excl = tmp_path / "exclude.txt"
    excl.write_text("abc test tune\nkern test\n", encoding="utf-8")
    assert main(args + ["--exclude-list", str(excl)]) == 0
    out = capsys.readouterr().out
    assert "unchanged 1" in out and "excluded 3" in out
    assert ": 1 pieces" in out  # excluded folders stay on disk but leave the index
    assert sum(v["pieces"] for v in store.pack(small_corpus["out"]).values()) == 1
    assert main(["data", "build", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "source not found" in capsys.readouterr().err


def _crash_on_abc(src, key, split, opts):
    """Stands in for a verovio segfault: the worker process dies on one piece."""
    import os

    if src.kind == "abc":
        os._exit(11)
    return _real_build_piece(src, key, split, opts)


def test_a_crashing_worker_fails_only_its_piece(small_corpus, tmp_path, monkeypatch):
    import shutil

    from companion.data import build as build_module
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources

    src = tmp_path / "src"
    src.mkdir()
    for name in ("kern-test.krn", "abc-test.abc"):
        shutil.copy(small_corpus["src"] / name, src / name)
    monkeypatch.setattr(build_module, "build_piece", _crash_on_abc)
    s = build(find_sources([src]), BuildOptions(out=tmp_path / "out", soundfonts=("FluidR3_GM.sf2",),
                                                page_width_px=600), workers=2, progress=False)
    assert s.built == 1
    assert len(s.failed) == 1 and "crashed" in s.failed[0]["reason"] and "abc" in s.failed[0]["piece"]


def _report_what_the_worker_sees(src, key, split, opts):
    """Builds nothing; says whether the worker holds the building process's memory and who its parent is."""
    import os

    from companion.data import build as build_module

    return {"ok": False, "reason": f"marker={getattr(build_module, '_parent_marker', None)} parent={os.getppid()}"}


def test_workers_are_not_forked_from_the_building_process(tmp_path, monkeypatch):
    """A fork of a process with threads (verovio, FluidSynth, torch) can hang on a lock
    another thread held: the workers start from a fork server instead, so they share
    none of the parent's memory, and their parent is the server, not the builder."""
    import os
    import threading

    from companion.data import build as build_module
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources

    from score_sources import KERN

    src = tmp_path / "src"
    src.mkdir()
    (src / "kern-test.krn").write_text(KERN, encoding="utf-8")
    monkeypatch.setattr(build_module, "build_piece", _report_what_the_worker_sees)
    monkeypatch.setattr(build_module, "_parent_marker", "in the parent's memory", raising=False)
    busy = threading.Event()
    thread = threading.Thread(target=busy.wait, daemon=True)  # the builder has a thread running
    thread.start()
    try:
        s = build(find_sources([src]), BuildOptions(out=tmp_path / "out", soundfonts=("FluidR3_GM.sf2",)),
                  workers=2, progress=False)
    finally:
        busy.set()
    (failed,) = s.failed
    assert "marker=None" in failed["reason"], failed
    assert build_module.pool_context().get_start_method() in ("forkserver", "spawn")
    if build_module.pool_context().get_start_method() == "forkserver":
        assert f"parent={os.getpid()} " not in failed["reason"] + " ", failed


def _hang_on_abc(src, key, split, opts):
    """Stands in for a long LilyPond run: the ABC piece waits on a child process that never ends by itself."""
    import subprocess

    if src.kind == "abc":
        tmp = opts.out / "pieces" / f".tmp-{src.piece_id}-hanging"
        tmp.mkdir()
        proc = subprocess.Popen(["sleep", "600"])
        (opts.out / "hanging.pid").write_text(str(proc.pid))
        proc.wait()
    return _real_build_piece(src, key, split, opts)


def test_cancel_stops_the_pool_and_the_build_resumes(small_corpus, tmp_path, monkeypatch):
    """The cancel event ends the workers and their engraver children; finished pieces stay, the next run resumes."""
    import shutil
    import threading

    import psutil

    from companion.data import build as build_module
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources

    src = tmp_path / "src"
    src.mkdir()
    for name in ("kern-test.krn", "abc-test.abc"):
        shutil.copy(small_corpus["src"] / name, src / name)
    out = tmp_path / "out"
    opts = BuildOptions(out=out, soundfonts=("FluidR3_GM.sf2",), page_width_px=600)
    monkeypatch.setattr(build_module, "build_piece", _hang_on_abc)
    cancel = threading.Event()
    calls: list[tuple] = []

    def on_piece(done, total, piece, ok):
        calls.append((done, total, piece, ok))

    def cancel_when_one_is_built_and_one_hangs():
        while not cancel.is_set():
            if calls and (out / "hanging.pid").exists():
                cancel.set()
            threading.Event().wait(0.02)

    watcher = threading.Thread(target=cancel_when_one_is_built_and_one_hangs, daemon=True)
    watcher.start()
    s = build(find_sources([src]), opts, workers=2, progress=False, on_piece=on_piece, cancel=cancel)
    watcher.join(5)
    assert s.cancelled and s.built == 1 and s.to_build == 2 and s.failed == []
    assert calls == [(1, 2, calls[0][2], True)] and "kern" in calls[0][2]
    assert not list((out / "pieces").glob(".tmp-*")), "the abandoned piece's temporary folder is removed"
    pid = int((out / "hanging.pid").read_text())

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    for _ in range(250):
        if gone():
            break
        threading.Event().wait(0.02)
    assert gone(), "the worker's child process was ended with it"
    assert [p.name for p in (out / "pieces").iterdir()] == [calls[0][2]]
    assert (out / "index.json").exists() and (out / "report.json").exists()
    # a cancel event set before the start builds nothing
    assert build(find_sources([src]), opts, progress=False, cancel=cancel).cancelled
    # resume: only the abandoned piece is built
    monkeypatch.setattr(build_module, "build_piece", _real_build_piece)
    again = build(find_sources([src]), opts, workers=1, progress=False, on_piece=on_piece)
    assert not again.cancelled and again.built == 1 and again.skipped_unchanged == 1
    assert calls[-1][:2] == (1, 1) and "abc" in calls[-1][2]


def test_only_the_requested_splits_are_built(small_corpus, tmp_path, capsys):
    """Test pieces alone can be built to measure on (LilyPond costs ~5x verovio); the splits stay by work."""
    from dataclasses import replace

    from companion.cli import main
    from companion.data.build import build, select, split_of
    from companion.data.sources import find_sources

    sources = find_sources([small_corpus["src"]])
    opts = replace(small_corpus["opts"], out=tmp_path / "out")
    kept, _ = select(sources, opts, None)
    split = {s.piece_id: split_of(s.work, opts.seed, opts.split_fractions) for s in kept}
    want = split[next(s for s in kept if s.kind == "humdrum").piece_id]
    summary = build(sources, opts, progress=False, only_splits={want})
    wanted = {pid for pid, sp in split.items() if sp == want}
    assert summary.built == len(wanted) and not summary.failed
    assert summary.other_splits == len(kept) - len(wanted)
    assert {p.name for p in (tmp_path / "out" / "pieces").iterdir() if not p.name.startswith(".")} == wanted
    assert main(["data", "build", str(small_corpus["src"]), "--out", str(tmp_path / "o"), "--splits", "tset"]) == 1
    assert "unknown split(s) tset" in capsys.readouterr().err
