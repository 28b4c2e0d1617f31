import json
import threading

import numpy as np
import pytest
import torch

from companion.cli import main
from companion.errors import CompanionError
from companion.models.checkpoint import read_checkpoint
from companion.training.augment import AudioAugment, SheetAugment, augment_audio, augment_sheet, crop
from companion.training.config import ConfigError, TrainConfig
from companion.training.data import PairSet, synthetic_pairs
from companion.training.trainer import train

TINY = {"sheet": {"input_shape": [80, 100], "width": 4, "convs_per_block": 1},
        "audio": {"input_shape": [92, 42], "width": 4, "convs_per_block": 1}}


def tiny(tmp_path, **kw) -> TrainConfig:
    base = dict(mode="snippet", data="synthetic", out_dir=str(tmp_path / "run"), arch=TINY, epochs=2,
                batch_size=32, lr=3e-3, augment=False, threads=1, valid_pairs=200)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_decreases_and_learns_hidden_label(tmp_path):
    res = train(tiny(tmp_path, epochs=4, arch={**TINY, "sheet": {**TINY["sheet"], "width": 8},
                                                "audio": {**TINY["audio"], "width": 8}}), resume=False)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < 0.5 * losses[0]
    # 80 validation pairs, 8 hidden labels: chance MRR is ~0.06; learning the label gives far more.
    assert res.best_score > 0.15
    ckpt = read_checkpoint(res.best_path)
    assert ckpt["kind"] == "snippet" and "valid" in ckpt["metrics"] and ckpt["data"]["train_pairs"] > 0


def test_resume_gives_the_same_state(tmp_path):
    full = train(tiny(tmp_path, out_dir=str(tmp_path / "a"), epochs=2), resume=False)
    train(tiny(tmp_path, out_dir=str(tmp_path / "b"), epochs=1), resume=False)
    resumed = train(tiny(tmp_path, out_dir=str(tmp_path / "b"), epochs=2), resume=True)
    assert resumed.epochs_done == full.epochs_done == 2
    sa = torch.load(tmp_path / "a" / "state.pt", weights_only=True)["model"]
    sb = torch.load(tmp_path / "b" / "state.pt", weights_only=True)["model"]
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6), k


def test_cancel_stops_promptly_and_resumes_mid_epoch(tmp_path):
    cancel = threading.Event()
    steps = []

    def cb(p):
        if p.phase == "train":
            steps.append(p.step)
            if p.step == 2:
                cancel.set()

    res = train(tiny(tmp_path, epochs=3), [cb], cancel, resume=False)
    assert res.status == "cancelled" and steps == [1, 2]
    state = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert state["epoch"] == 0 and state["step"] == 2
    steps.clear()
    res2 = train(tiny(tmp_path, epochs=1), [lambda p: p.phase == "train" and steps.append(p.step)], resume=True)
    assert res2.status == "done" and steps[0] == 3


def test_cosine_schedule_anneals_over_the_budget_and_resumes_on_the_same_curve(tmp_path):
    def lrs_of(cfg, resume, cancel_at=None):
        seen, cancel = [], threading.Event()

        def cb(p):
            if p.phase == "train":
                seen.append(p.lr)
                if cancel_at is not None and len(seen) == cancel_at:
                    cancel.set()

        res = train(cfg, [cb], cancel, resume=resume)
        return seen, res

    kw = dict(epochs=3, steps_per_epoch=4, lr_schedule="cosine", lr=1e-3, min_lr=1e-5, early_stop_patience=1)
    full, res = lrs_of(tiny(tmp_path, out_dir=str(tmp_path / "a"), **kw), False)
    # Every epoch runs (no early stop on the fixed budget), and the rate falls from lr towards min_lr.
    assert res.status == "done" and res.epochs_done == 3 and len(full) == 12
    assert full[0] == pytest.approx(1e-3) and all(b < a for a, b in zip(full, full[1:]))
    assert full[-1] < 0.05 * full[0]
    first, res1 = lrs_of(tiny(tmp_path, out_dir=str(tmp_path / "b"), **kw), False, cancel_at=6)
    assert res1.status == "cancelled"
    rest, _ = lrs_of(tiny(tmp_path, out_dir=str(tmp_path / "b"), **kw), True)
    assert len(first) == 6 and first + rest == pytest.approx(full)
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"mode": "snippet", "data": "synthetic", "lr_schedule": "step"})


