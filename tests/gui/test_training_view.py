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


def test_training_runs_to_the_end_in_a_child_process(qtbot, window, tmp_path: Path) -> None:
    """A tiny run that finishes: progress, losses and validation MRR come back from the training process, the
    summary is shown and the best model is compared with the installed one."""
    import multiprocessing

    from companion.gui.training_jobs import TrainingReport, TrainingSummary

    view = window.training
    window.show_view(4)
    view.synthetic.setChecked(True)
    view.mode_box.setCurrentIndex(view.mode_box.findData("snippet"))
    view.epochs.setValue(2)
    view.batch.setValue(8)
    view.steps.setValue(3)
    view.valid_pairs.setValue(16)
    view.run_dir.setText(str(tmp_path / "runs"))
    reports: list = []
    in_child: list[bool] = []

    def seen(fraction: float, text: str, p: object) -> None:
        reports.append(p)
        in_child.append(any(c.name == "companion-job" for c in multiprocessing.active_children()))

    task = view.start()
    task.signals.progress.connect(seen)
    qtbot.waitUntil(lambda: view.task is None, timeout=120000)
    assert task.state == "finished", task.error
    summary = view.result
    assert isinstance(summary, TrainingSummary) and summary.status == "done" and summary.epochs_done == 2
    assert summary.best_path is not None and summary.best_path.is_file() and len(summary.history) == 2
    assert view.status.text().startswith("Training done: 2 epochs"), view.status.text()
    trainer_reports = [p for p in reports if p is not None]
    assert trainer_reports and all(isinstance(p, TrainingReport) for p in trainer_reports)
    assert any(in_child), "the trainer ran in the training process, not in a thread of the app"
    assert [p.epoch + 1 for p in trainer_reports if p.phase == "epoch"] == [1, 2]
    assert [x for x, _ in view.mrr] == [1, 2], "one validation MRR point per epoch"
    assert len(view.losses) == 6, "one loss per step"
    xs, _ = view.mrr_curve.getData()
    assert list(xs) == [1, 2], "the MRR curve was drawn"
    # finishing compares the run's best model with the installed one (in a child process too)
    assert view.report.text() != "This run has no best model yet: train at least one epoch."
    qtbot.waitUntil(lambda: view.model_task is None, timeout=60000)
    assert view.start_btn.isEnabled() and not view.cancel_btn.isEnabled()


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


def _checkpoint(path: Path, seed: int, score: float, mode: str = "snippet") -> Path:
    import torch

    from companion.models.checkpoint import save_checkpoint
    from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, EncoderConfig, SnippetModel, SnippetModelConfig

    torch.manual_seed(seed)
    model = SnippetModel(SnippetModelConfig(EncoderConfig(SHEET_SHAPE, 4, 4, 1), EncoderConfig(AUDIO_SHAPE, 4, 4, 1)))
    direction = {"MRR": score, "R@1": score / 2, "R@10": score * 2, "n": 32}
    save_checkpoint(model, path, recipe={"mode": mode, "data": "/pairs", "valid_pairs": 32, "seed": 0},
                    metrics={"valid": {"audio_to_sheet": direction, "sheet_to_audio": direction, "score": score},
                             "epoch": 2})
    return path


