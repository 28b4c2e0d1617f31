"""Training configuration: one JSON file per run (see ``companion/training/configs/``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from companion.errors import CompanionError

MODES = ("snippet", "passage", "simclr-sheet", "simclr-audio")


class ConfigError(CompanionError):
    """A training config file is missing or invalid."""


@dataclass
class TrainConfig:
    mode: str = "snippet"
    """snippet | passage | simclr-sheet | simclr-audio"""
    data: str = ""
    """Prepared pairs folder (PairSet), "synthetic" for a smoke run; for simclr-sheet a folder of
    unlabelled snippets (sheet.npy), for passage a PassageSet folder."""
    out_dir: str = "runs/snippet"
    """Run folder: state.pt (resume), best.pt (best by validation MRR), history.json."""
    arch: dict[str, Any] = field(default_factory=dict)
    """Architecture dict (SnippetModelConfig / PassageModelConfig .to_dict() form); {} = defaults."""
    init_from: str = ""
    """Checkpoint whose CNN weights initialise this model (SimCLR pre-training or snippet model)."""
    freeze_cnn: bool = False
    """Passage mode: keep the CNNs from ``init_from`` frozen."""
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    margin: float = 0.7
    loss: str = "hinge"
    """Cross-modal loss (snippet and passage modes): "hinge" (Dorfer et al.'s cosine hinge with
    ``margin``, mean over all in-batch negatives), "hinge-hardest" (the same hinge on each anchor's
    hardest in-batch negative only, VSE++) or "infonce" (softmax over the in-batch negatives with
    ``temperature``)."""
    temperature: float = 0.1
    pieces_per_batch: int = 0
    """Snippet mode: 0 = batches drawn uniformly; k > 0 = each batch holds pairs of only k pieces
    (batch_size / k each), so the in-batch negatives include other bars of the same piece."""
    epochs: int = 100
    steps_per_epoch: int = 0
    """0 = one pass over the training data per epoch; else a fixed number of steps."""
    lr_schedule: str = "plateau"
    """"plateau": halve the learning rate after ``plateau_patience`` epochs without a better
    validation MRR, stop after ``early_stop_patience``; "cosine": anneal it from ``lr`` to
    ``min_lr`` over ``epochs`` (a fixed budget: the run ends at its low-rate tail, which is where
    plateau halving arrives only after many epochs; no early stop)."""
    plateau_patience: int = 3
    """Epochs without validation-MRR improvement before the learning rate is halved."""
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    early_stop_patience: int = 10
    """Epochs without improvement before training stops."""
    valid_pairs: int = 2000
    seed: int = 1234
    threads: int = 2
    device: str = "auto"
    """auto (CUDA if present, else CPU) | cpu | cuda"""
    channels_last: bool = False
    augment: bool = True
    audio_max_shift: int = 2
    """Snippet mode: largest random offset (frames) of the audio crop from the onset; -1 = anywhere
    in the stored context (+-20 frames, +-1 s: the recipes before 2026-12-06, which blurred the
    pairing and learned half as fast, docs/benchmarks.md "Crops that stay on their notes")."""
    sheet_max_shift: int = 3
    """Snippet mode: largest random offset (pixels, of 100) of the sheet crop; -1 = anywhere (+-10)."""
    passage_audio_crop: list[int] = field(default_factory=list)
    """Passage mode: [min, max] frames. With probability ``passage_crop_p`` a training passage's audio
    is cut to a random window of that many frames somewhere inside its system, still paired with
    the whole system's strip: the engine embeds the last few seconds of audio (3 s) and matches
    them against whole systems, which a model trained on whole systems only does poorly. Validation
    then also scores such windows (one per passage, ``(min + max) // 2`` frames) and the run's score
    is the mean of both. [] = whole systems only."""
    passage_crop_p: float = 0.5
    max_hours: float = 0.0
    """Stop (resumably) after this much wall time in this invocation; 0 = no limit."""
    cca: bool = False
    """Snippet and passage modes: when the run ends (done or early stop), fit a CCA projection into
    best.pt on the training split, its ridge chosen on the validation split (``companion cca``;
    on 2026-12-07 it raised test snippet MRR 0.277 -> 0.317 and passage MRR 0.252 -> 0.299; the shipped
    models carry it, and the shipped recipes and the GUI's training tab fit it)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training config keys: {', '.join(sorted(unknown))}")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"training config not found: {path}") from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"training config {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"training config {path} must be a JSON object")
        return cls.from_dict(data)

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not self.data:
            raise ConfigError("training config needs 'data' (a prepared pairs folder or 'synthetic')")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (in-batch negatives)")
        if self.lr <= 0 or self.epochs < 1:
            raise ConfigError("lr must be positive and epochs at least 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError("device must be auto, cpu or cuda")
        if self.loss not in ("hinge", "hinge-hardest", "infonce"):
            raise ConfigError(f"loss must be hinge, hinge-hardest or infonce, not {self.loss!r}")
        if self.pieces_per_batch < 0 or self.pieces_per_batch > self.batch_size:
            raise ConfigError("pieces_per_batch must be between 0 (uniform batches) and batch_size")
        if self.temperature <= 0:
            raise ConfigError("temperature must be positive")
        if self.lr_schedule not in ("plateau", "cosine"):
            raise ConfigError(f"lr_schedule must be plateau or cosine, not {self.lr_schedule!r}")
        if self.audio_max_shift < -1 or self.sheet_max_shift < -1:
            raise ConfigError("audio_max_shift and sheet_max_shift must be -1 (no bound) or >= 0")
        if self.passage_audio_crop:
            crop = self.passage_audio_crop
            if len(crop) != 2 or not 20 <= int(crop[0]) <= int(crop[1]):
                raise ConfigError("passage_audio_crop must be [min, max] frames with 20 <= min <= max (one 1-s window)")
        if not 0.0 <= self.passage_crop_p <= 1.0:
            raise ConfigError("passage_crop_p must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