def test_simclr_and_passage_modes_run(tmp_path):
    for mode in ("simclr-sheet", "simclr-audio"):
        r = train(tiny(tmp_path, mode=mode, out_dir=str(tmp_path / mode), epochs=1, augment=True), resume=False)
        assert r.status == "done" and r.best_path is not None
    sheet_ckpt = tmp_path / "simclr-sheet" / "best.pt"
    r = train(tiny(tmp_path, out_dir=str(tmp_path / "init"), epochs=1, init_from=str(sheet_ckpt)), resume=False)
    assert read_checkpoint(r.best_path)["data"]["init_from"] == ["sheet<-best.pt"]
    parch = {"sheet": TINY["sheet"], "audio": {"input_shape": [92, 20], "width": 4, "convs_per_block": 1}, "hidden": 8}
    r = train(tiny(tmp_path, mode="passage", arch=parch, out_dir=str(tmp_path / "passage"), epochs=1, batch_size=8),
              resume=False)
    assert r.status == "done" and read_checkpoint(r.best_path)["kind"] == "passage"


def test_augmentations_keep_shapes_and_ranges():
    p = synthetic_pairs(n_pieces=2, per_piece=8)
    g = torch.Generator().manual_seed(0)
    s = augment_sheet(torch.from_numpy(p.sheet), 100, SheetAugment(p=1.0), g)
    a = augment_audio(torch.from_numpy(p.audio.astype(np.float32)), 42, AudioAugment(p=1.0), g)
    assert s.shape == (16, 80, 100) and 0.0 <= s.min() and s.max() <= 1.0
    assert a.shape == (16, 92, 42) and torch.isfinite(a).all() and a.min() >= 0
    assert not torch.allclose(a, augment_audio(torch.from_numpy(p.audio.astype(np.float32)), 42, AudioAugment(p=1.0), g))


def test_bounded_shift_keeps_crops_near_the_centre():
    """Supervised pairs: the audio crop must stay on the snippet's notes (max_shift), while
    unbounded crops (self-supervised views) may land anywhere in the context."""
    g = torch.Generator().manual_seed(0)
    ramp = torch.arange(82, dtype=torch.float32)[None, None, :].expand(400, 92, 82)  # column index
    centre = (82 - 42) // 2
    starts = crop(ramp, 42, g, True, max_shift=2)[:, 0, 0]
    assert starts.min() >= centre - 2 and starts.max() <= centre + 2 and len(set(starts.tolist())) == 5
    assert (crop(ramp, 42, g, True)[:, 0, 0] - centre).abs().max() > 10
    # With time stretch the read is resampled; its middle column must still be near the centre.
    spec = torch.log10(1 + ramp)  # augment_audio works in the log domain
    aug = AudioAugment(p=1.0, stretch=(0.8, 1.25), max_shift=2, noise_snr_db=(200.0, 200.0), gain_db=0.0,
                       eq_bands=0, time_mask=0, freq_mask=0)
    mid = torch.pow(10.0, augment_audio(spec, 42, aug, g)[:, 0, 20:22].mean(1)) - 1
    assert (mid - 40.5).abs().max() <= 2.6
    sheet = (torch.arange(120)[None, None, :] % 256).to(torch.uint8).expand(50, 80, 120)
    saug = SheetAugment(p=0.0, max_shift=3)
    first = augment_sheet(sheet, 100, saug, g)[:, 0, 0] * 255
    assert ((first - 10).abs() <= 3.01).all()


