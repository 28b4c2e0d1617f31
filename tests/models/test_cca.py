import json

import numpy as np
import pytest
import torch

from companion.cli import main
from companion.errors import CompanionError
from companion.evaluation.metrics import cross_modal_ranks
from companion.evaluation.run import evaluate
from companion.models.cca import REGS, apply_cca, fit_cca, refit_checkpoint
from companion.models.checkpoint import read_checkpoint, save_checkpoint
from companion.models.embedder import Embedder
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, EncoderConfig
from companion.models.passage import PassageModel, PassageModelConfig
from companion.training.data import synthetic_pairs, synthetic_passages

from tests.models.test_checkpoint import tiny_snippet


def test_cca_finds_the_shared_directions_of_two_views():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(2000, 3))
    x = np.c_[shared, rng.normal(size=(2000, 5))] @ rng.normal(size=(8, 8))
    y = np.c_[shared + 0.1 * rng.normal(size=(2000, 3)), rng.normal(size=(2000, 5))] @ rng.normal(size=(8, 8))
    c = fit_cca(x, y)
    corr = c["corr"].numpy()
    assert corr[:3].min() > 0.9 and corr[3:].max() < 0.2  # three shared directions, the rest noise
    zx, zy = apply_cca(x[:100], c["x_mean"], c["x_proj"]), apply_cca(y[:100], c["y_mean"], c["y_proj"])
    assert np.allclose(np.linalg.norm(zx, axis=1), 1, atol=1e-5)
    # in the correlated coordinates matching rows find each other (chance: median rank 50 of 100)
    sx, sy = apply_cca(x[:100], c["x_mean"], c["x_proj"][:, :3]), apply_cca(y[:100], c["y_mean"], c["y_proj"][:, :3])
    r_cca, _ = cross_modal_ranks(sx.astype(np.float32), sy.astype(np.float32))
    assert np.median(r_cca) <= 3
    with pytest.raises(ValueError):
        fit_cca(x[:10], y[:10])


@pytest.fixture()
def model_and_pairs(tmp_path):
    pairs = synthetic_pairs(n_pieces=12, per_piece=40, seed=3)
    pairs.save(tmp_path / "pairs")
    synthetic_passages(n_pieces=12, per_piece=20, seed=3).save(tmp_path / "pairs" / "passages")
    path = tmp_path / "snippet.pt"
    save_checkpoint(tiny_snippet(), path, extra={"note": "kept"})
    return path, tmp_path / "pairs"


def test_refit_writes_a_self_describing_checkpoint_the_app_and_eval_apply(model_and_pairs, tmp_path):
    path, pairs_dir = model_and_pairs
    raw_before = read_checkpoint(path)
    out = tmp_path / "models" / "snippet.pt"
    fit = refit_checkpoint(path, pairs_dir, out, max_items=200)
    assert fit["split"] == "train" and fit["items"] == 200 and fit["pieces"] > 1 and fit["kind"] == "snippet"
    # the ridge was chosen on the validation pairs, and the file records what each choice scored
    scores = fit["valid"]["mrr"]
    assert set(scores) == {"none"} | {f"{r:g}" for r in REGS} and fit["reg"] in REGS
    assert scores[f"{fit['reg']:g}"] == max(v for k, v in scores.items() if k != "none")
    ckpt = torch.load(out, weights_only=True)
    assert ckpt["extra"]["note"] == "kept" and ckpt["extra"]["cca_fit"]["items"] == 200
    assert ckpt["extra"]["cca"]["x_proj"].shape == (32, 32)
    for k, v in raw_before["state_dict"].items():  # the weights are untouched
        assert torch.equal(v, ckpt["state_dict"][k])
    # the app's embedder applies it and its model version says so
    (tmp_path / "plain").mkdir()
    save_checkpoint(tiny_snippet(), tmp_path / "plain" / "snippet.pt")
    with_cca, plain = Embedder(out.parent), Embedder(tmp_path / "plain")
    assert with_cca.cca is not None and with_cca.model_version != plain.model_version
    x = np.random.default_rng(0).random((4, 92, 42)).astype(np.float32)
    za, zp = with_cca.embed_audio_excerpts(x), plain.embed_audio_excerpts(x)
    assert not np.allclose(za, zp) and np.allclose(np.linalg.norm(za, axis=1), 1, atol=1e-5)
    # eval applies it by default and reports it; --no-cca gives the raw model's numbers
    r_cca = evaluate(out, pairs_dir, split="test", candidates=100, excerpts=5, top=5, threads=1)
    r_raw = evaluate(out, pairs_dir, split="test", candidates=100, excerpts=5, top=5, threads=1, use_cca=False)
    r_plain = evaluate(path, pairs_dir, split="test", candidates=100, excerpts=5, top=5, threads=1)
    assert r_cca["snippet_model"]["cca"]["items"] == 200 and r_raw["snippet_model"]["cca"] is None
    assert r_raw["snippet_retrieval"] == r_plain["snippet_retrieval"]
    assert r_cca["snippet_retrieval"] != r_raw["snippet_retrieval"]


