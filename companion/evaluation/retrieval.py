"""Snippet retrieval, passage retrieval and piece identification.

Protocols follow Dorfer et al. (TISMIR 2018):

* **Snippet retrieval** — ``candidates`` (2,000) test pairs are drawn at random;
  every audio excerpt is a query against all 2,000 sheet snippets (audio-to-sheet)
  and vice versa (sheet-to-audio). Ranks -> R@1/5/10/25, MRR, median rank.
* **Passage retrieval** — the same over system-level passages.
* **Piece identification** — every sheet snippet of every library piece is
  indexed; for each query piece, ``excerpts`` (100) audio excerpts are embedded,
  each retrieves its ``top`` (25) nearest sheet snippets, and each retrieved
  snippet votes for its piece. The rank of the true piece in the vote count is
  the piece's rank (ties pessimistic).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from companion.evaluation.metrics import cross_modal_ranks, retrieval_metrics

EmbedFn = Callable[[np.ndarray], np.ndarray]


def snippet_retrieval(
    embed_sheet: EmbedFn,
    embed_audio: EmbedFn,
    sheet: np.ndarray,
    audio: np.ndarray,
    candidates: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """sheet (N, 80, 100), audio (N, 92, 42) matched rows; returns metrics and raw ranks."""
    n = len(sheet)
    if n != len(audio) or n < 2:
        raise ValueError("need at least two matched (sheet, audio) pairs")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, size=min(candidates, n), replace=False))
    zs = embed_sheet(sheet[pick])
    za = embed_audio(audio[pick])
    r_as, r_sa = cross_modal_ranks(za, zs)
    return {
        "candidates": int(len(pick)),
        "audio_to_sheet": retrieval_metrics(r_as),
        "sheet_to_audio": retrieval_metrics(r_sa),
        "ranks": {"audio_to_sheet": r_as.tolist(), "sheet_to_audio": r_sa.tolist()},
    }


def passage_retrieval(z_audio: np.ndarray, z_sheet: np.ndarray, candidates: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Matched passage embeddings (M, 64) each; returns metrics and ranks."""
    n = len(z_audio)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, size=min(candidates, n), replace=False))
    r_as, r_sa = cross_modal_ranks(z_audio[pick], z_sheet[pick])
    return {
        "candidates": int(len(pick)),
        "audio_to_sheet": retrieval_metrics(r_as),
        "sheet_to_audio": retrieval_metrics(r_sa),
        "ranks": {"audio_to_sheet": r_as.tolist(), "sheet_to_audio": r_sa.tolist()},
    }


def vote_ranks(
    query_emb: list[np.ndarray],
    query_piece: list[int],
    library_emb: np.ndarray,
    library_piece: np.ndarray,
    n_pieces: int,
    top: int = 25,
) -> np.ndarray:
    """Piece rank per query piece from top-``top`` nearest-neighbour votes of its excerpts."""
    ranks = []
    for z, true in zip(query_emb, query_piece):
        sim = z @ library_emb.T  # (excerpts, library)
        k = min(top, sim.shape[1])
        nn_idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        votes = np.bincount(library_piece[nn_idx].ravel(), minlength=n_pieces)
        ranks.append(int((votes >= votes[true]).sum()))
    return np.asarray(ranks)


def piece_identification(
    embed_sheet: EmbedFn,
    embed_audio: EmbedFn,
    library_sheet: np.ndarray,
    library_piece: np.ndarray,
    query_audio: np.ndarray,
    query_piece: np.ndarray,
    excerpts: int = 100,
    top: int = 25,
    seed: int = 0,
    piece_names: list[str] | None = None,
) -> dict[str, Any]:
    """Library: sheet snippets labelled by piece; queries: audio excerpts labelled by piece."""
    pieces = np.unique(query_piece)
    n_pieces = int(max(library_piece.max(), query_piece.max()) + 1)
    z_lib = embed_sheet(library_sheet)
    rng = np.random.default_rng(seed)
    q_emb, q_true = [], []
    for p in pieces:
        idx = np.flatnonzero(query_piece == p)
        pick = np.sort(rng.choice(idx, size=min(excerpts, len(idx)), replace=False))
        q_emb.append(embed_audio(query_audio[pick]))
        q_true.append(int(p))
    ranks = vote_ranks(q_emb, q_true, z_lib, library_piece, n_pieces, top)
    out = {
        "pieces": int(len(pieces)),
        "library_pieces": int(len(np.unique(library_piece))),
        "library_snippets": int(len(library_sheet)),
        "excerpts_per_piece": excerpts,
        "top": top,
        "metrics": retrieval_metrics(ranks),
        "ranks": ranks.tolist(),
    }
    if piece_names is not None:
        out["per_piece"] = {piece_names[p]: int(r) for p, r in zip(q_true, ranks)}
    return out