def test_pairset_save_load_and_errors(tmp_path):
    p = synthetic_pairs(n_pieces=3, per_piece=4)
    p.save(tmp_path / "pairs")
    q = PairSet.load(tmp_path / "pairs")
    assert len(q) == 12 and q.splits == p.splits and np.array_equal(q.sheet, p.sheet)
    with pytest.raises(CompanionError, match="no prepared"):
        PairSet.load(tmp_path / "nothing")
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"mode": "snippet", "data": "x", "bogus": 1})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"mode": "dance", "data": "x"})
    with pytest.raises(ConfigError, match="loss"):
        TrainConfig.from_dict({"mode": "snippet", "data": "x", "loss": "triplet"})


def test_info_nce_and_height_pooling_learn_the_hidden_label(tmp_path):
    arch = {k: {**v, "width": 8, "pool": "height"} for k, v in TINY.items()}
    res = train(tiny(tmp_path, epochs=4, arch=arch, loss="infonce", temperature=0.1), resume=False)
    assert res.best_score > 0.15
    assert read_checkpoint(res.best_path)["arch"]["sheet"]["pool"] == "height"


def test_hardest_negative_hinge_learns_the_hidden_label(tmp_path):
    arch = {k: {**v, "width": 8} for k, v in TINY.items()}
    res = train(tiny(tmp_path, epochs=4, arch=arch, loss="hinge-hardest", margin=0.3), resume=False)
    assert res.best_score > 0.15
    assert read_checkpoint(res.best_path)["recipe"]["loss"] == "hinge-hardest"


def test_piece_grouped_batches_hold_few_pieces_and_still_learn(tmp_path):
    from companion.training.trainer import SnippetTask, build_task

    cfg = tiny(tmp_path, pieces_per_batch=3, batch_size=30, epochs=3,
               arch={k: {**v, "width": 8} for k, v in TINY.items()})
    task = build_task(cfg)
    assert isinstance(task, SnippetTask)
    order = task.epoch_order(np.random.default_rng(0), 4 * 30)
    assert len(order) == 120 and np.isin(order, task.train_idx).all()
    for b in order.reshape(4, 30):
        assert len(set(b.tolist())) == 30  # no pair twice in a batch
        _, counts = np.unique(task.pairs.piece[b], return_counts=True)
        assert sorted(counts.tolist()) == [10, 10, 10]
    uniform = build_task(tiny(tmp_path, batch_size=30)).epoch_order(np.random.default_rng(0), 120)
    assert max(len(np.unique(task.pairs.piece[b])) for b in uniform.reshape(4, 30)) > 3
    res = train(cfg, resume=False)
    assert res.best_score > 0.15
    with pytest.raises(ConfigError, match="pieces_per_batch"):
        TrainConfig.from_dict({"mode": "snippet", "data": "x", "batch_size": 8, "pieces_per_batch": 9})