def test_refit_refuses_what_it_cannot_fit(model_and_pairs, tmp_path):
    path, pairs_dir = model_and_pairs
    with pytest.raises(CompanionError, match="CCA needs at least"):
        refit_checkpoint(path, pairs_dir, tmp_path / "x.pt", split="valid", max_items=40)
    with pytest.raises(CompanionError, match="no pairs|needs at least"):
        refit_checkpoint(path, pairs_dir, tmp_path / "x.pt", split="nonexistent")
    assert not (tmp_path / "x.pt").exists()


def test_cca_command_overwrites_the_model_in_place(model_and_pairs, capsys):
    path, pairs_dir = model_and_pairs
    assert main(["cca", str(path), "--pairs", str(pairs_dir), "--max-items", "150", "--threads", "1",
                 "--reg", "0.001", "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["items"] == 150 and fit["reg"] == 0.001 and "valid" not in fit
    assert read_checkpoint(path)["extra"]["cca_fit"] == fit


def test_a_passage_model_gets_its_own_projection_which_the_app_and_eval_apply(model_and_pairs, tmp_path):
    snippet, pairs_dir = model_and_pairs
    torch.manual_seed(0)
    cfg = PassageModelConfig(sheet=EncoderConfig(SHEET_SHAPE, 4, 4, 1), audio=EncoderConfig((92, 20), 4, 4, 1),
                             hidden=8)
    models = tmp_path / "models"
    models.mkdir()
    (models / "snippet.pt").write_bytes(snippet.read_bytes())
    save_checkpoint(PassageModel(cfg).eval(), models / "passage.pt")
    before = Embedder(models)
    strips = [np.full((80, 300), 255, np.uint8), np.full((80, 200), 120, np.uint8)]
    z0 = before.embed_sheet_passages(strips)
    assert before.passage_cca is None
    assert main(["cca", str(models / "passage.pt"), "--pairs", str(pairs_dir), "--threads", "1", "--json"]) == 0
    after = Embedder(models)
    fit = torch.load(models / "passage.pt", weights_only=True)["extra"]["cca_fit"]
    assert fit["kind"] == "passage" and fit["items"] == 140 and fit["reg"] in REGS
    assert after.passage_cca is not None and after.model_version != before.model_version
    z1 = after.embed_sheet_passages(strips)
    assert z1.shape == z0.shape and not np.allclose(z0, z1)
    assert np.allclose(np.linalg.norm(z1, axis=1), 1, atol=1e-5)
    za = after.embed_audio_passages([np.random.default_rng(0).random((150, 92)).astype(np.float32)])
    assert za.shape == (1, 64)
    # a ridge refitted to another value is another model version (the library re-embeds)
    refit_checkpoint(models / "passage.pt", pairs_dir, reg=0.01 if fit["reg"] != 0.01 else 0.001)
    assert Embedder(models).model_version != after.model_version
    kw = dict(passage_model=models / "passage.pt", passages_dir=pairs_dir / "passages", split="test",
              candidates=100, excerpts=5, top=5, threads=1)
    r_cca = evaluate(models / "snippet.pt", pairs_dir, **kw)
    r_raw = evaluate(models / "snippet.pt", pairs_dir, use_cca=False, **kw)
    assert r_cca["passage_model"]["cca"]["kind"] == "passage" and r_raw["passage_model"]["cca"] is None
    assert r_cca["passage_retrieval"] != r_raw["passage_retrieval"]
