"""The training API shared by ``companion train`` and the GUI's training tab.

``train(config, callbacks, cancel_event, resume=True)`` runs one of four modes
(snippet, passage, simclr-sheet, simclr-audio) and keeps everything needed to
continue in ``out_dir/state.pt``: model, optimiser, epoch, step within the
epoch, best score, patience counters and RNG states. Interrupting (cancel
event, ``max_hours``, Ctrl-C, a crash between saves) loses at most the work
since the last save; the next call with ``resume=True`` continues exactly where
the saved state was (the per-epoch order is derived from ``seed`` and the
epoch, the augmentation generator state is saved).

The best model by validation MRR goes to ``out_dir/best.pt`` as a
self-describing checkpoint (:mod:`companion.models.checkpoint`); the learning
rate is halved after ``plateau_patience`` epochs without improvement and
training stops after ``early_stop_patience``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from companion.errors import CompanionError
from companion.evaluation.metrics import cross_modal_ranks, retrieval_metrics
from companion.models.checkpoint import CheckpointError, atomic_torch_save, make_checkpoint, read_checkpoint
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, SnippetModel, SnippetModelConfig
from companion.models.losses import cosine_hinge_loss, cross_modal_info_nce, hardest_negative_hinge_loss, nt_xent_loss
from companion.models.ensemble import is_ensemble_arch
from companion.models.passage import PASSAGE_AUDIO_SHAPE, PassageModel, PassageModelConfig, cut_windows
from companion.training.augment import AudioAugment, SheetAugment, augment_audio, augment_sheet, crop
from companion.training.config import TrainConfig
from companion.training.data import DataError, PairSet, PassageSet, synthetic_pairs, synthetic_passages

log = logging.getLogger(__name__)
STATE_VERSION = 1
SAVE_EVERY_S = 600.0


@dataclass
class Progress:
    """One progress report; ``phase`` is train | valid | epoch | done | cancelled | paused | stopped."""

    phase: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    pairs_per_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    best_score: float = float("-inf")
    message: str = ""


@dataclass
class TrainResult:
    status: str  # done | early_stopped | cancelled | paused
    epochs_done: int
    best_score: float
    best_path: Path | None
    history: list[dict[str, Any]]
    pairs_per_s: float
    wall_s: float


Callback = Callable[[Progress], None]


class TrainingCancelled(CompanionError):
    pass


def cross_modal_loss(za: torch.Tensor, zs: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """The configured audio/sheet loss over one batch of matching embeddings."""
    if cfg.loss == "infonce":
        return cross_modal_info_nce(za, zs, cfg.temperature)
    if cfg.loss == "hinge-hardest":
        return hardest_negative_hinge_loss(za, zs, cfg.margin)
    return cosine_hinge_loss(za, zs, cfg.margin)


def cosine_lr(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate at global ``step`` of a cosine anneal from ``cfg.lr`` to ``cfg.min_lr``.

    Computed from the step alone, so a resumed run continues on the same curve."""
    frac = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise CompanionError("device 'cuda' requested but no CUDA GPU is available")
        return torch.device("cuda")
    return torch.device("cpu")


# --------------------------------------------------------------------------- tasks


