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


def test_taking_hubness_off_stops_a_snippet_near_all_audio_from_winning() -> None:
    from dataclasses import replace

    from companion.evaluation.scans import ALIGN_EVAL, ALIGN_HUB_WEIGHT

    rng = np.random.default_rng(1)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    hub = unit(rng.standard_normal(32))
    own = unit(rng.standard_normal((20, 32)))
    library = np.concatenate([own, np.repeat(hub[None], 20, axis=0)])  # piece 1: snippets close to any audio
    piece = np.repeat([0, 1], 20)
    # music of piece 0 that, like all audio here, also leans towards the hub
    queries = [unit(0.8 * hub + 0.6 * own[s : s + 12] + 0.05 * rng.standard_normal((12, 32))) for s in (0, 5)]
    reference = unit(0.8 * hub + 0.6 * unit(rng.standard_normal((200, 32))))
    plain = align_ranks(queries, [0, 0], library, piece, 2)
    assert (plain == 2).all()  # the hub piece wins every query
    off = align_ranks(queries, [0, 0], library, piece, 2, replace(ALIGN_EVAL, hub_weight=ALIGN_HUB_WEIGHT), reference)
    assert (off == 1).all()
