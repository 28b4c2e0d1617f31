"""faiss indices over snippet and passage embeddings, with their id maps.

Why cosine via inner product on normalised vectors: the encoders are trained
with cosine losses, so the score a reader gets back is a cosine similarity.

Why exact below a threshold and IVF above: exact (flat) search is cheap up to a
few hundred thousand vectors and has recall 1; above that an inverted-file
index scans only ``nprobe`` of ``nlist`` cells. ``nprobe`` is not guessed: each
build measures recall@k of the IVF index against exact search on queries drawn
from the data and raises ``nprobe`` until the target recall (>= 0.95) is met;
the measured recall is stored with the generation.

Files are written to a temporary name, fsynced and renamed, and carry the
generation number in their name, so a reader never sees a half-written index
and the files of the published generation are never overwritten.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from companion.library.errors import LibraryError

EXACT_MAX_VECTORS = 250_000
"""Above this many vectors an index is built approximate (IVF)."""
TARGET_RECALL = 0.95
CALIBRATION_QUERIES = 500
CALIBRATION_K = 10
QUERY_NOISE = 1.0
"""Calibration queries are stored vectors plus noise of this norm (then normalised), so
a query has cosine ~0.7 with its source vector: an audio excerpt never embeds exactly onto
its sheet snippet (cross-modal pairs sit far apart), and near-duplicate queries would
understate the nprobe needed."""

ID_COLUMNS = ("document", "page", "system", "x", "system_id")


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass
class VectorIndex:
    """A faiss index plus the id rows of its vectors (row i belongs to vector i)."""

    index: faiss.Index
    ids: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine scores and vector positions (``-1`` where fewer than k exist)."""
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or (self.size and q.shape[1] != self.dim):
            raise LibraryError(
                f"queries have shape {q.shape}, this index holds {self.dim}-d vectors "
                "(was the library built with another model?)"
            )
        if k < 1:
            raise LibraryError("k must be at least 1")
        if self.size == 0:
            return np.full((len(q), k), -np.inf, np.float32), np.full((len(q), k), -1, np.int64)
        scores, pos = self.index.search(normalise(q), k)
        scores[pos < 0] = -np.inf
        return scores, pos

    def vectors(self) -> np.ndarray:
        """Every stored (normalised) vector, row i = id row i: for dense scoring against all of them.

        Read-only on the index: faiss's IVF ``reconstruct_n`` walks the inverted lists and places
        each vector by its id, so no direct map is built (the index may be searched by another
        thread meanwhile); the test checks the order for flat and IVF, built and loaded."""
        if self.size == 0:
            return np.zeros((0, max(1, self.dim)), np.float32)
        return np.asarray(self.index.reconstruct_n(0, self.size), np.float32)


TRAIN_PER_LIST = 40
"""k-means training points per cell (faiss wants >= 39)."""