class _Task:
    """Mode-specific data, batches, loss and validation."""

    model: nn.Module
    n_train: int
    data_summary: dict[str, Any]

    def batch_loss(self, idx: np.ndarray, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        raise NotImplementedError

    def validate(self, device: torch.device) -> dict[str, Any]:
        raise NotImplementedError

    def train_indices(self) -> np.ndarray:
        raise NotImplementedError

    def epoch_order(self, rng: np.random.Generator, need: int) -> np.ndarray:
        """The training indices of one epoch, batch after batch: uniform shuffles by default."""
        train_idx = self.train_indices()
        reps = math.ceil(need / len(train_idx))
        return np.concatenate([rng.permutation(train_idx) for _ in range(reps)])[:need]

    def calibration_forward(self, idx: np.ndarray, device: torch.device) -> None:
        """Forward clean (un-augmented) training inputs, used to re-estimate BatchNorm statistics."""
        raise NotImplementedError


def recalibrate_batchnorm(task: _Task, device: torch.device, seed: int, batches: int = 8, batch_size: int = 128) -> None:
    """Re-estimate BatchNorm running statistics on clean training inputs ("precise BN").

    Why: the running averages collected during training follow augmented inputs
    and, early on, lag the weights; evaluation and the shipped model see clean
    inputs. A cumulative average over a few clean batches fixes both.
    """
    bns = [m for m in task.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    idx = task.train_indices()
    rng = np.random.default_rng([seed, 99])
    pick = rng.choice(idx, size=min(len(idx), batches * batch_size), replace=False)
    with torch.no_grad():
        for i in range(0, len(pick), batch_size):
            chunk = pick[i : i + batch_size]
            if len(chunk) >= 2:
                task.calibration_forward(np.sort(chunk), device)
    for m, (mom, training) in zip(bns, saved):
        m.momentum = mom
        m.train(training)


def _embed_in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device, bs: int = 256) -> np.ndarray:
    out = []
    for i in range(0, len(x), bs):
        out.append(fn(x[i : i + bs].to(device)).detach().float().cpu().numpy())
    return np.concatenate(out)


def _direction_metrics(a: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    r_as, r_sa = cross_modal_ranks(a, s)
    m_as, m_sa = retrieval_metrics(r_as), retrieval_metrics(r_sa)
    return {"audio_to_sheet": m_as, "sheet_to_audio": m_sa, "score": 0.5 * (m_as["MRR"] + m_sa["MRR"])}


class SnippetTask(_Task):
    def __init__(self, cfg: TrainConfig, pairs: PairSet, model: SnippetModel) -> None:
        self.cfg, self.pairs, self.model = cfg, pairs, model
        self.train_idx = pairs.indices("train")
        valid = pairs.indices("valid")
        if len(self.train_idx) < cfg.batch_size:
            raise DataError(f"only {len(self.train_idx)} training pairs; need at least one batch ({cfg.batch_size})")
        if len(valid) < 2:
            raise DataError("no validation pairs (the 'valid' split is empty)")
        rng = np.random.default_rng(cfg.seed)
        self.valid_idx = np.sort(rng.choice(valid, size=min(cfg.valid_pairs, len(valid)), replace=False))
        self.n_train = len(self.train_idx)
        # Supervised pairs: tempo already varies 0.8-1.25 in the corpus renders, so the step-level time
        # stretch stays in that range (0.5-1.8 is the self-supervised recipe; here it slowed learning).
        bound = lambda v: None if v < 0 else int(v)  # noqa: E731
        self.aaug = AudioAugment(stretch=(0.8, 1.25), max_shift=bound(cfg.audio_max_shift))
        self.saug = SheetAugment(max_shift=bound(cfg.sheet_max_shift))
        self.data_summary = {**pairs.summary, "train_pairs": int(len(self.train_idx)),
                             "valid_pairs": int(len(valid)),
                             "train_pieces": len(pairs.splits.get("train", [])),
                             "valid_pieces": len(pairs.splits.get("valid", [])),
                             # which pieces it heard, so an evaluation can leave them out (companion.data.works)
                             "trained_on": sorted(pairs.splits.get("train", []))}

    def train_indices(self) -> np.ndarray:
        return self.train_idx

    def epoch_order(self, rng: np.random.Generator, need: int) -> np.ndarray:
        """Uniform shuffles, or with ``pieces_per_batch`` batches of a few pieces each.

        Why: drawn uniformly, a batch of 100 from 200+ pieces almost never holds two snippets of
        the same piece, so the in-batch negatives teach which piece (key, texture) and not which
        bar -- yet retrieval and following must tell the bars of one piece apart.
        """
        k = self.cfg.pieces_per_batch
        if k <= 0:
            return super().epoch_order(rng, need)
        bs = self.cfg.batch_size
        pieces = self.pairs.piece[self.train_idx]
        ids, counts = np.unique(pieces, return_counts=True)
        members = {int(p): self.train_idx[pieces == p] for p in ids}
        k = min(k, len(ids))
        batches = []
        for _ in range(math.ceil(need / bs)):
            chosen = rng.choice(ids, size=k, replace=False, p=counts / counts.sum())
            per = [bs // k + (1 if i < bs % k else 0) for i in range(k)]
            parts = []
            for pid, n in zip(chosen, per):
                pool = members[int(pid)]
                parts.append(rng.choice(pool, size=min(n, len(pool)), replace=False))
            batch = np.concatenate(parts)
            if len(batch) < bs:  # pieces with fewer pairs than their share: fill uniformly
                rest = np.setdiff1d(self.train_idx, batch)
                batch = np.concatenate([batch, rng.choice(rest, size=bs - len(batch), replace=False)])
            batches.append(batch)
        return np.concatenate(batches)[:need]

    def inputs(self, idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(idx)
        s = torch.from_numpy(np.ascontiguousarray(self.pairs.sheet[idx]))
        a = torch.from_numpy(np.asarray(self.pairs.audio[idx], dtype=np.float32))
        if self.cfg.augment:
            return augment_sheet(s, SHEET_SHAPE[1], self.saug, gen), augment_audio(a, AUDIO_SHAPE[1], self.aaug, gen)
        return crop(s, SHEET_SHAPE[1], gen, False), crop(a, AUDIO_SHAPE[1], gen, False)

    def batch_loss(self, idx, gen, device):
        s, a = self.inputs(idx, gen)
        s, a = s.unsqueeze(1).to(device), a.unsqueeze(1).to(device)
        if self.cfg.channels_last:
            s = s.contiguous(memory_format=torch.channels_last)
            a = a.contiguous(memory_format=torch.channels_last)
        zs, za = self.model(s, a)
        return cross_modal_loss(za, zs, self.cfg)

    def calibration_forward(self, idx, device):
        s = torch.from_numpy(np.ascontiguousarray(self.pairs.centre_sheet(idx)))
        a = torch.from_numpy(self.pairs.centre_audio(idx))
        self.model(s.to(device), a.to(device))

    def validate(self, device):
        s = torch.from_numpy(np.ascontiguousarray(self.pairs.centre_sheet(self.valid_idx)))
        a = torch.from_numpy(self.pairs.centre_audio(self.valid_idx))
        zs = _embed_in_chunks(self.model.embed_sheet, s, device)
        za = _embed_in_chunks(self.model.embed_audio, a, device)
        return _direction_metrics(za, zs)


class SimCLRTask(_Task):
    """Self-supervised pre-training of one pathway with NT-Xent on two augmented views."""

    def __init__(self, cfg: TrainConfig, data: np.ndarray, model: SnippetModel, modality: str,
                 summary: dict[str, Any]) -> None:
        self.cfg, self.data, self.model, self.modality = cfg, data, model, modality
        n = len(data)
        if n < cfg.batch_size + 2:
            raise DataError(f"only {n} unlabelled snippets; need more than one batch")
        rng = np.random.default_rng(cfg.seed)
        perm = rng.permutation(n)
        n_valid = min(cfg.valid_pairs, max(2, n // 10))
        self.valid_idx = np.sort(perm[:n_valid])
        self.train_idx = np.sort(perm[n_valid:])
        self.n_train = len(self.train_idx)
        self.aaug, self.saug = AudioAugment(p=0.8), SheetAugment(p=0.8)
        self.data_summary = {**summary, "train_snippets": int(self.n_train), "valid_snippets": int(n_valid)}

    def train_indices(self) -> np.ndarray:
        return self.train_idx

    def _views(self, idx: np.ndarray, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.data[np.sort(idx)]
        if self.modality == "sheet":
            t = torch.from_numpy(np.ascontiguousarray(x))
            return augment_sheet(t, SHEET_SHAPE[1], self.saug, gen), augment_sheet(t, SHEET_SHAPE[1], self.saug, gen)
        t = torch.from_numpy(np.asarray(x, dtype=np.float32))
        return augment_audio(t, AUDIO_SHAPE[1], self.aaug, gen), augment_audio(t, AUDIO_SHAPE[1], self.aaug, gen)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.embed_sheet(x) if self.modality == "sheet" else self.model.embed_audio(x)

    def calibration_forward(self, idx, device):
        x = self.data[idx]
        if self.modality == "sheet":
            self.model.embed_sheet(crop(torch.from_numpy(np.ascontiguousarray(x)), SHEET_SHAPE[1], None, False).to(device))
        else:
            self.model.embed_audio(crop(torch.from_numpy(np.asarray(x, dtype=np.float32)), AUDIO_SHAPE[1], None, False).to(device))

    def batch_loss(self, idx, gen, device):
        v1, v2 = self._views(idx, gen)
        return nt_xent_loss(self._embed(v1.to(device)), self._embed(v2.to(device)), self.cfg.temperature)

    def validate(self, device):
        gen = torch.Generator().manual_seed(self.cfg.seed + 7)
        v1, v2 = self._views(self.valid_idx, gen)
        z1 = _embed_in_chunks(self._embed, v1, device)
        z2 = _embed_in_chunks(self._embed, v2, device)
        return _direction_metrics(z1, z2)


class PassageTask(_Task):
    def __init__(self, cfg: TrainConfig, passages: PassageSet, model: PassageModel) -> None:
        self.cfg, self.passages, self.model = cfg, passages, model
        self.train_idx = passages.indices("train")
        valid = passages.indices("valid")
        if len(self.train_idx) < cfg.batch_size or len(valid) < 2:
            raise DataError(f"too few passages: {len(self.train_idx)} train, {len(valid)} valid")
        rng = np.random.default_rng(cfg.seed)
        self.valid_idx = np.sort(rng.choice(valid, size=min(cfg.valid_pairs, len(valid)), replace=False))
        self.n_train = len(self.train_idx)
        self.aaug = AudioAugment(stretch=(), time_mask=4)
        self.saug = SheetAugment(shift=False)
        self.data_summary = {"train_passages": int(self.n_train), "valid_passages": int(len(valid)),
                             "trained_on": sorted(passages.splits.get("train", []))}

    def train_indices(self) -> np.ndarray:
        return self.train_idx

    def _crop(self, spec: torch.Tensor, gen: torch.Generator | None, training: bool) -> torch.Tensor:
        """A window of the system's audio (``passage_audio_crop``), as the engine embeds the last seconds."""
        lo, hi = (int(v) for v in self.cfg.passage_audio_crop)
        total = spec.shape[1]
        if training:
            if float(torch.rand(1, generator=gen)) >= self.cfg.passage_crop_p:
                return spec
            length = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        else:
            length = (lo + hi) // 2
        if total <= length:
            return spec
        start = int(torch.randint(0, total - length + 1, (1,), generator=gen))
        return spec[:, start : start + length]

    def sequences(self, idx: np.ndarray, gen: torch.Generator | None, augment: bool, crop: str = ""):
        """Windowed strips and spectrograms; ``crop`` cuts the audio to a window inside the system:
        "train" (random length, with probability ``passage_crop_p``), "valid" (one fixed-length
        window per passage from ``gen``), "" (whole systems)."""
        pc = self.model.cfg
        sw = pc.sheet.input_shape[1]
        aw = PASSAGE_AUDIO_SHAPE[1]
        sheets, audios = [], []
        for i in idx:
            strip = torch.from_numpy(self.passages.strip(int(i)).astype(np.float32) / 255.0)
            ws = cut_windows(1.0 - strip, sw, pc.sheet_hop)  # ink, zero-padded
            spec = torch.from_numpy(self.passages.spectrogram(int(i)))
            if crop:
                spec = self._crop(spec, gen, training=crop == "train")
            wa = cut_windows(spec, aw, pc.audio_hop)
            if augment:
                ws = 1.0 - augment_sheet(1.0 - ws, sw, self.saug, gen)
                wa = augment_audio(wa, aw, self.aaug, gen)
            sheets.append(ws)
            audios.append(wa)
        from companion.models.embedder import pad_sequences

        return pad_sequences(sheets), pad_sequences(audios)

    def calibration_forward(self, idx, device):
        for i in range(0, len(idx), 32):
            (s, ls), (a, la) = self.sequences(idx[i : i + 32], None, False)
            self.model.sheet(s.to(device), ls)
            self.model.audio(a.to(device), la)

    def batch_loss(self, idx, gen, device):
        (s, ls), (a, la) = self.sequences(np.sort(idx), gen, self.cfg.augment,
                                          crop="train" if self.cfg.passage_audio_crop else "")
        zs = self.model.sheet(s.to(device), ls)
        za = self.model.audio(a.to(device), la)
        return cross_modal_loss(za, zs, self.cfg)

    def validate(self, device):
        zs, za, zc = [], [], []
        crop = bool(self.cfg.passage_audio_crop)
        gen = torch.Generator().manual_seed(self.cfg.seed + 11)  # the same windows every epoch
        for i in range(0, len(self.valid_idx), 32):
            chunk = self.valid_idx[i : i + 32]
            (s, ls), (a, la) = self.sequences(chunk, None, False)
            zs.append(self.model.sheet(s.to(device), ls).float().cpu().numpy())
            za.append(self.model.audio(a.to(device), la).float().cpu().numpy())
            if crop:
                _, (c, lc) = self.sequences(chunk, gen, False, crop="valid")
                zc.append(self.model.audio(c.to(device), lc).float().cpu().numpy())
        metrics = _direction_metrics(np.concatenate(za), np.concatenate(zs))
        if crop:
            # audio windows of a few seconds against whole systems: what the engine asks of the model
            metrics["audio_window"] = _direction_metrics(np.concatenate(zc), np.concatenate(zs))
            metrics["score"] = 0.5 * (metrics["score"] + metrics["audio_window"]["score"])
        return metrics


# --------------------------------------------------------------------------- setup


def _load_init(model: nn.Module, spec: str, freeze: bool) -> list[str]:
    """Initialise CNN pathways from checkpoints (comma-separated); returns what was loaded."""
    loaded = []
    for path in [p.strip() for p in spec.split(",") if p.strip()]:
        ckpt = read_checkpoint(Path(path))
        mode = ckpt.get("recipe", {}).get("mode", "snippet")
        if is_ensemble_arch(ckpt.get("arch", {})):
            raise CheckpointError(f"{path} is an ensemble of snippet models: initialise from one of its members")
        if isinstance(model, PassageModel) and ckpt.get("kind") == "passage":
            # a passage model continues from a passage model: CNNs, GRUs and heads (a fine-tune)
            try:
                model.load_state_dict(ckpt["state_dict"])
            except RuntimeError as exc:
                raise CheckpointError(f"{path}: passage model does not fit this architecture ({str(exc).splitlines()[0]})") from exc
            if freeze:
                for pw in ("sheet", "audio"):
                    for p in getattr(model, pw).cnn.parameters():
                        p.requires_grad_(False)
            loaded.append(f"passage<-{Path(path).name}")
            continue
        pathways = {"simclr-sheet": ["sheet"], "simclr-audio": ["audio"]}.get(mode, ["sheet", "audio"])
        sd = ckpt["state_dict"]
        for pw in pathways:
            if isinstance(model, PassageModel):
                target = getattr(model, pw).cnn
                src = {k[len(pw) + 1 :]: v for k, v in sd.items() if k.startswith(pw + ".features.")}
            else:
                target = getattr(model, pw)
                src = {k[len(pw) + 1 :]: v for k, v in sd.items() if k.startswith(pw + ".")}
            if not src:
                raise CheckpointError(f"{path} has no {pw} pathway weights")
            try:
                target.load_state_dict(src, strict=False)
            except RuntimeError as exc:
                raise CheckpointError(f"{path}: {pw} pathway does not fit this architecture ({str(exc).splitlines()[0]})") from exc
            if freeze:
                for name, p in target.named_parameters():
                    if name.startswith("features."):
                        p.requires_grad_(False)
            loaded.append(f"{pw}<-{Path(path).name}")
    return loaded


def build_task(cfg: TrainConfig) -> _Task:
    torch.manual_seed(cfg.seed)
    if cfg.mode == "passage":
        passages = synthetic_passages(seed=cfg.seed) if cfg.data == "synthetic" else PassageSet.load(Path(cfg.data))
        model: nn.Module = PassageModel(PassageModelConfig.from_dict(cfg.arch) if cfg.arch else None)
        task: _Task = PassageTask(cfg, passages, model)
    else:
        model = SnippetModel(SnippetModelConfig.from_dict(cfg.arch) if cfg.arch else None)
        if cfg.mode == "snippet":
            pairs = synthetic_pairs(seed=cfg.seed) if cfg.data == "synthetic" else PairSet.load(Path(cfg.data))
            task = SnippetTask(cfg, pairs, model)
        elif cfg.mode == "simclr-sheet":
            if cfg.data == "synthetic":
                data, summary = synthetic_pairs(seed=cfg.seed).sheet, {"source": "synthetic"}
            else:
                data, summary = load_unlabelled(Path(cfg.data), "sheet")
            task = SimCLRTask(cfg, data, model, "sheet", summary)
        else:
            if cfg.data == "synthetic":
                data, summary = synthetic_pairs(seed=cfg.seed).audio, {"source": "synthetic"}
            else:
                data, summary = load_unlabelled(Path(cfg.data), "audio")
            task = SimCLRTask(cfg, data, model, "audio", summary)
    if cfg.init_from:
        task.data_summary["init_from"] = _load_init(task.model, cfg.init_from, cfg.freeze_cnn)
    return task


def load_unlabelled(folder: Path, modality: str) -> tuple[np.ndarray, dict[str, Any]]:
    """``sheet.npy`` / ``audio.npy`` from a folder (a PairSet or a scan-snippet folder)."""
    path = folder / f"{modality}.npy"
    if not path.is_file():
        raise DataError(f"no {modality}.npy in {folder}")
    summary: dict[str, Any] = {}
    meta = folder / "meta.json"
    if meta.is_file():
        try:
            summary = json.loads(meta.read_text(encoding="utf-8")).get("summary", {})
        except (OSError, ValueError):
            summary = {}
    arr = np.load(path)
    if modality == "sheet" and (arr.ndim != 3 or arr.shape[1] != SHEET_SHAPE[0] or arr.shape[2] < SHEET_SHAPE[1]):
        raise DataError(f"{path}: expected (N, 80, >=100) sheet snippets, got {arr.shape}")
    if modality == "audio" and (arr.ndim != 3 or arr.shape[1] != AUDIO_SHAPE[0] or arr.shape[2] < AUDIO_SHAPE[1]):
        raise DataError(f"{path}: expected (N, 92, >=42) audio excerpts, got {arr.shape}")
    return arr, summary


# --------------------------------------------------------------------------- loop


def _rng_state_for(cfg: TrainConfig, epoch: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, epoch])


def _save_state(path: Path, task: _Task, opt: torch.optim.Optimizer, st: dict[str, Any], gen: torch.Generator, cfg: TrainConfig) -> None:
    atomic_torch_save(
        {
            "state_version": STATE_VERSION,
            "config": cfg.to_dict(),
            "model": task.model.state_dict(),
            "optimizer": opt.state_dict(),
            "aug_rng": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            **st,
        },
        path,
    )


def train(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    cancel_event: threading.Event | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train (or continue training) as described by ``config``. See the module docstring."""
    cfg = config
    cfg.validate()
    t_start = time.perf_counter()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path, best_path = out / "state.pt", out / "best.pt"
    task = build_task(cfg)
    model = task.model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    st: dict[str, Any] = {"epoch": 0, "step": 0, "best_score": float("-inf"), "bad_epochs": 0,
                          "history": [], "train_seconds": 0.0, "pairs_seen": 0, "finished": False}
    if resume and state_path.is_file():
        try:
            saved = torch.load(state_path, map_location="cpu", weights_only=True)
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
            gen.set_state(saved["aug_rng"])
            torch.set_rng_state(saved["torch_rng"])
            for k in st:
                st[k] = saved[k]
        except Exception as exc:
            raise CompanionError(
                f"cannot resume from {state_path} ({type(exc).__name__}: {exc}); "
                "delete it or train with --no-resume to start over"
            ) from exc
        log.info("resuming at epoch %d step %d (best %.4f)", st["epoch"], st["step"], st["best_score"])

    def emit(p: Progress) -> None:
        for cb in callbacks:
            cb(p)

    def lr_now() -> float:
        return float(opt.param_groups[0]["lr"])

    train_idx = task.train_indices()
    per_epoch = cfg.steps_per_epoch or max(1, len(train_idx) // cfg.batch_size)
    status = "done"
    last_save = time.perf_counter()
    rate = 0.0
    recipe = cfg.to_dict()

    def save_best(metrics: dict[str, Any]) -> None:
        model_cpu_state = model.state_dict()
        ckpt = make_checkpoint(task.model, data=task.data_summary, recipe=recipe,
                               metrics={"valid": metrics, "epoch": st["epoch"]})
        ckpt["state_dict"] = {k: v.detach().cpu().clone() for k, v in model_cpu_state.items()}
        atomic_torch_save(ckpt, best_path)

    try:
        while st["epoch"] < cfg.epochs and not st["finished"]:
            epoch = st["epoch"]
            rng = _rng_state_for(cfg, epoch)
            order = task.epoch_order(rng, per_epoch * cfg.batch_size)
            model.train()
            t_epoch = time.perf_counter()
            seen_epoch = 0
            loss_sum, loss_n = 0.0, 0
            while st["step"] < per_epoch:
                if cancel_event is not None and cancel_event.is_set():
                    status = "cancelled"
                    break
                if cfg.max_hours > 0 and time.perf_counter() - t_start > cfg.max_hours * 3600:
                    status = "paused"
                    break
                s = st["step"]
                idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                if cfg.lr_schedule == "cosine":
                    for g in opt.param_groups:
                        g["lr"] = cosine_lr(cfg, epoch * per_epoch + s, cfg.epochs * per_epoch)
                t0 = time.perf_counter()
                loss = task.batch_loss(idx, gen, device)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                dt = time.perf_counter() - t0
                st["train_seconds"] += dt
                st["pairs_seen"] += len(idx)
                seen_epoch += len(idx)
                st["step"] = s + 1
                lv = float(loss.detach())
                loss_sum += lv
                loss_n += 1
                rate = seen_epoch / max(time.perf_counter() - t_epoch, 1e-9)
                emit(Progress("train", epoch, cfg.epochs, st["step"], per_epoch, lv, lr_now(), rate,
                              best_score=st["best_score"]))
                if time.perf_counter() - last_save > SAVE_EVERY_S:
                    _save_state(state_path, task, opt, st, gen, cfg)
                    last_save = time.perf_counter()
            if status != "done":
                break
            recalibrate_batchnorm(task, device, cfg.seed)
            model.eval()
            with torch.inference_mode():
                metrics = task.validate(device)
            score = float(metrics["score"])
            entry = {"epoch": epoch, "loss": loss_sum / loss_n if loss_n else None, "lr": lr_now(), "score": score,
                     "valid": metrics, "pairs_per_s": rate}
            st["history"].append(entry)
            improved = score > st["best_score"] + 1e-4
            if improved:
                st["best_score"] = score
                st["bad_epochs"] = 0
                save_best(metrics)
            elif cfg.lr_schedule == "plateau":
                st["bad_epochs"] += 1
                if st["bad_epochs"] % cfg.plateau_patience == 0:
                    for g in opt.param_groups:
                        g["lr"] = max(cfg.min_lr, g["lr"] * cfg.lr_factor)
                if st["bad_epochs"] >= cfg.early_stop_patience:
                    st["finished"] = True
                    status = "early_stopped"
            st["epoch"] = epoch + 1
            st["step"] = 0
            _save_state(state_path, task, opt, st, gen, cfg)
            last_save = time.perf_counter()
            (out / "history.json").write_text(json.dumps(st["history"], indent=1), encoding="utf-8")
            emit(Progress("epoch", epoch, cfg.epochs, per_epoch, per_epoch,
                          entry["loss"] if entry["loss"] is not None else float("nan"), lr_now(), rate,
                          metrics, st["best_score"],
                          f"epoch {epoch}: valid MRR {score:.3f}{' (best)' if improved else ''}"))
        if status in ("cancelled", "paused"):
            _save_state(state_path, task, opt, st, gen, cfg)
        elif st["finished"]:
            status = "early_stopped"
    except KeyboardInterrupt:
        _save_state(state_path, task, opt, st, gen, cfg)
        raise
    if cfg.cca and status in ("done", "early_stopped") and cfg.mode in ("snippet", "passage") and best_path.is_file():
        from companion.models.cca import refit_checkpoint

        emit(Progress("cca", st["epoch"], cfg.epochs, st["step"], per_epoch, float("nan"), lr_now(), 0.0,
                      best_score=st["best_score"], message="fitting the CCA projection into best.pt"))
        try:
            fit = refit_checkpoint(best_path, task.pairs if cfg.mode == "snippet" else task.passages, best_path)
        except CompanionError as exc:  # too little data for it: the trained model stands as it is
            emit(Progress("cca", st["epoch"], cfg.epochs, st["step"], per_epoch, float("nan"), lr_now(), 0.0,
                          best_score=st["best_score"], message=f"CCA not fitted: {exc}"))
        else:
            mrr = fit.get("valid", {}).get("mrr", {})
            before, after = mrr.get("none", float("nan")), mrr.get(f"{fit['reg']:g}", float("nan"))
            emit(Progress("cca", st["epoch"], cfg.epochs, st["step"], per_epoch, float("nan"), lr_now(), 0.0,
                          metrics={"cca": fit}, best_score=st["best_score"],
                          message=f"CCA (ridge {fit['reg']:g}): valid MRR {before:.3f} -> {after:.3f}"))
    wall = time.perf_counter() - t_start
    overall_rate = st["pairs_seen"] / st["train_seconds"] if st["train_seconds"] else 0.0
    emit(Progress(status, st["epoch"], cfg.epochs, st["step"], per_epoch, float("nan"), lr_now(), overall_rate,
                  best_score=st["best_score"], message=status))
    return TrainResult(status, st["epoch"], st["best_score"], best_path if best_path.is_file() else None,
                       st["history"], overall_rate, wall)
