"""Activating a trained model: comparison, atomic install with a backup, restore, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from companion.models.activate import (
    activate_model,
    compare_with_active,
    describe_model,
    previous_model_path,
    restore_previous,
)
from companion.models.checkpoint import CheckpointError, save_checkpoint
from companion.models.embedder import Embedder
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, EncoderConfig, SnippetModel, SnippetModelConfig


def tiny(seed: int) -> SnippetModel:
    torch.manual_seed(seed)
    return SnippetModel(SnippetModelConfig(EncoderConfig(SHEET_SHAPE, 4, 4, 1), EncoderConfig(AUDIO_SHAPE, 4, 4, 1)))


def valid(score: float, n: int = 64) -> dict:
    return {"audio_to_sheet": {"MRR": score, "R@1": score / 2, "R@10": min(1.0, score * 2), "median_rank": 12.0,
                               "n": n},
            "sheet_to_audio": {"MRR": score, "R@1": score / 2, "R@10": min(1.0, score * 2), "n": n},
            "score": score}


def write(path: Path, seed: int, score: float, mode: str = "snippet", data: str = "/data/pairs") -> Path:
    save_checkpoint(tiny(seed), path, recipe={"mode": mode, "data": data, "valid_pairs": 64, "seed": 0},
                    metrics={"valid": valid(score), "epoch": 3}, data={"source": "test pairs"})
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    write(d / "snippet.pt", seed=1, score=0.20)
    return d


def test_comparison_puts_the_metrics_side_by_side(tmp_path: Path, models: Path) -> None:
    cand = write(tmp_path / "run" / "best.pt", seed=2, score=0.35)
    cmp = compare_with_active(cand, models)
    assert cmp.current is not None and cmp.current.path == models / "snippet.pt"
    rows = {label: (a, b) for label, a, b in cmp.rows}
    assert rows["MRR (mean)"] == ("0.350", "0.200")
    assert rows["audio → sheet R@1"] == ("0.175", "0.100")
    assert rows["validation items"] == ("64", "64")
    assert rows["audio → sheet median rank"] == ("12", "12")
    assert rows["best epoch"] == ("4", "4"), "stored 0-based, shown from 1 like the curves"
    assert cmp.same_validation and cmp.better is True
    # validated on other data: the numbers are shown but not called better or worse
    other = write(tmp_path / "run2" / "best.pt", seed=3, score=0.9, data="/other/pairs")
    cmp2 = compare_with_active(other, models)
    assert not cmp2.same_validation and cmp2.better is None


def test_comparison_without_an_active_model(tmp_path: Path) -> None:
    cand = write(tmp_path / "best.pt", seed=2, score=0.3)
    cmp = compare_with_active(cand, tmp_path / "empty-models")
    assert cmp.current is None and cmp.better is None
    assert all(b == "—" for _, _, b in cmp.rows)


def test_activation_installs_atomically_and_keeps_the_previous_model(tmp_path: Path, models: Path) -> None:
    old_bytes = (models / "snippet.pt").read_bytes()
    old_version = Embedder(models).model_version
    cand = write(tmp_path / "run" / "best.pt", seed=2, score=0.35)
    act = activate_model(cand, models)
    assert act.kind == "snippet" and act.installed == models / "snippet.pt"
    assert (models / "snippet.pt").read_bytes() == cand.read_bytes()
    assert act.backup == previous_model_path(models, "snippet") and act.backup.read_bytes() == old_bytes
    assert act.old_version != act.new_version == describe_model(cand).version
    assert not [p for p in models.rglob("*") if p.name.endswith(".tmp")], "no temporary file is left"
    assert sorted(p.name for p in models.glob("*.pt")) == ["snippet.pt"], "the backup is not loaded as a model"
    assert Embedder(models).model_version != old_version, "the library sees a new model version"
    # restore swaps back, and can itself be undone
    back = restore_previous(models, "snippet")
    assert (models / "snippet.pt").read_bytes() == old_bytes
    assert back.backup is not None and back.backup.read_bytes() == cand.read_bytes()
    assert Embedder(models).model_version == old_version
    restore_previous(models, "snippet")
    assert (models / "snippet.pt").read_bytes() == cand.read_bytes()


def test_first_activation_has_no_backup_and_restore_says_so(tmp_path: Path) -> None:
    cand = write(tmp_path / "best.pt", seed=2, score=0.3)
    act = activate_model(cand, tmp_path / "models")
    assert act.backup is None and act.old_version is None and (tmp_path / "models" / "snippet.pt").is_file()
    with pytest.raises(CheckpointError, match="nothing to restore"):
        restore_previous(tmp_path / "models", "snippet")


def test_bad_candidates_are_refused_and_change_nothing(tmp_path: Path, models: Path) -> None:
    before = (models / "snippet.pt").read_bytes()
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 not a model")
    with pytest.raises(CheckpointError, match="corrupt"):
        activate_model(corrupt, models)
    with pytest.raises(CheckpointError, match="not found"):
        activate_model(tmp_path / "missing.pt", models)
    simclr = write(tmp_path / "simclr.pt", seed=4, score=0.5, mode="simclr-sheet")
    with pytest.raises(CheckpointError, match="pre-training"):
        activate_model(simclr, models)
    with pytest.raises(CheckpointError, match="already the active"):
        activate_model(models / "snippet.pt", models)
    assert (models / "snippet.pt").read_bytes() == before
    assert not previous_model_path(models, "snippet").exists()


def test_read_only_models_folder_gives_a_clear_message(tmp_path: Path, models: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import companion.models.activate as activate

    cand = write(tmp_path / "best.pt", seed=2, score=0.3)
    before = (models / "snippet.pt").read_bytes()
    # the test may run as root, which ignores folder permissions: simulate a read-only folder
    monkeypatch.setattr(activate.os, "access", lambda path, mode: Path(path) != models)
    with pytest.raises(CheckpointError, match="not writable"):
        activate_model(cand, models)
    assert (models / "snippet.pt").read_bytes() == before
