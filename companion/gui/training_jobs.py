"""The training tab's jobs, run in a child process (Qt-free, and torch-free at import).

Why a child process: the trainer's Python loop, its numpy batch building and
the first ``import torch`` (large libraries loaded while holding the GIL) take
the GIL from the GUI thread for 100-300 ms at a time when training runs in a
thread of the app (measured with the stall watchdog, docs/benchmarks.md "GUI
responsiveness"). :func:`train_job` runs through
:func:`companion.gui.process_job.run_in_process` in cooperative mode: progress
reports cross a queue, Cancel sets an event the trainer checks at every step
(it then saves ``state.pt`` for Resume).

What crosses the process boundary is torch-free: the trainer's ``Progress``
and ``TrainResult`` live in :mod:`companion.training.trainer`, which imports
torch, and unpickling them in the app would import torch there (in a worker
thread, holding the GIL). They are copied into :class:`TrainingReport` and
:class:`TrainingSummary` (same fields, plain Python values) in the child.

Comparing, activating and restoring models read checkpoints, which loads torch
too, so they run in a child process as well.

(A first child-process version, 8d35c65, was reverted because the GUI test
suite then aborted at exit with "bool_dealloc"; that was a reference-count bug
of PySide6's signals, not of the child process: see
:mod:`companion.gui.qt_workarounds`.)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


def plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and lists (recursively)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return value.tolist()
    return value


@dataclass
class TrainingReport:
    """One progress report of the trainer (fields of ``companion.training.trainer.Progress``)."""

    phase: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    loss: float = math.nan
    lr: float = 0.0
    pairs_per_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    best_score: float = -math.inf
    message: str = ""

    @classmethod
    def of(cls, p: Any) -> "TrainingReport":
        return cls(**{f.name: plain(getattr(p, f.name)) for f in dataclasses.fields(cls)})


@dataclass
class TrainingSummary:
    """How a run ended (fields of ``companion.training.trainer.TrainResult``)."""

    status: str
    epochs_done: int
    best_score: float
    best_path: Path | None
    history: list[dict[str, Any]]
    pairs_per_s: float
    wall_s: float

    @classmethod
    def of(cls, r: Any) -> "TrainingSummary":
        values = {f.name: plain(getattr(r, f.name)) for f in dataclasses.fields(cls)}
        values["best_path"] = Path(r.best_path) if r.best_path else None
        return cls(**values)


def train_job(mode: str, data: str, out_dir: str, epochs: int, batch_size: int, steps_per_epoch: int,
              resume: bool, valid_pairs: int, progress: Callable[..., None], cancel: Any) -> TrainingSummary:
    """One training run; every trainer progress report goes to ``progress(fraction, text, TrainingReport)``."""
    from companion.training.config import TrainConfig
    from companion.training.trainer import train

    progress(None, "Preparing data and model…")
    cfg = TrainConfig(mode=mode, data=data, out_dir=out_dir, epochs=epochs, batch_size=batch_size,
                      steps_per_epoch=steps_per_epoch, valid_pairs=valid_pairs, threads=1,
                      cca=mode in ("snippet", "passage"))  # as the shipped models: the projection fitted at the end

    def forward(p: Any) -> None:
        done = (p.epoch + (p.step / p.steps if p.steps else 0.0)) / max(1, p.epochs)
        text = p.message if p.phase == "cca" else f"{p.phase}: epoch {p.epoch + 1}/{p.epochs}, step {p.step}/{p.steps}"
        progress(done, text, TrainingReport.of(p))

    return TrainingSummary.of(train(cfg, [forward], cancel_event=cancel, resume=resume))


def compare_job(candidate: Any, models_dir: Any) -> Any:
    """:func:`companion.models.activate.compare_with_active` (imported in the child: it loads torch)."""
    from companion.models.activate import compare_with_active

    return compare_with_active(candidate, models_dir)


def activate_job(candidate: Any, models_dir: Any) -> Any:
    from companion.models.activate import activate_model

    return activate_model(candidate, models_dir)


def restore_job(models_dir: Any, kind: str) -> Any:
    from companion.models.activate import restore_previous

    return restore_previous(models_dir, kind)
