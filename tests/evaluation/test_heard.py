"""The evaluation leaves out test pieces whose music the model was trained on."""

from __future__ import annotations

from companion.evaluation.run import evaluate
from companion.models.checkpoint import read_checkpoint
from companion.training.config import TrainConfig
from companion.training.data import synthetic_pairs
from companion.training.trainer import train

TINY = {"sheet": {"width": 8, "blocks": 2, "convs_per_block": 1, "embed_dim": 8},
        "audio": {"width": 8, "blocks": 2, "convs_per_block": 1, "embed_dim": 8}}


def test_eval_leaves_out_another_edition_of_a_training_piece(tmp_path):
    pairs = synthetic_pairs(n_pieces=6, per_piece=20, splits=(0.5, 0.17))
    names = ["kern-009-1et2-1a-w-001-aaaaaa", "kern-030-1-bh-001-bbbbbb", "kern-040-1-tr-001-cccccc",  # train
             "kern-021-1a-bh-001-dddddd",  # valid
             "kern-009-1-ki-001-eeeeee",   # test: Op. 9 No. 1 again, another edition: heard
             "kern-006-1-ki-003-ffffff"]   # test: new music
    pairs.splits = {s: [names[pairs.pieces.index(p)] for p in ps] for s, ps in pairs.splits.items()}
    pairs.pieces = names
    assert pairs.splits["test"] == names[4:]
    pairs.save(tmp_path / "pairs")
    res = train(TrainConfig(mode="snippet", data=str(tmp_path / "pairs"), out_dir=str(tmp_path / "run"),
                            arch=TINY, epochs=1, batch_size=16, threads=1, augment=False, valid_pairs=20),
                resume=False)
    assert read_checkpoint(res.best_path)["data"]["trained_on"] == sorted(names[:3])
    kw = dict(split="test", candidates=100, excerpts=5, top=5, threads=1)
    fair = evaluate(res.best_path, tmp_path / "pairs", **kw)
    everything = evaluate(res.best_path, tmp_path / "pairs", include_heard=True, **kw)
    assert fair["heard"]["left_out"]["test_pieces"] == ["kern-009-1-ki-001-eeeeee"]
    assert fair["snippet_retrieval"]["audio_to_sheet"]["n"] == 20
    assert everything["snippet_retrieval"]["audio_to_sheet"]["n"] == 40 and "heard" not in everything
    assert fair["piece_identification"]["metrics"]["n"] == 1
    # another folder with only a test split (e.g. merged test sets), and a checkpoint that does not list
    # its pieces: the folder the model was trained on says what it heard
    pairs.splits = {"test": names[4:]}
    pairs.save(tmp_path / "testonly")
    ckpt = read_checkpoint(res.best_path)
    del ckpt["data"]["trained_on"]
    import torch

    torch.save(ckpt, tmp_path / "unlisted.pt")
    blind = evaluate(tmp_path / "unlisted.pt", tmp_path / "testonly", **kw)
    told = evaluate(tmp_path / "unlisted.pt", tmp_path / "testonly", trained_pairs=tmp_path / "pairs", **kw)
    assert blind["heard"]["left_out"]["test_pieces"] == []
    assert told["heard"]["left_out"]["test_pieces"] == ["kern-009-1-ki-001-eeeeee"]


def test_real_scan_queries_of_heard_music_are_left_out(tmp_path, monkeypatch):
    import json

    import numpy as np

    import companion.evaluation.scans as scans
    from companion.data.works import HeardMusic

    def unit(n: int, seed: int) -> np.ndarray:
        z = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    monkeypatch.setattr(scans, "scan_library", lambda d, works, systems: (
        np.zeros((4 * len(works), 80, 100), np.uint8), np.repeat(np.arange(len(works)), 4)))
    rng = np.random.default_rng(0)
    corpus = {"op070-001": "kern-070-1-meif-001-718393", "op070-002": "kern-070-1-meif-002-ccc801",
              "op072-001": "kern-072-1-meif-001-nocturne-44c98b"}
    for key in corpus:
        np.save(tmp_path / f"{key}.npy", rng.random((92, 700)).astype(np.float32))
    (tmp_path / "queries.json").write_text(json.dumps({"pieces": {k: f"/c/pieces/{v}" for k, v in corpus.items()}}))
    es = lambda x: unit(len(x), 1)  # noqa: E731
    ea = lambda x: unit(len(x), len(x))  # noqa: E731
    every = scans.evaluate_scans(es, ea, tmp_path, tmp_path)
    # trained on the nocturne Op. 72 No. 1 in another edition's file name: its queries go
    fair = scans.evaluate_scans(es, ea, tmp_path, tmp_path,
                                heard=HeardMusic(["kern-072-1-meif-001-nocturne-44c98b"]).heard)
    assert every["queries"] == 9 and every["heard_query_pieces"] == []
    assert fair["queries"] == 6 and fair["heard_query_pieces"] == ["op072-001"]
