import numpy as np
import pytest
import torch

from companion.errors import CompanionError
from companion.models.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from companion.models.embedder import Embedder, ModelNotFoundError
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, EncoderConfig, SnippetModel, SnippetModelConfig
from companion.models.passage import PassageModel, PassageModelConfig


def tiny_snippet() -> SnippetModel:
    torch.manual_seed(0)
    return SnippetModel(SnippetModelConfig(EncoderConfig(SHEET_SHAPE, 4, 4, 1), EncoderConfig(AUDIO_SHAPE, 4, 4, 1))).eval()


def test_round_trip_with_weights_only(tmp_path):
    m = tiny_snippet()
    path = tmp_path / "snippet.pt"
    save_checkpoint(m, path, data={"pairs": 10}, recipe={"mode": "snippet"}, metrics={"MRR": 0.5})
    raw = torch.load(path, weights_only=True)  # plain types + tensors only
    assert raw["kind"] == "snippet" and raw["metrics"]["MRR"] == 0.5 and raw["format_version"] == 1
    m2, ckpt = load_model(path)
    x = torch.randint(0, 256, (2, *SHEET_SHAPE), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(m.embed_sheet(x), m2.embed_sheet(x))
    assert ckpt["companion_version"] and ckpt["created"]
    assert not list(tmp_path.glob("*.tmp"))  # atomic save leaves no temp file


def test_corrupt_and_foreign_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(bad)
    truncated = tmp_path / "trunc.pt"
    save_checkpoint(tiny_snippet(), truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        read_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a companion"):
        read_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")
    assert issubclass(CheckpointError, CompanionError)


def test_newer_format_and_mismatched_weights_are_refused(tmp_path):
    path = tmp_path / "m.pt"
    ckpt = save_checkpoint(tiny_snippet(), path)
    ckpt["format_version"] = 99
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="newer"):
        read_checkpoint(path)
    ckpt["format_version"] = 1
    ckpt["arch"]["sheet"]["width"] = 8
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(path)


def test_embedder_finds_models_and_versions_them(tmp_path):
    with pytest.raises(ModelNotFoundError):
        Embedder(tmp_path)
    m = tiny_snippet()
    save_checkpoint(m, tmp_path / "snippet.pt")
    emb = Embedder(tmp_path, threads=1)
    sheet = np.random.default_rng(0).integers(0, 256, (3, *SHEET_SHAPE), dtype=np.uint8)
    audio = np.random.default_rng(1).random((4, *AUDIO_SHAPE)).astype(np.float32)
    zs, za = emb.embed_sheet_snippets(sheet), emb.embed_audio_excerpts(audio)
    assert zs.shape == (3, 32) and za.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(za, axis=1), 1.0, atol=1e-5)
    assert emb.embed_sheet_snippets(sheet[0]).shape == (1, 32)
    with pytest.raises(CompanionError, match="expected shape"):
        emb.embed_audio_excerpts(np.zeros((2, 92, 40), np.float32))
    with pytest.raises(CompanionError, match="NaN"):
        emb.embed_audio_excerpts(np.full((1, *AUDIO_SHAPE), np.nan, np.float32))
    v1 = emb.model_version
    assert v1 == Embedder(tmp_path).model_version
    with torch.no_grad():
        m.audio.head.weight.add_(0.1)
    save_checkpoint(m, tmp_path / "snippet.pt")
    assert Embedder(tmp_path).model_version != v1


def test_embedder_passages(tmp_path):
    save_checkpoint(tiny_snippet(), tmp_path / "snippet.pt")
    cfg = PassageModelConfig(sheet=EncoderConfig(SHEET_SHAPE, 4, 4, 1), audio=EncoderConfig((92, 20), 4, 4, 1), hidden=8)
    save_checkpoint(PassageModel(cfg).eval(), tmp_path / "passage.pt")
    emb = Embedder(tmp_path)
    strips = [np.full((80, 400), 255, np.uint8), np.full((80, 60), 200, np.uint8)]
    z = emb.embed_sheet_passages(strips)
    assert z.shape == (2, 64)
    seqs = [np.full((5, 80, 100), 255, np.uint8), np.zeros((2, 80, 100), np.uint8)]
    assert emb.embed_sheet_passages(seqs).shape == (2, 64)
    za = emb.embed_audio_passages([np.random.rand(150, 92).astype(np.float32)])
    assert za.shape == (1, 64)
    with pytest.raises(CompanionError):
        emb.embed_sheet_passages([np.zeros((50, 100), np.uint8)])
