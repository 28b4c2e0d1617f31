"""The Lookup tab: drop a recording, see which pieces it plays and where, open the score there.

The recording is analysed in a worker (its spectrogram always, shown as an
overview; the engine's lookup when the engine offers one). Without the
engine the view says so plainly and shows no results: nothing is invented.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from companion.config import Config
from companion.errors import AudioError, CompanionError
from companion.gui import identification as ident
from companion.gui.workers import Task, TaskContext, TaskRunner

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aif", ".aiff", ".opus", ".aac"}


def is_audio_file(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


class LookupResult:
    """What a lookup produced: the spectrogram overview and the engine's hops (if any)."""

    def __init__(self, path: Path, duration: float, spectrogram: np.ndarray, hops: list[ident.Identification],
                 unavailable: str) -> None:
        self.path = path
        self.duration = duration
        self.spectrogram = spectrogram
        self.hops = hops
        self.unavailable = unavailable

    def ranked(self) -> list[tuple[int, str, float]]:
        """(document, title, share of the sure hops) best first."""
        votes: dict[int, list[float]] = {}
        titles: dict[int, str] = {}
        sure = [h for h in self.hops if h.sure and h.pieces]
        for h in sure:
            top = h.pieces[0]
            votes.setdefault(top.document_id, []).append(top.confidence)
            titles[top.document_id] = top.title
        total = max(1, len(self.hops))
        out = [(d, titles[d], len(v) / total) for d, v in votes.items()]
        return sorted(out, key=lambda x: -x[2])


def run_lookup(ctx: TaskContext, cfg: Config, path: Path) -> LookupResult:
    from companion.audio import audio_info, log_spectrogram

    info = audio_info(path)  # AudioError for missing / unreadable files
    ctx.progress(None, f"Analysing {path.name}…")
    spec = log_spectrogram(path)
    ctx.check()
    available, why = ident.lookup_available()
    hops: list[ident.Identification] = []
    if available:
        ctx.progress(0.0, "Identifying…")
        try:
            hops = ident.lookup_recording(cfg, cfg.paths.library_dir, path,
                                          progress=lambda f: ctx.progress(f, "Identifying…"), cancel=ctx.cancel_event)
        except AudioError:
            raise
        except CompanionError as exc:  # no model, no library: the recording is still shown
            available, why = False, str(exc)
        ctx.check()
    return LookupResult(path, float(info.duration), np.asarray(spec, np.float32), hops, "" if available else why)


