"""Scan-benchmark queries re-synthesised from a (tiny, fake) corpus's performances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from companion.data import performance
from companion.data.engraving import NoteEvent
from companion.data.synth import find_soundfont
from companion.errors import CompanionError
from companion.evaluation.scans import scan_work_for
from companion.training.scan_queries import build_queries, scan_pieces


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    kern = tmp_path / "kern"
    kern.mkdir()
    corpus = tmp_path / "corpus"
    events = [NoteEvent(f"n{i}", 60 + (i % 12), i * 0.4, i * 0.4 + 0.35) for i in range(12)]
    perf = performance.perform(events, [], performance.PerformanceParams(seed=1))
    # two Op. 10 etudes (a scanned work), one Op. 1 rondo (not scanned)
    for name in ("010-1-BH-001", "010-1-BH-002", "001-1-BRZ"):
        (kern / f"{name}.krn").write_text("**kern\n*-\n", encoding="utf-8")
        folder = corpus / "pieces" / name.lower()
        folder.mkdir(parents=True)
        performance.write_midi(perf, folder / "performance.mid")
        (folder / "meta.json").write_text(json.dumps({"source": f"x/kern/{name}.krn"}), encoding="utf-8")
    return corpus, kern


def test_only_scanned_works_are_chosen_and_capped_per_work(tmp_path):
    corpus, kern = _corpus(tmp_path)
    assert sorted(scan_pieces(corpus, kern, per_work=2)) == ["op010-001", "op010-002"]
    assert sorted(scan_pieces(corpus, kern, per_work=1)) == ["op010-001"]
    assert scan_work_for("op010-001") is not None


def test_queries_are_degraded_spectrograms_named_for_their_work(tmp_path):
    try:
        sf = find_soundfont("TimGM6mb.sf2")
    except Exception as exc:  # noqa: BLE001 - any missing-soundfont error means: cannot run here
        pytest.skip(f"TimGM6mb SoundFont not installed: {exc}")
    corpus, kern = _corpus(tmp_path)
    out = tmp_path / "queries"
    summary = build_queries(corpus, out, sf, kern, per_work=2)
    files = sorted(p.name for p in out.glob("*.npy"))
    assert files == ["op010-001.npy", "op010-002.npy"]
    spec = np.load(out / "op010-001.npy")
    assert spec.dtype == np.float16 and spec.shape[0] == 92 and spec.shape[1] > 20 * 4  # ~5 s at 20 fps
    assert np.isfinite(spec).all() and spec.max() > 0
    assert json.loads((out / "queries.json").read_text())["soundfont"] == "TimGM6mb.sf2" == summary["soundfont"]
    with pytest.raises(CompanionError, match="no corpus pieces"):
        build_queries(tmp_path / "empty", out, sf, kern)
