"""The Training tab: build data, pre-train / fine-tune with live curves, cancel and resume, evaluate, activate.

Building data from symbolic scores (corpus build, pack) runs
in a child process that stops itself cleanly on Cancel; a trained model is
compared with the active one and activated through :mod:`companion.models.activate`.

Training runs :func:`companion.training.trainer.train` in a child process
(:mod:`companion.gui.training_jobs`) with a cancel event; its progress reports
are forwarded as task progress, and the curves are redrawn from a timer at most 5 times a
second so that thousands of steps never flood the GUI thread. A run folder
keeps ``state.pt``: "Resume" continues exactly where a cancelled run stopped.
"""

from __future__ import annotations

import html
import importlib.util
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from companion.config import Config
from companion.gui.workers import Task, TaskContext, TaskRunner

log = logging.getLogger(__name__)
SEP = ";"
"""Separates several folders in the symbolic-scores field."""

MODES = (
    ("simclr-sheet", "Pre-train the sheet encoder (self-supervised, your scans)"),
    ("simclr-audio", "Pre-train the audio encoder (self-supervised, your recordings)"),
    ("snippet", "Fine-tune snippet encoders (aligned pairs)"),
    ("passage", "Fine-tune passage encoders (aligned systems)"),
)


def training_available() -> tuple[bool, str]:
    for mod in ("torch", "companion.training.trainer"):
        try:
            if importlib.util.find_spec(mod) is None:
                return False, f"{mod} is not installed"
        except (ImportError, ValueError) as exc:
            return False, f"{mod} cannot be loaded ({exc})"
    return True, ""


def run_training(ctx: TaskContext, mode: str, data: str, out_dir: Path, epochs: int, batch_size: int,
                 steps_per_epoch: int, resume: bool, valid_pairs: int = 2000) -> Any:
    """Train in a child process (see :mod:`companion.gui.training_jobs` for why)."""
    from companion.gui.process_job import run_in_process
    from companion.gui.training_jobs import train_job

    ctx.progress(None, "Starting the training process…")
    return run_in_process(ctx, train_job, mode, data, str(out_dir), epochs, batch_size, steps_per_epoch, resume,
                          valid_pairs, cooperative=True)


def run_build_scores(ctx: TaskContext, folders: list[Path], work_dir: Path, workers: int) -> Any:
    from companion.gui.process_job import run_in_process
    from companion.training.from_scores import build_job

    return run_in_process(ctx, build_job, [str(f) for f in folders], str(work_dir), workers, cooperative=True)


def run_build_scans(ctx: TaskContext, scans: Path, out: Path) -> Any:
    from companion.gui.process_job import run_in_process
    from companion.training.scans import prepare_scan_snippets

    return run_in_process(ctx, prepare_scan_snippets, scans, out, ())  # the user's own scans: exclude nothing