class LookupView(QWidget):
    open_at = Signal(int, int, float)
    """document id, system (reading order), seconds into the recording."""
    message = Signal(str)
    error = Signal(str, str)

    def __init__(self, cfg: Config, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.runner = runner
        self.task: Task | None = None
        self.result: LookupResult | None = None
        self.segments: list[tuple[float, float, ident.Position]] = []

        self.drop_label = QLabel("<h3>Drop a recording here</h3>or use File ▸ Look up recording… (Ctrl+L).<br>"
                                 "The pieces it plays are listed with the systems they pass through; "
                                 "click one to open the score there.")
        self.drop_label.setObjectName("dropZone")
        self.drop_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_label.setWordWrap(True)
        self.drop_label.setMinimumHeight(90)
        self.file_label = QLabel("")
        self.file_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setVisible(False)
        self.cancel_btn.clicked.connect(self.cancel)
        self.spec_plot = pg.PlotWidget()
        self.spec_plot.setMenuEnabled(False)
        self.spec_plot.setMouseEnabled(True, False)
        self.spec_plot.setLabel("bottom", "seconds")
        self.spec_plot.setMaximumHeight(200)
        self.spec_img = pg.ImageItem()
        self.spec_img.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.spec_plot.addItem(self.spec_img)
        self.pieces = QTableWidget(0, 2)
        self.pieces.setHorizontalHeaderLabels(["Piece", "Share of the recording"])
        self.timeline = QTableWidget(0, 4)
        self.timeline.setObjectName("timeline")
        self.timeline.setHorizontalHeaderLabels(["From", "To", "Piece", "Page · system"])
        for t in (self.pieces, self.timeline):
            t.verticalHeader().setVisible(False)
            t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            t.horizontalHeader().setStretchLastSection(True)
        self.timeline.cellDoubleClicked.connect(lambda row, _c: self.open_segment(row))
        self.open_btn = QPushButton("Open score here")
        self.open_btn.clicked.connect(lambda: self.open_segment(self.timeline.currentRow()))
        self.play_btn = QPushButton("Play from here")
        self.play_btn.setToolTip("Play the recording from the selected segment (again: stop)")
        self.play_btn.clicked.connect(lambda: self.play_segment(self.timeline.currentRow()))
        self.playing = False

        top = QHBoxLayout()
        top.addWidget(self.file_label, 1)
        top.addWidget(self.progress)
        top.addWidget(self.cancel_btn)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_btn)
        buttons.addWidget(self.play_btn)
        lower = QSplitter()
        pw = QWidget()
        pl = QVBoxLayout(pw)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(QLabel("<b>Pieces</b>"))
        pl.addWidget(self.pieces)
        tw = QWidget()
        tl = QVBoxLayout(tw)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(QLabel("<b>Timeline of systems</b>"))
        tl.addWidget(self.timeline)
        tl.addLayout(buttons)
        lower.addWidget(pw)
        lower.addWidget(tw)
        lower.setSizes([380, 620])
        layout = QVBoxLayout(self)
        layout.addWidget(self.drop_label)
        layout.addLayout(top)
        layout.addWidget(self.spec_plot)
        layout.addWidget(lower, 1)
        self.setAcceptDrops(True)
        self._update_buttons()

    # -- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if any(is_audio_file(Path(u.toLocalFile())) for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for u in event.mimeData().urls():
            path = Path(u.toLocalFile())
            if is_audio_file(path):
                self.look_up(path)
                event.acceptProposedAction()
                return

    # -- lookup -----------------------------------------------------------------------------------
    def look_up(self, path: Path) -> Task | None:
        if self.task is not None:
            self.task.cancel()
        self.file_label.setText(f"<b>{path.name}</b> — analysing…")
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_btn.setVisible(True)
        mine: dict[str, Task] = {}
        self.task = self.runner.start("lookup", run_lookup, self.cfg, path,
                                      on_progress=self._progress, on_finished=self._show,
                                      on_failed=self._failed,
                                      on_cancelled=lambda: self.task is mine["task"] and self.file_label.setText(
                                          f"{path.name}: cancelled"),
                                      on_done=lambda: self._done(mine["task"]))
        mine["task"] = self.task  # set before the queued "done" can be delivered (same thread)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _progress(self, fraction: float, text: str, _payload: Any) -> None:
        if fraction < 0:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))

    def _done(self, task: Task) -> None:
        if self.task is not task:
            return  # a lookup that was replaced by a newer one
        self.task = None
        self.progress.setVisible(False)
        self.cancel_btn.setVisible(False)

    def _failed(self, message: str, user: bool) -> None:
        self.file_label.setText(f"<span style='color:#d64541'>Could not look up the recording: {message}</span>")
        self.error.emit("Look up recording", message)

    def _show(self, result: LookupResult) -> None:
        self.result = result
        minutes, seconds = divmod(int(round(result.duration)), 60)
        text = f"<b>{result.path.name}</b> — {minutes}:{seconds:02d}"
        if result.unavailable:
            text += (f"<br><span style='color:#b26b00'>Identification unavailable: {result.unavailable}. "
                     "The recording was analysed (spectrogram below) but no piece is named.</span>")
        elif not any(h.sure for h in result.hops):
            text += "<br>Not sure: the recording does not clearly match any piece in the library."
        self.file_label.setText(text)
        spec = result.spectrogram
        if spec.size:
            self.spec_img.setImage(spec.T, autoLevels=True)
            self.spec_img.setRect(0, 0, len(spec) / self.cfg.audio.fps, spec.shape[1])
            self.spec_plot.setXRange(0, len(spec) / self.cfg.audio.fps, padding=0)
        ranked = result.ranked()
        self.pieces.setRowCount(len(ranked))
        for row, (_doc, title, share) in enumerate(ranked):
            self.pieces.setItem(row, 0, QTableWidgetItem(title))
            self.pieces.setItem(row, 1, QTableWidgetItem(f"{share:.0%}"))
        self.segments = ident.timeline(result.hops)
        titles = {p.document_id: p.title for h in result.hops for p in h.pieces}
        self.timeline.setRowCount(len(self.segments))
        for row, (start, end, pos) in enumerate(self.segments):
            self.timeline.setItem(row, 0, QTableWidgetItem(_clock(start)))
            self.timeline.setItem(row, 1, QTableWidgetItem(_clock(end)))
            self.timeline.setItem(row, 2, QTableWidgetItem(titles.get(pos.document_id, f"document {pos.document_id}")))
            self.timeline.setItem(row, 3, QTableWidgetItem(pos.describe()))
        if self.segments:
            self.timeline.selectRow(0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = bool(self.segments)
        self.open_btn.setEnabled(has)
        self.play_btn.setEnabled(has)

    # -- results ----------------------------------------------------------------------------------
    def open_segment(self, row: int) -> None:
        if 0 <= row < len(self.segments):
            start, _end, pos = self.segments[row]
            self.open_at.emit(pos.document_id, pos.system, start)

    def play_segment(self, row: int) -> None:
        """Open the score at the segment and play the recording from its start (sounddevice output)."""
        if self.playing:
            self.stop_playback()
            return
        if self.result is None or not 0 <= row < len(self.segments):
            return
        start = self.segments[row][0]
        self.open_segment(row)
        self.playing = True
        self.play_btn.setText("Stop playback")
        self.runner.start("play", _play, self.result.path, start, self.cfg.audio.sample_rate,
                          on_failed=lambda m, user: self.error.emit("Play recording", m),
                          on_done=self._played)

    def stop_playback(self) -> None:
        try:
            import sounddevice

            sounddevice.stop()
        except Exception as exc:  # no audio system: nothing is playing anyway
            log.debug("stop playback: %s", exc)

    def _played(self) -> None:
        self.playing = False
        self.play_btn.setText("Play from here")


def _play(ctx: TaskContext, path: Path, start: float, sample_rate: int) -> None:
    """Decode and play from ``start`` seconds, until the end, stop, or cancel."""
    from companion.audio import load_audio
    from companion.errors import AudioError

    signal = load_audio(path, sample_rate=sample_rate)
    ctx.check()
    try:
        import sounddevice

        sounddevice.play(signal[int(start * sample_rate):], sample_rate)
        while sounddevice.get_stream().active:
            if ctx.cancelled:
                sounddevice.stop()
                break
            sounddevice.sleep(100)
    except (OSError, ValueError) as exc:  # no PortAudio, or no output device
        raise AudioError(f"the recording cannot be played here: {exc}") from exc
    except Exception as exc:  # sounddevice.PortAudioError
        raise AudioError(f"the recording cannot be played here: {exc}") from exc


def _clock(t: float) -> str:
    m, s = divmod(max(0.0, t), 60)
    return f"{int(m)}:{s:04.1f}"
