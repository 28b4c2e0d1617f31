"""The training tab's jobs (Qt-free, and torch-free at import).

Comparing, activating and restoring models read checkpoints, which loads torch
(its libraries load while holding the GIL: a 100-300 ms freeze in a thread of
the app), so they run in a child process through
:func:`companion.gui.process_job.run_in_process`.

Training itself (:func:`train_job`) still runs in a worker thread of the app:
run in a child process (cooperative mode) it removed the 100-190 ms GUI stalls,
but the GUI test suite then ended with a crash at interpreter exit
("bool_dealloc", a reference-count error inside a C extension, PySide6 6.12)
whose cause was not found; see docs/benchmarks.md "GUI responsiveness".
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