def test_compare_activate_reindex_and_restore(qtbot, tmp_path: Path, score_folder: Path, _isolated_home) -> None:
    """A run's best model next to the active one; Activate installs it and the library re-embeds; Restore undoes."""
    import functools

    from gui_helpers import NoMicrophone, ProjectionFrontEnd, index_folder, versioned_embedder
    from PySide6.QtWidgets import QMessageBox

    from companion.config import load_config
    from companion.gui.library_service import LibraryBackend
    from companion.gui.main_window import MainWindow
    from companion.library.catalog import Catalog

    models = tmp_path / "models"
    models.mkdir()
    old = _checkpoint(models / "snippet.pt", seed=1, score=0.2).read_bytes()
    best = _checkpoint(tmp_path / "runs" / "snippet" / "best.pt", seed=2, score=0.35)
    library = tmp_path / "library"
    backend = LibraryBackend(library, ProjectionFrontEnd, functools.partial(versioned_embedder, str(models)))
    w = MainWindow(load_config(models_dir=models), backend=backend, audio_backend=NoMicrophone())
    qtbot.addWidget(w)
    w.show()

    def version() -> str:
        cat = Catalog(library, readonly=True)
        try:
            return cat.model_version
        finally:
            cat.close()

    index_folder(qtbot, w, score_folder)
    qtbot.waitUntil(lambda: w.library.folders.count() == 1, timeout=10000)
    v1 = version()
    assert v1 == versioned_embedder(str(models)).model_version

    view = w.training
    w.show_view(4)
    view.run_dir.setText(str(tmp_path / "runs"))
    view.mode_box.setCurrentIndex(view.mode_box.findData("snippet"))
    assert not view.activate_btn.isEnabled() and not view.restore_btn.isEnabled()
    assert view.compare() is not None
    qtbot.waitUntil(lambda: view.comparison is not None, timeout=30000)
    text = view.report.text()
    assert "0.350" in text and "0.200" in text and "this run is better" in text
    assert view.activate_btn.isEnabled()

    # Activate asks first (window-modal); confirming installs the model and re-indexes the library
    w.library.last_report = None
    view.request_activate()
    box = view.confirm_box
    assert box.isVisible()
    box.button(QMessageBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: view.model_task is None and ("now active" in view.status.text() or w.errors),
                    timeout=60000)
    assert "now active" in view.status.text(), (view.status.text(), w.errors)
    qtbot.waitUntil(lambda: w.library.last_report is not None and not w.library.busy, timeout=120000)
    assert (models / "snippet.pt").read_bytes() == best.read_bytes()
    assert (models / "previous" / "snippet.pt").read_bytes() == old
    assert w.library.last_report.reembedded == 2, "both indexed scores were re-embedded with the new model"
    assert version() == versioned_embedder(str(models)).model_version != v1
    assert "re-embedded with the new model" in w.library.progress_label.text()
    assert "now active" in view.status.text()
    assert view.restore_btn.isEnabled()

    # Restore brings the old model back and re-indexes again
    w.library.last_report = None
    assert view.restore_previous() is not None
    qtbot.waitUntil(lambda: w.library.last_report is not None and not w.library.busy, timeout=120000)
    assert (models / "snippet.pt").read_bytes() == old and version() == v1
    assert w.library.last_report.reembedded == 2
    w.close()


def test_activating_a_corrupt_best_model_is_refused(qtbot, window, tmp_path: Path) -> None:
    view = window.training
    run = tmp_path / "runs" / "snippet"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"half a model")
    view.run_dir.setText(str(tmp_path / "runs"))
    view.mode_box.setCurrentIndex(view.mode_box.findData("snippet"))
    view.compare()
    qtbot.waitUntil(lambda: view.model_task is None, timeout=30000)
    assert "Cannot compare" in view.report.text() and "corrupt" in view.report.text()
    assert not view.activate_btn.isEnabled() and view.activate() is None


