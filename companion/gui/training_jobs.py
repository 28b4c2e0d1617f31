"""The training tab's jobs, run in a child process (Qt-free: the child never loads Qt; torch-free at import).

Why a child process: the trainer's Python loop, its numpy batch building and
the first ``import torch`` (large libraries loaded while holding the GIL) would
take the GIL from the GUI thread for 100-300 ms at a time if training ran in a
thread of the app (measured with the stall watchdog, docs/benchmarks.md "GUI
responsiveness"). Run through :func:`companion.gui.process_job.run_in_process`
in cooperative mode: progress reports cross a queue, Cancel sets an event the
trainer checks at every step (it then saves ``state.pt`` for Resume).
Comparing, activating and restoring models read checkpoints, which loads
torch: they run in a child process too.
"""

from __future__ import annotations

from typing import Any, Callable


def train_job(mode: str, data: str, out_dir: str, epochs: int, batch_size: int, steps_per_epoch: int,
              resume: bool, valid_pairs: int, progress: Callable[..., None], cancel: Any) -> Any:
    """One training run; every trainer progress report goes to ``progress(fraction, text, payload)``."""
    from companion.training.config import TrainConfig
    from companion.training.trainer import train

    progress(None, "Preparing data and model…")
    cfg = TrainConfig(mode=mode, data=data, out_dir=out_dir, epochs=epochs, batch_size=batch_size,
                      steps_per_epoch=steps_per_epoch, valid_pairs=valid_pairs, threads=1)

    def forward(p: Any) -> None:
        done = (p.epoch + (p.step / p.steps if p.steps else 0.0)) / max(1, p.epochs)
        progress(done, f"{p.phase}: epoch {p.epoch + 1}/{p.epochs}, step {p.step}/{p.steps}", p)

    return train(cfg, [forward], cancel_event=cancel, resume=resume)


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