def test_cli_train_and_eval_on_tiny_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in a config are relative to the current folder
    synthetic_pairs(n_pieces=6, per_piece=20).save(tmp_path / "pairs")
    cfg = {"mode": "snippet", "data": "pairs", "out_dir": "run", "arch": TINY, "epochs": 1, "batch_size": 16,
           "threads": 1, "augment": True}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    assert main(["train", "--config", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "done" and (tmp_path / "run" / "best.pt").is_file()
    assert main(["eval", "--model", str(tmp_path / "run" / "best.pt"), "--pairs", str(tmp_path / "pairs"),
                 "--split", "test", "--out", str(tmp_path / "ev"), "--json"]) == 0
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert ev["snippet_retrieval"]["audio_to_sheet"]["n"] > 0 and "piece_identification" in ev
    assert (tmp_path / "ev" / "ranks.png").is_file()
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["train", "--config", str(bad)]) == 1


def test_a_run_with_cca_fits_the_projection_into_its_best_checkpoint(tmp_path):
    seen = []
    res = train(tiny(tmp_path, epochs=1, cca=True), [seen.append], resume=False)
    cca = [p for p in seen if p.phase == "cca"]
    assert cca and "valid MRR" in cca[-1].message
    extra = read_checkpoint(res.best_path)["extra"]
    assert extra["cca"]["x_proj"].shape == (32, 32) and extra["cca_fit"]["split"] == "train"
    assert extra["cca_fit"]["kind"] == "snippet" and "none" in extra["cca_fit"]["valid"]["mrr"]
    # too few training passages for a 64-d CCA (48 synthetic ones): the run ends well, its model as trained
    seen.clear()
    parch = {"sheet": TINY["sheet"], "audio": {"input_shape": [92, 20], "width": 4, "convs_per_block": 1}, "hidden": 8}
    res = train(tiny(tmp_path, mode="passage", arch=parch, out_dir=str(tmp_path / "p"), epochs=1, batch_size=8,
                     cca=True), [seen.append], resume=False)
    assert res.status == "done" and "CCA not fitted" in [p for p in seen if p.phase == "cca"][-1].message
    assert "cca" not in read_checkpoint(res.best_path)["extra"]


def test_passage_audio_windows_train_and_validate(tmp_path):
    from companion.models.passage import PassageModel, PassageModelConfig
    from companion.training.data import synthetic_passages
    from companion.training.trainer import PassageTask

    parch = {"sheet": TINY["sheet"], "audio": {"input_shape": [92, 20], "width": 4, "convs_per_block": 1}, "hidden": 8}
    cfg = tiny(tmp_path, mode="passage", arch=parch, out_dir=str(tmp_path / "pw"), epochs=1, batch_size=8,
               passage_audio_crop=[24, 48], passage_crop_p=1.0)
    passages = synthetic_passages()
    task = PassageTask(cfg, passages, PassageModel(PassageModelConfig.from_dict(parch)))
    gen = torch.Generator().manual_seed(0)
    spec = torch.from_numpy(passages.spectrogram(0))
    lengths = {task._crop(spec, gen, training=True).shape[1] for _ in range(50)}
    assert min(lengths) >= 24 and max(lengths) <= 48 and len(lengths) > 5
    assert task._crop(spec, gen, training=False).shape[1] == 36
    assert task._crop(spec[:, :30], gen, training=False).shape[1] == 30  # shorter than the window: whole
    res = train(cfg, resume=False)
    valid = res.history[-1]["valid"]
    assert set(valid["audio_window"]) >= {"audio_to_sheet", "sheet_to_audio", "score"}
    assert valid["score"] == pytest.approx(0.5 * (0.5 * (valid["audio_to_sheet"]["MRR"] + valid["sheet_to_audio"]["MRR"])
                                                  + valid["audio_window"]["score"]))
    with pytest.raises(ConfigError):
        tiny(tmp_path, mode="passage", passage_audio_crop=[10, 40]).validate()
    # a fine-tune: a passage run continues from a passage checkpoint, GRUs and heads included
    from companion.training.trainer import _load_init

    fresh = PassageModel(PassageModelConfig.from_dict(parch))
    assert _load_init(fresh, str(res.best_path), freeze=True) == ["passage<-best.pt"]
    trained = read_checkpoint(res.best_path)["state_dict"]
    assert all(torch.equal(v, trained[k]) for k, v in fresh.state_dict().items())
    assert not any(p.requires_grad for p in fresh.audio.cnn.parameters()) and fresh.audio.gru.weight_hh_l0.requires_grad


def test_every_bundled_config_loads_and_the_fine_tune_starts_from_a_model() -> None:
    """The shipped recipes are files users run (`companion train --config`): each must load as it is."""
    from pathlib import Path

    import companion.training

    folder = Path(companion.training.__file__).parent / "configs"
    configs = {p.stem: TrainConfig.load(p) for p in sorted(folder.glob("*.json"))}
    assert {"snippet", "passage", "snippet_hardest"} <= set(configs)
    hard, base = configs["snippet_hardest"], configs["snippet"]
    assert hard.loss == "hinge-hardest" and hard.init_from and hard.lr < base.lr
    assert hard.arch == base.arch  # it fine-tunes a model of the snippet recipe
