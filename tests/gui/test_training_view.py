"""The Training tab: a tiny synthetic run starts, shows live loss, is cancelled, and resumes."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("torch")


def test_training_starts_shows_loss_cancels_and_resumes(qtbot, window, tmp_path: Path) -> None:
    view = window.training
    window.show_view(4)
    view.synthetic.setChecked(True)
    view.mode_box.setCurrentIndex(view.mode_box.findData("snippet"))
    view.epochs.setValue(50)
    view.batch.setValue(8)
    view.steps.setValue(200)
    view.valid_pairs.setValue(32)
    view.run_dir.setText(str(tmp_path / "runs"))
    task = view.start()
    assert task is not None and not view.start_btn.isEnabled() and view.cancel_btn.isEnabled()
    qtbot.waitUntil(lambda: len(view.losses) >= 3, timeout=60000)
    view.cancel()
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    assert task.state == "cancelled"
    assert "Resume" in view.status.text()
    assert view.start_btn.isEnabled() and view.resume_btn.isEnabled()
    xs, ys = view.loss_curve.getData()
    assert xs is not None and len(xs) == len(view.losses) >= 3, "the loss curve was drawn"
    assert (tmp_path / "runs" / "snippet" / "state.pt").is_file(), "cancelling saved the run for resuming"
    steps_before = max(x for x, _ in view.losses)
    # resume: training continues from the saved step, not from zero
    task2 = view.start(resume=True)
    qtbot.waitUntil(lambda: len(view.losses) >= len(xs) + 2, timeout=60000)
    view.cancel()
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    resumed = view.losses[len(xs):]
    assert resumed and min(x for x, _ in resumed) > steps_before - 1e-9
    assert task2.state == "cancelled"


def test_training_without_data_asks_for_it(qtbot, window) -> None:
    view = window.training
    view.synthetic.setChecked(False)
    view.data_edit.setText("")
    assert view.start() is None
    assert window.errors and "training data" in window.errors[-1][1]


def test_build_data_needs_a_scans_folder(qtbot, window, tmp_path: Path) -> None:
    view = window.training
    view.scans_edit.setText(str(tmp_path / "no such folder"))
    assert view.build_data() is None
    assert window.errors and "scanned scores" in window.errors[-1][1]
