"""Piece identification by alignment (real-scan evaluation): order carries what votes cannot."""

import numpy as np

from companion.evaluation.retrieval import vote_ranks
from companion.evaluation.scans import align_ranks


def test_alignment_uses_the_order_that_votes_ignore() -> None:
    rng = np.random.default_rng(0)
    # two pieces made of the SAME 30 snippets, in different orders: votes cannot tell them apart
    base = rng.standard_normal((30, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    order_b = rng.permutation(30)
    library = np.concatenate([base, base[order_b]])
    piece = np.repeat([0, 1], 30)
    queries, truth = [], []
    for p, seq in ((0, base), (1, base[order_b])):
        for start in (0, 10):
            q = seq[start : start + 15] + 0.3 * rng.standard_normal((15, 32)).astype(np.float32) / np.sqrt(32)
            queries.append(q / np.linalg.norm(q, axis=1, keepdims=True))
            truth.append(p)
    aligned = align_ranks(queries, truth, library, piece, 2)
    assert (aligned == 1).all()
    votes = vote_ranks(queries, truth, library, piece, 2, top=2)
    assert (votes == 2).any()  # a tie (ranked pessimistically) for at least one query
