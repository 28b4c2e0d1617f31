import numpy as np
import pytest

from companion.evaluation.metrics import cross_modal_ranks, ranks_from_similarity, retrieval_metrics
from companion.evaluation.plot import plot_rank_distributions
from companion.evaluation.retrieval import piece_identification, snippet_retrieval, vote_ranks


def test_metrics_on_hand_made_ranks():
    m = retrieval_metrics([1, 2, 5, 30])
    assert m["R@1"] == 0.25 and m["R@5"] == 0.75 and m["R@10"] == 0.75 and m["R@25"] == 0.75
    assert m["MRR"] == pytest.approx((1 + 0.5 + 0.2 + 1 / 30) / 4)
    assert m["median_rank"] == 3.5
    with pytest.raises(ValueError):
        retrieval_metrics([0, 1])
    with pytest.raises(ValueError):
        retrieval_metrics([])


def test_ranks_from_similarity_and_pessimistic_ties():
    sim = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.6], [0.3, 0.3, 0.3]])
    assert ranks_from_similarity(sim).tolist() == [1, 3, 3]
    assert ranks_from_similarity(sim, np.array([2, 0, 1])).tolist() == [2, 2, 3]


def test_cross_modal_ranks_both_directions():
    a = np.eye(3)
    b = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], float)
    ab, ba = cross_modal_ranks(a, b)
    # Rows 1 and 2 are orthogonal to their targets: ties with the other zero lose (pessimistic).
    assert ab.tolist() == [1, 3, 3] and ba.tolist() == [1, 3, 3]


def test_piece_identification_votes():
    lib = np.eye(4)[[0, 0, 1, 1, 2, 3]]
    lib_piece = np.array([0, 0, 1, 1, 2, 2])
    # Queries of piece 1 lie near library rows of piece 1; piece 2's queries near piece 0 (a miss).
    q = [np.eye(4)[[1, 1]], np.eye(4)[[0, 0]]]
    ranks = vote_ranks(q, [1, 2], lib, lib_piece, 3, top=2)
    assert ranks.tolist() == [1, 3]


def test_retrieval_protocols_with_identity_embeddings():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 8))
    ident = lambda x: x.reshape(len(x), -1) / np.linalg.norm(x.reshape(len(x), -1), axis=1, keepdims=True)
    r = snippet_retrieval(ident, ident, feats, feats, candidates=20)
    assert r["candidates"] == 20 and r["audio_to_sheet"]["MRR"] == 1.0
    piece = np.repeat(np.arange(5), 10)
    pid = piece_identification(ident, ident, feats, piece, feats, piece, excerpts=4, top=1)
    assert pid["metrics"]["R@1"] == 1.0 and pid["pieces"] == 5


def test_plot_writes_png(tmp_path):
    out = plot_rank_distributions({"a": [1, 2, 3, 40], "b": [1, 1, 2]}, tmp_path / "r.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