def choose_nlist(n: int) -> int:
    """About 2 sqrt(n) cells, a power of two: at 1.2 M vectors 2048 cells train in
    seconds, where 4096 took a minute, at the same scanned fraction for 0.95 recall."""
    nlist = 1 << int(round(np.log2(max(2.0 * np.sqrt(n), 16))))
    return int(max(16, min(nlist, n // TRAIN_PER_LIST)))


def nprobe_steps(nlist: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, ... up to nlist: finer than doubling, so the chosen
    nprobe is not twice what the target needs."""
    steps, p = [], 1
    while p < nlist:
        steps.append(p)
        if p >= 2:
            steps.append(p * 3 // 2)
        p *= 2
    steps.append(nlist)
    return sorted(set(s for s in steps if s <= nlist))


def calibration_queries(data: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(data), size=min(n, len(data)), replace=False)
    noise = rng.standard_normal((len(pick), data.shape[1])).astype(np.float32)
    noise *= QUERY_NOISE / np.sqrt(data.shape[1])
    return normalise(data[pick] + noise)


def recall_at_k(exact: np.ndarray, approx: np.ndarray) -> float:
    """Mean fraction of the exact top-k found in the approximate top-k."""
    hits = [len(set(e[e >= 0]) & set(a[a >= 0])) / max(1, int((e >= 0).sum())) for e, a in zip(exact, approx)]
    return float(np.mean(hits)) if hits else 1.0


def build_index(
    vectors: np.ndarray,
    ids: np.ndarray,
    exact_max: int = EXACT_MAX_VECTORS,
    target_recall: float = TARGET_RECALL,
    seed: int = 0,
) -> VectorIndex:
    """Exact inner-product index, or IVF-Flat calibrated to ``target_recall``."""
    n = len(vectors)
    if n == 0:
        return VectorIndex(faiss.IndexFlatIP(1), ids.reshape(0, len(ID_COLUMNS)), {"kind": "empty"})
    data = normalise(vectors)
    d = data.shape[1]
    if n <= exact_max:
        index = faiss.IndexFlatIP(d)
        index.add(data)
        return VectorIndex(index, ids, {"kind": "flat", "n": n, "recall": 1.0})
    nlist = choose_nlist(n)
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    train = data[rng.choice(n, size=min(n, TRAIN_PER_LIST * nlist), replace=False)]
    index.cp.seed = seed
    index.train(train)
    index.add(data)
    flat = faiss.IndexFlatIP(d)
    flat.add(data)
    queries = calibration_queries(data, CALIBRATION_QUERIES, seed)
    _, exact = flat.search(queries, CALIBRATION_K)
    del flat
    nprobe, recall = 1, 0.0
    for nprobe in nprobe_steps(nlist):
        index.nprobe = nprobe
        _, approx = index.search(queries, CALIBRATION_K)
        recall = recall_at_k(exact, approx)
        if recall >= target_recall:
            break
    info = {"kind": "ivf", "n": n, "nlist": nlist, "nprobe": nprobe, "recall": round(recall, 4),
            "recall_k": CALIBRATION_K, "calibration_queries": len(queries)}
    return VectorIndex(index, ids, info)


# -- files -----------------------------------------------------------------------

_FILE_RE = re.compile(r"^(snippets|passages)\.g(\d+)\.(faiss|ids\.npy|json)$")


def file_names(name: str, generation: int) -> tuple[str, str, str]:
    return f"{name}.g{generation}.faiss", f"{name}.g{generation}.ids.npy", f"{name}.g{generation}.json"


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_index(directory: Path, name: str, generation: int, vindex: VectorIndex) -> None:
    """Write the three files of one index atomically (temp + fsync + rename each)."""
    f_index, f_ids, f_info = file_names(name, generation)
    _atomic_write(directory / f_index, faiss.serialize_index(vindex.index).tobytes())
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(vindex.ids, dtype=np.int64), allow_pickle=False)
    _atomic_write(directory / f_ids, buf.getvalue())
    _atomic_write(directory / f_info, json.dumps(vindex.info).encode())
    _fsync_dir(directory)


def load_index(directory: Path, name: str, generation: int) -> VectorIndex:
    """Load one index of a generation; raises FileNotFoundError if it was cleaned up."""
    f_index, f_ids, f_info = file_names(name, generation)
    raw = np.fromfile(directory / f_index, dtype=np.uint8)
    index = faiss.deserialize_index(raw)
    ids = np.load(directory / f_ids, allow_pickle=False)
    info = json.loads((directory / f_info).read_text())
    if info.get("kind") == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(info["nprobe"])
    if len(ids) != index.ntotal:
        raise LibraryError(f"the {name} index of generation {generation} is damaged (id map size)")
    return VectorIndex(index, ids, info)


def clean_generations(directory: Path, keep: set[int]) -> None:
    """Delete index files of generations not in ``keep`` and leftover temp files."""
    for path in directory.iterdir():
        m = _FILE_RE.match(path.name)
        if path.name.endswith(".tmp") or (m and int(m.group(2)) not in keep):
            try:
                path.unlink(missing_ok=True)
            except OSError:  # Windows: a reader has it open right now; next time
                pass
