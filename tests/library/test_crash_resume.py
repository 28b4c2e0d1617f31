"""Kill indexing runs (SIGKILL) at random moments, many times; the library must stay
consistent after every kill and end identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import make_corrupt_pdf, make_score_pdf
from test_indexer import library_content

from companion.library import Library
from companion.library.catalog import Catalog

SCRIPT = Path(__file__).resolve().parent / "index_script.py"
TIMED_KILLS = (3, 1)
"""Kills at a random time (phase 1, phase 2): realistic, but they mostly land while a page
is rendered or embedded."""
STEP_KILLS = (5, 3)
"""Kills just before a random write step (SQL statement or index file write)."""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def start(lib: Path, folder: Path, model: str, workers: int, kill_at: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(lib), str(folder), model, str(workers), str(kill_at)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def finish(proc: subprocess.Popen) -> tuple[bytes, bytes]:
    out, err = proc.communicate(timeout=120)  # returns once the workers are gone too
    return out, err


def run_to_end(lib: Path, folder: Path, model: str, workers: int = 1) -> tuple[float, int]:
    """(seconds, write steps) of an uninterrupted run."""
    t = time.perf_counter()
    proc = start(lib, folder, model, workers)
    out, err = finish(proc)
    assert proc.returncode == 0, err.decode()
    return time.perf_counter() - t, int(json.loads(out.decode().strip().splitlines()[-1])["steps"])


def assert_consistent(lib: Path) -> None:
    """What any reader may rely on, at any moment."""
    if not (lib / Catalog.FILENAME).exists():
        return  # killed before the catalog was created
    with Catalog(lib, readonly=True) as cat:
        assert cat.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Library.open(lib) as reader:
        snap = reader.snapshot
        visible = {d.id for d in reader.documents}
        assert set(snap.snippets.ids[:, 0].tolist()) <= visible
        assert set(snap.passages.ids[:, 0].tolist()) <= visible
        paths = [d.path for d in reader.documents]
        assert len(paths) == len(set(paths)), "two versions of one file visible"
        with Catalog(lib, readonly=True) as cat:
            for d in reader.documents:
                embs = cat.embeddings_of(d.id, snap.model_version)
                assert embs is not None, f"visible document {d.path} has no embeddings"
                n = sum(len(e.snippet_x) for e in embs)
                assert int((snap.snippets.ids[:, 0] == d.id).sum()) == n
                assert len(snap.systems[d.id]) == len(embs)


def kill_and_resume(lib: Path, folder: Path, model: str, workers: int, duration: float, steps: int,
                    rng: np.random.Generator, phase: int) -> int:
    """Alternate timed and write-step kills, check consistency after each, then finish."""
    kills = 0
    plan = ["time"] * TIMED_KILLS[phase] + ["step"] * STEP_KILLS[phase]
    rng.shuffle(plan)
    for how in plan:
        if how == "time":
            proc = start(lib, folder, model, workers)
            time.sleep(float(rng.uniform(0.0, duration)))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        else:
            # a resumed run has fewer steps left: aim into the first half of a full run's
            proc = start(lib, folder, model, workers, kill_at=int(rng.integers(1, max(2, steps // 2))))
        finish(proc)
        kills += proc.returncode == -signal.SIGKILL
        assert_consistent(lib)
    run_to_end(lib, folder, model, workers)
    assert_consistent(lib)
    return kills


def test_killed_runs_resume_to_the_same_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(2024)
    folder = tmp_path / "scores"
    folder.mkdir()
    for i in range(7):
        make_score_pdf(folder / f"piece{i}.pdf", 2, seed=100 + i)
    make_corrupt_pdf(folder / "broken.pdf")
    ref, killed = tmp_path / "ref", tmp_path / "killed"

    # phase 1: a fresh library
    duration, steps = run_to_end(ref, folder, "test-1")
    kills = kill_and_resume(killed, folder, "test-1", 1, duration, steps, rng, phase=0)
    assert library_content(killed) == library_content(ref)

    # phase 2: files changed, deleted and added, a new model, two workers
    make_score_pdf(folder / "piece3.pdf", 2, seed=999)
    (folder / "piece5.pdf").unlink()
    make_score_pdf(folder / "piece9.pdf", 2, seed=109)
    duration, steps = run_to_end(ref, folder, "test-2", workers=2)
    kills += kill_and_resume(killed, folder, "test-2", 2, duration, steps, rng, phase=1)
    final = library_content(killed)
    assert final == library_content(ref)
    assert final["__generation_model__"] == "test-2"
    assert kills >= (sum(STEP_KILLS) + sum(TIMED_KILLS)) // 2  # most runs really were killed mid-way
