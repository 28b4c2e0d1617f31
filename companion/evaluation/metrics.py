"""Retrieval metrics: ranks, Recall@k, MRR and median rank.

Ranks are 1-based: rank 1 means the correct item was the nearest neighbour.
Ties are broken pessimistically (an equally similar wrong item ranks ahead),
so a degenerate model that maps everything to one point scores badly.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

RECALL_KS: tuple[int, ...] = (1, 5, 10, 25)


def ranks_from_similarity(sim: np.ndarray, targets: np.ndarray | None = None) -> np.ndarray:
    """sim[i, j]: similarity of query i to candidate j; target of query i is ``targets[i]`` (default i)."""
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2:
        raise ValueError("similarity matrix must be 2-D")
    if targets is None:
        if sim.shape[0] != sim.shape[1]:
            raise ValueError("non-square similarity needs explicit targets")
        targets = np.arange(sim.shape[0])
    pos = sim[np.arange(sim.shape[0]), targets]
    return (sim >= pos[:, None]).sum(axis=1)  # includes the target itself


def retrieval_metrics(ranks: Iterable[int], ks: tuple[int, ...] = RECALL_KS) -> dict[str, float]:
    r = np.asarray(list(ranks) if not isinstance(ranks, np.ndarray) else ranks, dtype=np.float64)
    if r.size == 0:
        raise ValueError("no ranks to summarise")
    if np.any(r < 1):
        raise ValueError("ranks are 1-based")
    out = {f"R@{k}": float(np.mean(r <= k)) for k in ks}
    out["MRR"] = float(np.mean(1.0 / r))
    out["median_rank"] = float(np.median(r))
    out["n"] = int(r.size)
    return out


def cross_modal_ranks(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks for matched rows of unit-vector embeddings a (queries) and b, both directions.

    Returns (a->b ranks, b->a ranks).
    """
    sim = a @ b.T
    return ranks_from_similarity(sim), ranks_from_similarity(sim.T)
