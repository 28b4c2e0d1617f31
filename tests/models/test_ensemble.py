import json

import numpy as np
import pytest
import torch

from companion.cli import main
from companion.models.activate import describe_model
from companion.evaluation.run import evaluate
from companion.models.cca import apply_cca, refit_checkpoint
from companion.models.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from companion.models.embedder import Embedder
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, EncoderConfig, SnippetModel, SnippetModelConfig
from companion.models.ensemble import SnippetEnsemble, build_ensemble
from companion.models.passage import PassageModel, PassageModelConfig
from companion.training.data import synthetic_pairs


def member(seed: int, dim: int = 32) -> SnippetModel:
    torch.manual_seed(seed)
    return SnippetModel(SnippetModelConfig(EncoderConfig(SHEET_SHAPE, 4, 4, 1, embed_dim=dim),
                                           EncoderConfig(AUDIO_SHAPE, 4, 4, 1, embed_dim=dim))).eval()


@pytest.fixture()
def members(tmp_path):
    paths = []
    for seed, dim in ((1, 32), (2, 16)):
        path = tmp_path / f"m{seed}.pt"
        save_checkpoint(member(seed, dim), path, data={"train_pairs": 100 * seed}, recipe={"mode": "snippet", "seed": seed},
                        metrics={"valid": {"score": 0.1 * seed}})
        paths.append(path)
    return paths


def test_an_ensemble_averages_its_members_cosines(members, tmp_path):
    out = tmp_path / "ens.pt"
    build_ensemble(members, out)
    ens, ckpt = load_model(out)  # a plain weights_only checkpoint of kind "snippet"
    assert isinstance(ens, SnippetEnsemble) and ckpt["kind"] == "snippet" and ens.embed_dim == 48
    assert [m["data"]["train_pairs"] for m in ckpt["data"]["members"]] == [100, 200]
    assert ckpt["recipe"]["mode"] == "snippet-ensemble" and len(ckpt["recipe"]["members"]) == 2
    a, b = member(1, 32), member(2, 16)
    rng = np.random.default_rng(0)
    sheets = torch.from_numpy(rng.integers(0, 256, (6, *SHEET_SHAPE), dtype=np.uint8))
    audio = torch.from_numpy(rng.random((6, *AUDIO_SHAPE)).astype(np.float32))
    with torch.inference_mode():
        zs, za = ens.embed_sheet(sheets), ens.embed_audio(audio)
        mean_cos = 0.5 * (a.embed_audio(audio) @ a.embed_sheet(sheets).T + b.embed_audio(audio) @ b.embed_sheet(sheets).T)
    assert torch.allclose(za @ zs.T, mean_cos, atol=1e-5)
    assert torch.allclose(zs.norm(dim=1), torch.ones(6), atol=1e-5)


def test_the_app_and_eval_use_an_ensemble_like_a_snippet_model(members, tmp_path):
    models = tmp_path / "models"
    build_ensemble(members, models / "snippet.pt")
    emb = Embedder(models)
    assert emb.snippet_dim == 48
    z = emb.embed_audio_excerpts(np.random.default_rng(0).random((3, *AUDIO_SHAPE)).astype(np.float32))
    assert z.shape == (3, 48)
    assert emb.embed_sheet_snippets(np.zeros((0, *SHEET_SHAPE), np.uint8)).shape == (0, 48)
    pairs = synthetic_pairs(n_pieces=12, per_piece=40, seed=3)
    pairs.save(tmp_path / "pairs")
    r = evaluate(models / "snippet.pt", tmp_path / "pairs", split="test", candidates=100, excerpts=5, top=5, threads=1)
    assert r["snippet_retrieval"]["candidates"] == 100


def test_members_keep_their_cca_and_the_command_measures_the_ensemble(members, tmp_path, capsys):
    synthetic_pairs(n_pieces=12, per_piece=40, seed=3).save(tmp_path / "pairs")
    refit_checkpoint(members[0], tmp_path / "pairs", max_items=200, reg=1e-3)  # member 0 carries a CCA
    cca = read_checkpoint(members[0])["extra"]["cca"]
    out = tmp_path / "ens.pt"
    assert main(["ensemble", *map(str, members), "--out", str(out), "--pairs", str(tmp_path / "pairs"),
                 "--valid-pairs", "60", "--threads", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    ckpt = read_checkpoint(out)
    assert ckpt["metrics"]["valid"]["audio_to_sheet"]["n"] == 60 and len(summary["valid"]["MRR"]) == 2
    assert "cca" not in ckpt["extra"] and ckpt["data"]["members"][0]["cca_fit"]["items"] == 200
    info = describe_model(out)  # what the training tab shows beside a candidate
    assert info.kind == "snippet" and info.mode == "snippet-ensemble" and "60 held-out items" in info.validation_data
    # the ensemble embeds as the members do in the app: member 0 through its CCA, member 1 as it is
    ens, _ = load_model(out)
    x = np.random.default_rng(1).random((5, *AUDIO_SHAPE)).astype(np.float32)
    with torch.inference_mode():
        z0 = apply_cca(member(1, 32).embed_audio(torch.from_numpy(x)).numpy(), cca["x_mean"], cca["x_proj"])
        z1 = member(2, 16).embed_audio(torch.from_numpy(x)).numpy()
        z = ens.embed_audio(torch.from_numpy(x)).numpy()
    assert np.allclose(z, np.concatenate([z0, z1], 1) / np.sqrt(2), atol=1e-5)
    # without the members' CCAs it is another model, and another model version to the library
    assert main(["ensemble", *map(str, members), "--out", str(tmp_path / "plain" / "snippet.pt"),
                 "--no-member-cca", "--threads", "1"]) == 0
    (tmp_path / "withcca").mkdir()
    out.rename(tmp_path / "withcca" / "snippet.pt")
    assert Embedder(tmp_path / "plain").model_version != Embedder(tmp_path / "withcca").model_version


def test_an_ensemble_needs_two_single_snippet_models(members, tmp_path):
    with pytest.raises(CheckpointError, match="at least two"):
        build_ensemble(members[:1], tmp_path / "e.pt")
    save_checkpoint(PassageModel(PassageModelConfig()), tmp_path / "p.pt")
    with pytest.raises(CheckpointError, match="not a single snippet model"):
        build_ensemble([members[0], tmp_path / "p.pt"], tmp_path / "e.pt")
    build_ensemble(members, tmp_path / "e.pt")
    with pytest.raises(CheckpointError, match="not a single snippet model"):
        build_ensemble([members[0], tmp_path / "e.pt"], tmp_path / "e2.pt")
    assert not (tmp_path / "e2.pt").exists()


def test_an_ensemble_cannot_initialise_a_training_run(members, tmp_path):
    from companion.training.trainer import _load_init

    build_ensemble(members, tmp_path / "e.pt")
    with pytest.raises(CheckpointError, match="one of its members"):
        _load_init(member(3), str(tmp_path / "e.pt"), freeze=False)