class TrainingView(QWidget):
    message = Signal(str)
    error = Signal(str, str)
    model_activated = Signal(object)
    """An :class:`~companion.models.activate.Activation`: the app's model changed, the library must re-index."""

    def __init__(self, cfg: Config, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.runner = runner
        self.task: Task | None = None
        self.result: Any = None
        self.losses: list[tuple[float, float]] = []
        self.mrr: list[tuple[float, float]] = []
        self.progress_events = 0
        self._dirty = False
        available, self.unavailable = training_available()

        # -- data
        self.scores_edit = self._folder_edit("Folders of symbolic scores (kern, MusicXML, MEI, ABC, LilyPond); "
                                             f"several separated by '{SEP}'")
        self.scans_edit = self._folder_edit("Your scanned scores (PDF)")
        self.recordings_edit = self._folder_edit("Your recordings (audio)")
        self.data_edit = self._folder_edit("Prepared training data (built from the folders above)")
        self.synthetic = QCheckBox("Use a tiny synthetic set (a quick check that training works)")
        self.build_scores_btn = QPushButton("Build corpus from scores")
        self.build_scores_btn.setToolTip("Engrave, perform and align the symbolic scores into a corpus and pack it. "
                                         "Cancel keeps the finished pieces: building again resumes.")
        self.build_scores_btn.clicked.connect(self.build_from_scores)
        self.build_btn = QPushButton("Cut snippets from scans")
        self.build_btn.setToolTip("Cut unlabelled snippets from the systems of your scans (for pre-training the "
                                  "sheet encoder)")
        self.build_btn.clicked.connect(self.build_data)
        self.build_task: Task | None = None
        self.last_build: dict | None = None
        self.build_workers = max(1, (os.cpu_count() or 2) - 1)
        """Worker processes for building (one core is left to the app)."""
        build_row = QWidget()
        br = QHBoxLayout(build_row)
        br.setContentsMargins(0, 0, 0, 0)
        br.addWidget(self.build_scores_btn)
        br.addWidget(self.build_btn)
        br.addStretch(1)
        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        form.addRow("Symbolic scores:", self._with_browse(self.scores_edit, append=True))
        form.addRow("Scans:", self._with_browse(self.scans_edit))
        form.addRow("Recordings:", self._with_browse(self.recordings_edit))
        form.addRow("", build_row)
        form.addRow("Training data:", self._with_browse(self.data_edit))
        form.addRow("", self.synthetic)

        # -- run
        self.mode_box = QComboBox()
        for key, text in MODES:
            self.mode_box.addItem(text, key)
        self.mode_box.setCurrentIndex(2)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setValue(20)
        self.batch = QSpinBox()
        self.batch.setRange(2, 1024)
        self.batch.setValue(64)
        self.steps = QSpinBox()
        self.steps.setRange(0, 100000)
        self.steps.setSpecialValueText("whole data set")
        self.valid_pairs = QSpinBox()
        self.valid_pairs.setRange(16, 100000)
        self.valid_pairs.setValue(2000)
        self.valid_pairs.setToolTip("Held-out pairs ranked after each epoch to compute the validation MRR")
        self.run_dir = QLineEdit(str(cfg.paths.data_dir / "runs"))
        run_box = QGroupBox("Run")
        rform = QFormLayout(run_box)
        rform.addRow("What:", self.mode_box)
        rform.addRow("Epochs:", self.epochs)
        rform.addRow("Batch size:", self.batch)
        rform.addRow("Steps per epoch:", self.steps)
        rform.addRow("Validation pairs:", self.valid_pairs)
        rform.addRow("Run folder:", self._with_browse(self.run_dir))
        self.start_btn = QPushButton("Start")
        self.start_btn.setObjectName("primary")
        self.start_btn.clicked.connect(lambda: self.start(resume=False))
        self.resume_btn = QPushButton("Resume")
        self.resume_btn.setToolTip("Continue the run in the run folder where it stopped")
        self.resume_btn.clicked.connect(lambda: self.start(resume=True))
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        self.eval_btn = QPushButton("Evaluate")
        self.eval_btn.setToolTip("Show the validation metrics of the best model of this run")
        self.eval_btn.clicked.connect(self.evaluate)
        self.compare_btn = QPushButton("Compare with current model")
        self.compare_btn.clicked.connect(self.compare)
        self.activate_btn = QPushButton("Activate and re-index")
        self.activate_btn.setEnabled(False)
        self.activate_btn.setToolTip("Install this run's best model as the app's model (the current one is kept "
                                     "and can be restored) and re-index the library with it")
        self.activate_btn.clicked.connect(self.request_activate)
        self.restore_btn = QPushButton("Restore previous model")
        self.restore_btn.setToolTip("Bring back the model the last activation replaced, and re-index")
        self.restore_btn.clicked.connect(self.restore_previous)
        self.comparison: Any = None
        self.model_task: Task | None = None
        self.confirm_box: QMessageBox | None = None
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.resume_btn, self.cancel_btn, self.eval_btn, self.compare_btn,
                  self.activate_btn, self.restore_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.progress = QProgressBar()
        self.status = QLabel("Ready." if available else f"Training is unavailable: {self.unavailable}.")
        self.status.setWordWrap(True)
        self.report = QLabel("")
        self.report.setWordWrap(True)
        self.report.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # -- curves
        self.loss_plot = pg.PlotWidget(title="Training loss")
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#e4572e", width=2))
        self.mrr_plot = pg.PlotWidget(title="Validation MRR")
        self.mrr_plot.setLabel("bottom", "epoch")
        self.mrr_plot.setYRange(0, 1)
        self.mrr_curve = self.mrr_plot.plot(pen=pg.mkPen("#3b82f6", width=2), symbol="o", symbolSize=6)
        for p in (self.loss_plot, self.mrr_plot):
            p.setMenuEnabled(False)
            p.showGrid(x=True, y=True, alpha=0.2)

        top = QHBoxLayout()
        top.addWidget(data_box, 3)
        top.addWidget(run_box, 2)
        report_box = QGroupBox("Evaluation")
        report_box.setFixedWidth(370)
        rl = QVBoxLayout(report_box)
        self.report.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.report.setText("Evaluate shows the validation results of the run; Compare puts them next to "
                            "the installed model's.")
        rl.addWidget(self.report, 1)
        curves = QHBoxLayout()
        curves.addWidget(self.loss_plot)
        curves.addWidget(self.mrr_plot)
        curves.addWidget(report_box)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(curves, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(200)
        self.timer.timeout.connect(self._redraw)
        self._set_running(False)
        self._update_restore()
        if not available:
            for b in (self.start_btn, self.resume_btn):
                b.setEnabled(False)

    def _folder_edit(self, tip: str) -> QLineEdit:
        e = QLineEdit()
        e.setPlaceholderText(tip)
        e.setToolTip(tip)
        return e

    def _with_browse(self, edit: QLineEdit, append: bool = False) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        b = QPushButton("…")
        b.setFixedWidth(32)
        b.clicked.connect(lambda: self._browse(edit, append))
        h.addWidget(b)
        return w

    def _browse(self, edit: QLineEdit, append: bool = False) -> None:
        current = [p for p in edit.text().split(SEP) if p.strip()] if append else [edit.text()]
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", current[-1] if current else "")
        if folder:
            edit.setText(SEP.join([*current, folder]) if append and folder not in current else folder)

    # -- running ----------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return str(self.mode_box.currentData())

    @property
    def out_dir(self) -> Path:
        return Path(self.run_dir.text()).expanduser() / self.mode

    def start(self, resume: bool = False) -> Task | None:
        if self.task is not None:
            return None
        data = "synthetic" if self.synthetic.isChecked() else self.data_edit.text().strip()
        if not data:
            self.error.emit("Training", "Choose the prepared training data folder, or tick the synthetic set.")
            return None
        if not resume:
            self.losses.clear()
            self.mrr.clear()
        self.progress_events = 0
        # the x axes span the whole run: they are not relaid out (tick labels measured again) at every redraw
        for plot in (self.loss_plot, self.mrr_plot):
            plot.setXRange(0, self.epochs.value(), padding=0.02)
        self._set_running(True)
        self.status.setText("Starting…")
        self.task = self.runner.start(
            "train", run_training, self.mode, data, self.out_dir, self.epochs.value(), self.batch.value(),
            self.steps.value(), resume, self.valid_pairs.value(),
            on_progress=self._progress, on_finished=self._finished,
            on_failed=lambda m, user: (self.status.setText(f"Training failed: {m}"), self.error.emit("Training", m)),
            on_cancelled=lambda: self.status.setText(
                "Cancelled. The run is saved: Resume continues where it stopped."),
            on_done=lambda: self._set_running(False),
        )
        self.timer.start()
        return self.task

    def score_folders(self) -> list[Path]:
        return [Path(p.strip()).expanduser() for p in self.scores_edit.text().split(SEP) if p.strip()]

    def build_from_scores(self) -> Task | None:
        """Corpus build + pack from the chosen score folders, in a child process."""
        folders = self.score_folders()
        if not folders:
            self.error.emit("Build data", "Choose one or more folders of symbolic scores first.")
            return None
        missing = [str(f) for f in folders if not f.exists()]
        if missing:
            self.error.emit("Build data", f"Folder not found: {', '.join(missing)}")
            return None
        if self.build_task is not None or self.task is not None:
            return None
        work = Path(self.run_dir.text()).expanduser() / "scores-data"
        self.status.setText(f"Building a corpus from {len(folders)} folder{'s' if len(folders) > 1 else ''}…")
        self._building(True)
        self.build_task = self.runner.start(
            "build data", run_build_scores, folders, work, self.build_workers,
            on_progress=self._build_progress,
            on_finished=self._scores_built,
            on_failed=lambda m, user: (self.status.setText(f"Building data failed: {m}"),
                                       self.error.emit("Build data", m)),
            on_cancelled=lambda: self.status.setText(
                "Building data cancelled. Finished pieces are kept: building again resumes."),
            on_done=self._build_done,
        )
        return self.build_task

    def _build_progress(self, fraction: float, text: str, _payload: Any) -> None:
        if self.build_task is not None and self.build_task.ctx.cancelled:
            return
        if fraction >= 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        else:
            self.progress.setRange(0, 0)
        if text:
            self.status.setText(text)

    def _scores_built(self, summary: dict) -> None:
        self.last_build = summary
        failed = summary.get("failed", [])
        note = f"; {len(failed)} failed (see {summary['corpus']}/report.json)" if failed else ""
        pairs = ""
        if summary.get("pairs_dir"):
            self.data_edit.setText(summary["pairs_dir"])
            pairs = f"; {summary.get('pairs', 0)} training pairs in {summary['pairs_dir']}"
        self.status.setText(f"Corpus built in {summary['corpus']}: {summary.get('pieces', 0)} pieces "
                            f"({summary.get('built', 0)} built now, {summary.get('unchanged', 0)} unchanged{note})"
                            f"{pairs}.")
        self.message.emit("Corpus ready")

    def _building(self, on: bool) -> None:
        self.progress.setRange(0, 0 if on else 1000)
        self.build_btn.setEnabled(not on)
        self.build_scores_btn.setEnabled(not on)
        self.cancel_btn.setEnabled(on or self.task is not None)

    def build_data(self) -> Task | None:
        """Prepare scan snippets (``sheet.npy``) in a child process; then pre-training can use them."""
        scans = Path(self.scans_edit.text().strip()).expanduser()
        if not self.scans_edit.text().strip() or not scans.is_dir():
            self.error.emit("Build data", "Choose the folder of your scanned scores (PDF) first.")
            return None
        if self.build_task is not None or self.task is not None:
            return None
        out = Path(self.run_dir.text()).expanduser() / "scan-snippets"
        self.status.setText(f"Cutting snippets from the scans in {scans}…")
        self._building(True)
        self.build_task = self.runner.start(
            "build data", run_build_scans, scans, out,
            on_finished=lambda summary: self._built(out, summary),
            on_failed=lambda m, user: (self.status.setText(f"Building data failed: {m}"),
                                       self.error.emit("Build data", m)),
            on_cancelled=lambda: self.status.setText("Building data cancelled."),
            on_done=self._build_done,
        )
        return self.build_task

    def _built(self, out: Path, summary: Any) -> None:
        self.data_edit.setText(str(out))
        self.synthetic.setChecked(False)
        self.mode_box.setCurrentIndex(self.mode_box.findData("simclr-sheet"))
        n = summary.get("snippets", "?")
        detected = len(summary.get("detected", []))
        skipped = summary.get("skipped", [])
        how = f", systems found by the detector in {detected} of {len(summary.get('works', []))} scans" if detected else ""
        bad = f"; {len(skipped)} unreadable PDF{'s' if len(skipped) != 1 else ''} skipped" if skipped else ""
        self.status.setText(f"Scan snippets ready in {out} ({n} snippets{how}{bad}): "
                            "pre-train the sheet encoder with them.")

    def _build_done(self) -> None:
        self.build_task = None
        self._building(False)
        self.progress.setValue(0)

    def cancel(self) -> None:
        if self.build_task is not None:
            self.build_task.cancel()
            self.status.setText("Cancelling: the pieces in progress are abandoned, finished ones are kept…")
        if self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling after the current step… (Resume continues from the last save)")

    def _set_running(self, running: bool) -> None:
        if not running:
            self.task = None
            self.timer.stop()
            self._redraw()
        self.start_btn.setEnabled(not running and not self.unavailable)
        self.resume_btn.setEnabled(not running and not self.unavailable)
        self.cancel_btn.setEnabled(running)
        self.mode_box.setEnabled(not running)

    def _progress(self, fraction: float, text: str, p: Any) -> None:
        self.progress_events += 1
        if fraction >= 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        else:
            self.progress.setRange(0, 0)
        if p is None:
            self.status.setText(text)
            return
        x = p.epoch + (p.step / p.steps if p.steps else 0.0)
        if p.phase == "train" and not math.isnan(p.loss):
            self.losses.append((x, p.loss))
        mrr = validation_mrr(p.metrics) if p.phase == "epoch" else None
        if mrr is not None:
            self.mrr.append((p.epoch + 1, mrr))
        rate = f", {p.pairs_per_s:.0f} pairs/s" if p.pairs_per_s else ""
        self.status.setText(f"{text}{rate}, loss {p.loss:.4f}" if not math.isnan(p.loss) else text)
        self._dirty = True

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        if self.losses:
            xs, ys = zip(*self.losses)
            self.loss_curve.setData(list(xs), list(ys))
        if self.mrr:
            xs, ys = zip(*self.mrr)
            self.mrr_curve.setData(list(xs), list(ys))

    def _finished(self, result: Any) -> None:
        self.result = result
        best = "n/a" if result.best_score == float("-inf") else f"{result.best_score:.3f}"
        self.status.setText(f"Training {result.status}: {result.epochs_done} epochs, best validation MRR {best}, "
                            f"{result.wall_s:.0f} s. Best model: {result.best_path}")
        self.message.emit(f"Training {result.status}")
        if result.best_path and Path(result.best_path).is_file():
            self.compare()  # show the new model next to the active one, ready to activate

    # -- evaluate / compare -----------------------------------------------------------------------
    def evaluate(self) -> None:
        history = self.out_dir / "history.json"
        if not history.is_file():
            self.report.setText(f"No finished epoch in {self.out_dir} yet: nothing to evaluate.")
            return
        try:
            data = json.loads(history.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.report.setText(f"Cannot read {history}: {exc}")
            return
        rows = data if isinstance(data, list) else data.get("history", [])
        if not rows:
            self.report.setText("The run has no validation results yet.")
            return
        lines = []
        for row in rows[-5:]:
            mrr = validation_mrr(row.get("valid", {})) if isinstance(row, dict) else None
            loss = row.get("loss") if isinstance(row, dict) else None
            lines.append(f"epoch {row.get('epoch', '?') + 1 if isinstance(row.get('epoch'), int) else '?'}: "
                         f"loss {loss:.4f}, validation MRR {mrr:.3f}" if mrr is not None and loss is not None
                         else str(row))
        best = max((validation_mrr(r.get("valid", {})) or 0.0 for r in rows if isinstance(r, dict)), default=0.0)
        self.report.setText("<b>Validation</b> (last epochs):<br>" + "<br>".join(lines)
                            + f"<br><b>Best validation MRR: {best:.3f}</b>")

    def compare(self) -> Task | None:
        """Put this run's best model next to the active one (read in a worker: loading torch takes seconds)."""
        best = self.out_dir / "best.pt"
        if not best.is_file():
            self.report.setText("This run has no best model yet: train at least one epoch.")
            self.activate_btn.setEnabled(False)
            return None
        if self.model_task is not None:
            return None
        self.report.setText("Comparing…")
        self.model_task = self.runner.start(
            "compare models", run_compare, best, self.cfg.models_dir,
            on_finished=self._compared,
            on_failed=lambda m, user: (self.report.setText(f"Cannot compare: {html.escape(m)}"),
                                       self.activate_btn.setEnabled(False)),
            on_done=self._model_task_done,
        )
        return self.model_task

    def _compared(self, cmp: Any) -> None:
        self.comparison = cmp
        self.report.setText(comparison_html(cmp))
        self.activate_btn.setEnabled(cmp.candidate.mode in ("snippet", "passage"))

    def _model_task_done(self) -> None:
        self.model_task = None
        self._update_restore()

    def _update_restore(self) -> None:
        """Restore is offered only when an activation kept a previous model (a cheap folder check)."""
        previous = self.cfg.models_dir / "previous"
        self.restore_btn.setEnabled(previous.is_dir() and any(previous.glob("*.pt")))

    def request_activate(self) -> None:
        """Ask before replacing the app's model (a window-modal box: the event loop keeps running)."""
        if self.comparison is None:
            return
        cmp = self.comparison
        verdict = ("It scored better on the same validation data." if cmp.better
                   else "It did <b>not</b> score better on the same validation data." if cmp.better is False
                   else "The two were not validated on the same data, so their numbers are not comparable.")
        if self.confirm_box is None:
            # one box, kept and reused: no per-call closures over widgets Qt may delete
            self.confirm_box = QMessageBox(QMessageBox.Icon.Question, "Activate model", "",
                                           QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self)
            self.confirm_box.button(QMessageBox.StandardButton.Ok).setText("Activate and re-index")
            self.confirm_box.finished.connect(self._confirmed)
        self.confirm_box.setText(
            f"Make {html.escape(str(cmp.candidate.path))} the app's {cmp.candidate.kind} model and re-index the "
            f"library with it?<br><br>{verdict}<br>The current model is kept and 'Restore previous model' brings "
            "it back.")
        self.confirm_box.open()

    def _confirmed(self, result: int) -> None:
        if result == QMessageBox.StandardButton.Ok.value:  # finished() carries the clicked standard button
            self.activate()

    def activate(self) -> Task | None:
        """Install the compared candidate as the app's model, in a worker; then the library re-indexes."""
        if self.comparison is None or self.model_task is not None:
            return None
        candidate = self.comparison.candidate.path
        self.activate_btn.setEnabled(False)
        self.restore_btn.setEnabled(False)
        self.status.setText(f"Activating {candidate}…")
        self.model_task = self.runner.start(
            "activate model", run_activate, candidate, self.cfg.models_dir,
            on_finished=self._activated,
            on_failed=lambda m, user: (self.status.setText(f"Activation failed: {m}"),
                                       self.error.emit("Activate model", m)),
            on_done=self._model_task_done,
        )
        return self.model_task

    def restore_previous(self) -> Task | None:
        if self.model_task is not None:
            return None
        kind = self.comparison.candidate.kind if self.comparison is not None else (
            "passage" if self.mode == "passage" else "snippet")
        self.activate_btn.setEnabled(False)
        self.restore_btn.setEnabled(False)
        self.status.setText(f"Restoring the previous {kind} model…")
        self.model_task = self.runner.start(
            "restore model", run_restore, self.cfg.models_dir, kind,
            on_finished=self._activated,
            on_failed=lambda m, user: (self.status.setText(f"Restoring failed: {m}"),
                                       self.error.emit("Restore previous model", m)),
            on_done=self._model_task_done,
        )
        return self.model_task

    def _activated(self, act: Any) -> None:
        self.comparison = None
        kept = f" The replaced model is kept in {act.backup.parent}." if act.backup else ""
        self.status.setText(f"The {act.kind} model {act.new_version} is now active ({act.installed}).{kept} "
                            "The library re-indexes with it (see Library).")
        self.report.setText(f"<b>Active {act.kind} model:</b> {act.new_version}<br>"
                            f"replaced: {act.old_version or 'none'}")
        self.message.emit(f"New {act.kind} model active; re-indexing the library")
        self.model_activated.emit(act)

    def shutdown(self) -> None:
        for task in (self.task, self.build_task):
            if task is not None:
                task.cancel()


def run_compare(ctx: TaskContext, candidate: Path, models_dir: Path) -> Any:
    """In a child process, like activating and restoring: reading a checkpoint loads torch, whose
    libraries load while holding the GIL (a 100-300 ms freeze if done in a thread of the app)."""
    from companion.gui.process_job import run_in_process
    from companion.gui.training_jobs import compare_job

    return run_in_process(ctx, compare_job, candidate, models_dir)


def run_activate(ctx: TaskContext, candidate: Path, models_dir: Path) -> Any:
    from companion.gui.process_job import run_in_process
    from companion.gui.training_jobs import activate_job

    return run_in_process(ctx, activate_job, candidate, models_dir)


def run_restore(ctx: TaskContext, models_dir: Path, kind: str) -> Any:
    from companion.gui.process_job import run_in_process
    from companion.gui.training_jobs import restore_job

    return run_in_process(ctx, restore_job, models_dir, kind)


def comparison_html(cmp: Any) -> str:
    """The candidate's and the active model's metrics as a side-by-side table."""
    cur = cmp.current
    head = ("<table cellspacing='0' cellpadding='1' width='100%'><tr><th align='left'>validation</th>"
            "<th align='right'>this run</th><th align='right'>current</th></tr>")
    body = "".join(f"<tr><td>{html.escape(label)}</td><td align='right'><b>{a}</b></td>"
                   f"<td align='right'>{b}</td></tr>" for label, a, b in cmp.rows)
    notes = [f"this run: {html.escape(cmp.candidate.path.name)} ({cmp.candidate.kind}, {cmp.candidate.version})",
             f"current: {html.escape(cur.path.name)} ({cur.version})" if cur else "current: none installed"]
    if cmp.candidate.mode not in ("snippet", "passage"):
        notes.append("<i>A pre-trained encoder cannot be activated: fine-tune from it first.</i>")
    elif cur is None:
        pass
    elif cmp.same_validation:
        notes.append("Same validation data: " + ("<b>this run is better</b>." if cmp.better
                                                 else "<b>this run is not better</b>."))
    else:
        notes.append("<i>Validated on different data: the numbers are not directly comparable; "
                     "check with 'companion bench' before switching.</i>")
    return head + body + "</table>" + "<br>".join(notes)


def validation_mrr(metrics: Any) -> float | None:
    """The validation MRR of a metrics dict: its ``score``, else the mean of the directions' MRR."""
    if not isinstance(metrics, dict):
        return None
    if isinstance(metrics.get("score"), (int, float)):
        return float(metrics["score"])
    values = [v["MRR"] for v in metrics.values() if isinstance(v, dict) and isinstance(v.get("MRR"), (int, float))]
    if isinstance(metrics.get("MRR"), (int, float)):
        values.append(metrics["MRR"])
    return float(sum(values) / len(values)) if values else None


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(d, dict):
        return out
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, (int, float, str)):
            out[key] = round(v, 4) if isinstance(v, float) else v
    return out