def test_build_corpus_from_scores_cancels_and_resumes(qtbot, window, tmp_path: Path) -> None:
    """Two small verovio scores: Cancel after the first piece keeps it; building again resumes and packs."""
    import importlib.util

    # the data tests' tiny scores (loaded by path from tests/data/score_sources.py)
    spec = importlib.util.spec_from_file_location("data_fixtures", Path(__file__).resolve().parents[1] / "data"
                                                  / "score_sources.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    ABC, KERN, tools_missing = fixtures.ABC, fixtures.KERN, fixtures.tools_missing

    if tools_missing():
        pytest.skip(tools_missing())
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "kern-test.krn").write_text(KERN, encoding="utf-8")
    (scores / "abc-test.abc").write_text(ABC, encoding="utf-8")
    view = window.training
    window.show_view(4)
    view.run_dir.setText(str(tmp_path / "runs"))
    view.scores_edit.setText(f"{scores};{tmp_path / 'missing'}")
    assert view.build_from_scores() is None and "Folder not found" in window.errors[-1][1]
    view.scores_edit.setText(str(scores))
    view.build_workers = 1
    task = view.build_from_scores()
    assert task is not None and view.cancel_btn.isEnabled() and not view.build_scores_btn.isEnabled()
    qtbot.waitUntil(lambda: "1 of 2 pieces" in view.status.text() or view.build_task is None, timeout=120000)
    assert view.build_task is not None, view.status.text()
    assert view.progress.value() > 0
    view.cancel()
    qtbot.waitUntil(lambda: view.build_task is None, timeout=60000)
    assert task.state == "cancelled", task.error
    assert "building again resumes" in view.status.text()
    pieces = tmp_path / "runs" / "scores-data" / "corpus" / "pieces"
    assert len([p for p in pieces.iterdir() if not p.name.startswith(".")]) == 1
    assert not list(pieces.glob(".tmp-*")), "the abandoned piece left no temporary folder"
    assert view.build_scores_btn.isEnabled() and not view.cancel_btn.isEnabled()

    task = view.build_from_scores()
    qtbot.waitUntil(lambda: view.build_task is None, timeout=180000)
    assert task.state == "finished", task.error
    built = view.last_build
    assert built["unchanged"] == 1 and built["built"] == 1 and built["pieces"] == 2
    assert sum(built["packed"].values()) == 2
    assert "Corpus built in" in view.status.text() and "training pairs" in view.status.text()
    assert built["pairs"] > 0 and view.data_edit.text() == built["pairs_dir"]
    from companion.training.data import PairSet

    assert len(PairSet.load(Path(built["pairs_dir"]))) == built["pairs"]


def test_cut_snippets_from_unannotated_scans(qtbot, window, tmp_path: Path) -> None:
    """The user's scans have no systems.json: the detector's systems are used (in a child process)."""
    import importlib.util
    import sys

    if "sheets_helpers" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "sheets_helpers", Path(__file__).resolve().parents[1] / "sheets" / "sheets_helpers.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["sheets_helpers"] = module
        spec.loader.exec_module(module)
    helpers = sys.modules["sheets_helpers"]
    scans = tmp_path / "scans"
    scans.mkdir()
    page = helpers.draw_page(helpers.layout([2, 2, 2], space=8.0, top=120)).image
    (scans / "Chopin - Nocturne (my scan).pdf").write_bytes(helpers.image_pdf([page]))
    view = window.training
    window.show_view(4)
    view.run_dir.setText(str(tmp_path / "runs"))
    view.scans_edit.setText(str(scans))
    task = view.build_data()
    assert task is not None
    qtbot.waitUntil(lambda: view.build_task is None, timeout=60000)
    assert task.state == "finished", task.error
    out = tmp_path / "runs" / "scan-snippets"
    assert view.data_edit.text() == str(out) and (out / "sheet.npy").is_file()
    assert "systems found by the detector in 1 of 1 scans" in view.status.text(), "the user's Chopin is not excluded"
    assert view.mode == "simclr-sheet"


def test_cancelling_the_confirmation_activates_nothing(qtbot, backend, tmp_path: Path, _isolated_home) -> None:
    from gui_helpers import NoMicrophone
    from PySide6.QtWidgets import QMessageBox

    from companion.config import load_config
    from companion.gui.main_window import MainWindow

    models = tmp_path / "models"
    models.mkdir()
    before = _checkpoint(models / "snippet.pt", seed=1, score=0.2).read_bytes()
    _checkpoint(tmp_path / "runs" / "snippet" / "best.pt", seed=3, score=0.3)
    w = MainWindow(load_config(models_dir=models), backend=backend, audio_backend=NoMicrophone())
    qtbot.addWidget(w)
    view = w.training
    view.run_dir.setText(str(tmp_path / "runs"))
    view.mode_box.setCurrentIndex(view.mode_box.findData("snippet"))
    view.compare()
    qtbot.waitUntil(lambda: view.comparison is not None and view.model_task is None, timeout=30000)
    view.request_activate()
    view.confirm_box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.wait(50)
    assert view.model_task is None and "now active" not in view.status.text()
    assert (models / "snippet.pt").read_bytes() == before and not (models / "previous").exists()
    w.close()
