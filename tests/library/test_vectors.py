"""faiss indices: exact vs calibrated IVF, atomic files, generations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from companion.library import vectors
from companion.library.errors import LibraryError


def structured(n_rows: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Clustered vectors like real embeddings: AR(1) walks around per-document centres."""
    rng = np.random.default_rng(seed)
    per = 20
    n_sys = n_rows // per
    centres = rng.standard_normal((max(1, n_sys // 30), d)).astype(np.float32)
    v = rng.standard_normal((n_sys, d)).astype(np.float32)
    out = np.empty((n_sys, per, d), np.float32)
    for t in range(per):
        out[:, t] = v + 0.5 * centres[np.arange(n_sys) % len(centres)]
        v = 0.8 * v + 0.6 * rng.standard_normal((n_sys, d)).astype(np.float32)
    return out.reshape(-1, d)


def ids_for(n: int) -> np.ndarray:
    ids = np.zeros((n, 5), np.int64)
    ids[:, 0] = np.arange(n) // 100
    ids[:, 3] = np.arange(n)
    return ids


def test_flat_index_finds_stored_vectors_with_cosine_scores() -> None:
    x = structured(2000)
    vi = vectors.build_index(x, ids_for(len(x)))
    assert vi.info["kind"] == "flat"
    scores, pos = vi.search(x[[5, 700]] * 3.0, 3)  # scale does not matter: cosine
    assert list(pos[:, 0]) == [5, 700]
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (scores[:, 0] >= scores[:, 1]).all()


def test_ivf_index_is_calibrated_to_the_target_recall_on_fresh_queries() -> None:
    x = structured(60_000, seed=1)
    vi = vectors.build_index(x, ids_for(len(x)), exact_max=10_000)
    assert vi.info["kind"] == "ivf"
    assert vi.info["recall"] >= vectors.TARGET_RECALL
    assert vi.info["nprobe"] < vi.info["nlist"]  # genuinely approximate
    # independent check on other queries than the calibration ones
    data = vectors.normalise(x)
    q = vectors.calibration_queries(data, 300, seed=99)
    exact = vectors.build_index(x, ids_for(len(x)))
    _, e = exact.search(q, 10)
    _, a = vi.search(q, 10)
    assert vectors.recall_at_k(e, a) >= 0.93


def test_all_vectors_come_back_in_row_order_flat_and_ivf(tmp_path: Path) -> None:
    x = structured(12_000, seed=2)
    for exact_max in (100_000, 2_000):  # flat, then IVF (whose lists are not in insertion order)
        vi = vectors.build_index(x, ids_for(len(x)), exact_max=exact_max)
        vectors.save_index(tmp_path, "snippets", exact_max, vi)
        loaded = vectors.load_index(tmp_path, "snippets", exact_max)  # as a reader thread gets it
        for got in (vi.vectors(), loaded.vectors()):
            assert got.shape == x.shape
            assert np.allclose(got, vectors.normalise(x), atol=1e-6)
    empty = vectors.build_index(np.zeros((0, 32), np.float32), np.zeros((0, 5), np.int64))
    assert len(empty.vectors()) == 0


def test_recall_measure() -> None:
    e = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    a = np.array([[1, 2, 9, 9], [5, 6, 7, 8]])
    assert vectors.recall_at_k(e, a) == pytest.approx(0.75)


def test_save_load_round_trip_and_generation_cleanup(tmp_path: Path) -> None:
    x = structured(30_000, seed=2)
    vi = vectors.build_index(x, ids_for(len(x)), exact_max=5_000)
    vectors.save_index(tmp_path, "snippets", 7, vi)
    (tmp_path / "snippets.g8.faiss.tmp").write_bytes(b"half written")
    (tmp_path / "snippets.g5.faiss").write_bytes(b"old")
    loaded = vectors.load_index(tmp_path, "snippets", 7)
    assert loaded.info == vi.info
    assert faiss_nprobe(loaded) == vi.info["nprobe"]
    q = x[:20]
    assert np.array_equal(loaded.search(q, 5)[1], vi.search(q, 5)[1])
    assert np.array_equal(loaded.ids, vi.ids)
    vectors.clean_generations(tmp_path, keep={7})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "snippets.g7.faiss", "snippets.g7.ids.npy", "snippets.g7.json"]
    with pytest.raises(FileNotFoundError):
        vectors.load_index(tmp_path, "snippets", 5)


def faiss_nprobe(vi: vectors.VectorIndex) -> int:
    import faiss

    return int(faiss.extract_index_ivf(vi.index).nprobe)


def test_empty_index_and_bad_queries() -> None:
    vi = vectors.build_index(np.zeros((0, 0), np.float32), np.zeros((0, 5), np.int64))
    scores, pos = vi.search(np.ones((2, 32), np.float32), 4)
    assert (pos == -1).all() and np.isinf(scores).all()
    full = vectors.build_index(structured(200), ids_for(200))
    with pytest.raises(LibraryError, match="64-d|32-d"):
        full.search(np.ones((1, 64), np.float32), 3)
    with pytest.raises(LibraryError):
        full.search(np.ones((1, 32), np.float32), 0)
