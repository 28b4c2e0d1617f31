"""The Listen tab: microphone (or a file played as one), level, live spectrogram, identification.

The capture session (:mod:`companion.live`) runs its own worker thread; this
panel polls its event channel from a 50-ms timer (taking only what is
queued, so the GUI thread never waits for audio). Starting and stopping a
session can take a while (opening a device, joining the worker): both run in
:mod:`companion.gui.workers` tasks.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from companion.config import Config
from companion.errors import CompanionError
from companion.gui.identification import Identification, live_engine, to_identification
from companion.gui.widgets import ConfidenceBar, LevelMeter
from companion.gui.workers import TaskContext, TaskRunner
from companion.live import (
    CaptureSession,
    CaptureState,
    FramesEvent,
    LevelEvent,
    ResultEvent,
    SessionParams,
    StatusEvent,
)

log = logging.getLogger(__name__)

SPEC_SECONDS = 10.0
CONF_SECONDS = 60.0
STATE_STYLE = {
    "ok": "background:#e3f4e8; color:#1d6b3a;",
    "info": "background:#e7eefb; color:#23467d;",
    "warn": "background:#fdf1dc; color:#7a4d00;",
    "error": "background:#fbe3e2; color:#8c1d18;",
}


def _state_kind(state: CaptureState) -> str:
    if state == CaptureState.RUNNING:
        return "ok"
    if state in (CaptureState.IDLE, CaptureState.STARTING):
        return "info"
    if state.retries:
        return "warn"
    return "error"


class ListenPanel(QWidget):
    identified = Signal(object)
    """An :class:`Identification` (sure or not) from the live engine."""
    message = Signal(str)

    def __init__(self, cfg: Config, runner: TaskRunner, input_file: Path | None = None,
                 audio_backend: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.audio_backend = audio_backend
        """The audio system (None: sounddevice); tests pass a fake one."""
        self.runner = runner
        self.input_file = input_file
        self.session: CaptureSession | None = None
        self.engine_reason = ""
        self.state = CaptureState.IDLE
        self.last_status: StatusEvent | None = None
        self.history: deque[tuple[float, float]] = deque(maxlen=int(CONF_SECONDS * 4))
        self.last_identification: Identification | None = None
        self.frames_seen = 0
        self.levels_seen = 0
        self._busy = False
        self._devices: list[Any] = []
        fps = cfg.audio.fps
        self._spec = np.zeros((92, int(SPEC_SECONDS * fps)), np.float32)

        # -- controls
        self.device_box = QComboBox()
        self.device_box.setMinimumWidth(280)
        self.device_box.setToolTip("Input device (remembered once it works)")
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.setToolTip("Look for input devices again")
        self.refresh_btn.clicked.connect(self.refresh_devices)
        self.file_btn = QPushButton("Audio file…")
        self.file_btn.setToolTip("Play an audio file as if it were the microphone")
        self.file_btn.clicked.connect(self._choose_file)
        self.start_btn = QPushButton("Start listening")
        self.start_btn.setObjectName("primary")
        self.start_btn.setToolTip("Start or stop listening (Space)")
        self.start_btn.clicked.connect(self.toggle)
        self.retry_btn = QPushButton("Retry")
        self.retry_btn.setVisible(False)
        self.retry_btn.clicked.connect(self._retry)
        self.state_label = QLabel()
        self.state_label.setObjectName("listenState")
        self.state_label.setWordWrap(True)
        self.state_label.setContentsMargins(10, 6, 10, 6)
        self.meter = LevelMeter()
        self.level_text = QLabel("—")
        self.level_text.setMinimumWidth(190)

        # -- spectrogram
        self.spec_plot = pg.PlotWidget()
        self.spec_plot.setMenuEnabled(False)
        self.spec_plot.setMouseEnabled(False, False)
        self.spec_plot.hideButtons()
        self.spec_plot.setLabel("bottom", "seconds ago")
        self.spec_plot.setLabel("left", "frequency band")
        self.spec_img = pg.ImageItem()
        self.spec_img.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.spec_plot.addItem(self.spec_img)
        self.spec_img.setImage(self._spec, levels=(0.0, 3.0), autoLevels=False)
        self.spec_img.setRect(-SPEC_SECONDS, 0, SPEC_SECONDS, 92)  # after setImage: it needs the image size
        self.spec_plot.setXRange(-SPEC_SECONDS, 0, padding=0)
        self.spec_plot.setYRange(0, 92, padding=0)

        # -- identification
        self.ident_title = QLabel()
        self.ident_title.setObjectName("identTitle")
        self.ident_title.setWordWrap(True)
        f = self.ident_title.font()
        f.setPointSizeF(f.pointSizeF() * 1.4)
        f.setBold(True)
        self.ident_title.setFont(f)
        self.ident_detail = QLabel()
        self.ident_detail.setWordWrap(True)
        self.ranked_box = QFrame()
        self.ranked_layout = QGridLayout(self.ranked_box)
        self.ranked_layout.setContentsMargins(0, 0, 0, 0)
        self.ranked_rows: list[tuple[QLabel, ConfidenceBar, QLabel]] = []
        for row in range(5):  # made once and updated in place: rebuilding widgets 20 times a second is costly
            name, bar, pct = QLabel(), ConfidenceBar(0.0), QLabel()
            bar.setMinimumWidth(120)
            self.ranked_layout.addWidget(name, row, 0)
            self.ranked_layout.addWidget(bar, row, 1)
            self.ranked_layout.addWidget(pct, row, 2)
            self.ranked_rows.append((name, bar, pct))
        self.conf_plot = pg.PlotWidget()
        self.conf_plot.setMenuEnabled(False)
        self.conf_plot.setMouseEnabled(False, False)
        self.conf_plot.hideButtons()
        self.conf_plot.setYRange(0, 1, padding=0.02)
        self.conf_plot.setLabel("left", "confidence")
        self.conf_plot.setLabel("bottom", "seconds")
        self.conf_curve = self.conf_plot.plot(pen=pg.mkPen("#3b82f6", width=2))
        self.conf_plot.addItem(pg.InfiniteLine(pos=0.5, angle=0, pen=pg.mkPen("#999", style=Qt.PenStyle.DashLine)))

        top = QHBoxLayout()
        top.addWidget(QLabel("Input:"))
        top.addWidget(self.device_box, 1)
        top.addWidget(self.refresh_btn)
        top.addWidget(self.file_btn)
        top.addStretch(0)
        top.addWidget(self.start_btn)
        level_row = QHBoxLayout()
        level_row.addWidget(QLabel("Level:"))
        level_row.addWidget(self.meter, 1)
        level_row.addWidget(self.level_text)
        state_row = QHBoxLayout()
        state_row.addWidget(self.state_label, 1)
        state_row.addWidget(self.retry_btn)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Live spectrogram</b>"))
        lv.addWidget(self.spec_plot, 1)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("<b>What is playing</b>"))
        rv.addWidget(self.ident_title)
        rv.addWidget(self.ident_detail)
        rv.addWidget(self.ranked_box)
        rv.addWidget(QLabel("<b>Confidence over time</b>"))
        rv.addWidget(self.conf_plot, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([600, 420])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(state_row)
        layout.addLayout(level_row)
        layout.addWidget(split, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(50)
        self.timer.timeout.connect(self.poll)
        self.draw_timer = QTimer(self)
        self.draw_timer.setInterval(100)  # plots redraw at 10 Hz, whatever the event rate
        self.draw_timer.timeout.connect(self._redraw)
        self._spec_dirty = False
        self._conf_dirty = False
        self._show_status(StatusEvent(CaptureState.IDLE, "Not listening. Press Start listening."))
        self._show_identification(None)
        if input_file is not None:
            self.set_input_file(input_file)
        else:
            self.refresh_devices()

    # -- devices ----------------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        self.refresh_btn.setEnabled(False)
        self.runner.start("list devices", _list_devices, self.audio_backend, on_finished=self._devices_listed,
                          on_failed=lambda m, user: self._devices_listed(([], m)))

    def _devices_listed(self, result: tuple[list[Any], str]) -> None:
        devices, problem = result
        self.refresh_btn.setEnabled(True)
        if self.input_file is not None:
            return
        self._devices = devices
        self.device_box.clear()
        if not devices:
            self.device_box.addItem(problem or "No microphone found", None)
            self.device_box.setEnabled(False)
            return
        self.device_box.setEnabled(True)
        wanted = self.cfg.audio.audio_device
        select = 0
        for i, d in enumerate(devices):
            self.device_box.addItem(f"{d.name}{' (default)' if d.is_default else ''}", d.name)
            if (wanted and d.name == wanted) or (not wanted and d.is_default):
                select = i
        self.device_box.setCurrentIndex(select)

    def set_input_file(self, path: Path) -> None:
        self.input_file = Path(path)
        self.device_box.clear()
        self.device_box.addItem(f"File: {self.input_file.name}", None)
        self.device_box.setEnabled(False)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Play an audio file as the microphone", "",
                                              "Audio (*.wav *.flac *.ogg *.mp3 *.m4a *.aiff);;All files (*)")
        if path:
            self.stop()
            self.set_input_file(Path(path))

    # -- start / stop -----------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return self.session is not None

    def toggle(self) -> None:
        if self.listening:
            self.stop()
        else:
            self.start()

    def start(self, speed: float = 1.0) -> None:
        if self.listening or self._busy:
            return
        self._busy = True
        self.start_btn.setEnabled(False)
        self._show_status(StatusEvent(CaptureState.STARTING, "Starting…"))
        device = None if self.input_file else self.device_box.currentData()
        self.history.clear()
        self._spec[:] = 0
        self.runner.start("start listening", _make_session, self.cfg, self.input_file, device, speed,
                          self.audio_backend,
                          on_finished=self._session_ready, on_failed=self._start_failed)

    def _session_ready(self, made: tuple[CaptureSession, str]) -> None:
        session, reason = made
        self._busy = False
        self.engine_reason = reason
        self.session = session
        session.start()
        self.timer.start()
        self.draw_timer.start()
        self.start_btn.setEnabled(True)
        self.start_btn.setText("Stop listening")
        self.device_box.setEnabled(False)
        self._show_identification(None)

    def _start_failed(self, message: str, user: bool) -> None:
        self._busy = False
        self.start_btn.setEnabled(True)
        self._show_status(StatusEvent(CaptureState.ERROR, message))

    def stop(self) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        self.timer.stop()
        self.poll_session(session)
        self.draw_timer.stop()
        self._redraw()
        self.start_btn.setEnabled(False)
        self.runner.start("stop listening", lambda ctx: session.stop(), on_finished=lambda _: self._stopped(session))

    def _stopped(self, session: CaptureSession) -> None:
        self.poll_session(session)
        self.start_btn.setEnabled(True)
        self.start_btn.setText("Start listening")
        self.device_box.setEnabled(self.input_file is None and bool(self._devices))
        self.meter.clear()

    def jump_to(self, document_id: int, system: int) -> bool:
        """The user clicked a system: tell the live engine to follow from there (if it can)."""
        consumer = self.session.consumer if self.session is not None else None
        jump = getattr(consumer, "jump_to", None)
        if jump is None:
            return False
        try:
            jump(document_id, system)
        except (KeyError, IndexError, ValueError) as exc:  # the document is not in the engine's library
            log.info("jump_to ignored: %s", exc)
            return False
        return True

    def _retry(self) -> None:
        if self.session is not None:
            self.session.restart()

    # -- events -----------------------------------------------------------------------------------
    def poll(self) -> None:
        if self.session is not None:
            self.poll_session(self.session)
            if not self.session.running:  # a file ended, or the worker stopped
                self.stop()

    def poll_session(self, session: CaptureSession) -> None:
        frames: list[np.ndarray] = []
        idents: list[Identification] = []
        for ev in session.channel.poll(max_events=500):
            if isinstance(ev, StatusEvent):
                self._show_status(ev)
            elif isinstance(ev, LevelEvent):
                lv = ev.level
                self.levels_seen += 1
                self.meter.set_level(lv.rms_dbfs, lv.peak_dbfs, lv.sound, lv.clipping)
                flags = "sound" if lv.sound else "silence"
                if lv.clipping:
                    flags = "CLIPPING: lower the gain"
                elif lv.dead_input:
                    flags = "only zeros: muted?"
                self.level_text.setText(f"{lv.rms_dbfs:5.1f} dBFS · {flags}")
            elif isinstance(ev, FramesEvent):
                frames.append(ev.frames)
            elif isinstance(ev, ResultEvent):
                latest = to_identification(ev.result, ev.t)
                idents.append(latest)
        if frames:
            self._push_frames(np.concatenate(frames, axis=0))
        for ident in idents:
            self._record(ident)
        if idents:
            self._show_identification(idents[-1])
            for ident in idents:
                self.identified.emit(ident)

    def _push_frames(self, frames: np.ndarray) -> None:
        self.frames_seen += len(frames)
        n = min(len(frames), self._spec.shape[1])
        self._spec = np.roll(self._spec, -n, axis=1)
        self._spec[:, -n:] = frames[-n:, : self._spec.shape[0]].T
        self._spec_dirty = True

    def _record(self, ident: Identification) -> None:
        self.last_identification = ident
        top = ident.pieces[0] if ident.pieces else None
        self.history.append((ident.t, top.confidence if top else 0.0))
        self._conf_dirty = True

    def _redraw(self) -> None:
        if self._spec_dirty:
            self._spec_dirty = False
            self.spec_img.setImage(self._spec, levels=(0.0, max(1.0, float(self._spec.max()))), autoLevels=False)
        if self._conf_dirty and self.history:
            self._conf_dirty = False
            ts = np.fromiter((h[0] for h in self.history), float, len(self.history))
            cs = np.fromiter((h[1] for h in self.history), float, len(self.history))
            self.conf_curve.setData(ts, cs)

    def _show_status(self, ev: StatusEvent) -> None:
        self.state = ev.state
        self.last_status = ev
        text = ev.message
        if ev.device and ev.state == CaptureState.RUNNING:
            text = f"Listening to {ev.device}" + (f" at {ev.sample_rate:.0f} Hz." if ev.sample_rate else ".")
        if ev.retry_in:
            text += f" Next try in {ev.retry_in:.0f} s."
        if ev.detail and ev.state.is_failure:
            text += f"\nDetails: {ev.detail}"
        self.state_label.setText(text)
        self.state_label.setStyleSheet(f"QLabel#listenState {{ {STATE_STYLE[_state_kind(ev.state)]} border-radius:4px; }}")
        self.retry_btn.setVisible(ev.state.is_failure and not ev.state.retries)

    def _show_identification(self, ident: Identification | None) -> None:
        pieces = ident.pieces[:5] if ident is not None else ()
        for row, (name, bar, pct) in enumerate(self.ranked_rows):
            visible = row < len(pieces)
            for w in (name, bar, pct):
                w.setVisible(visible)
            if visible:
                piece = pieces[row]
                name.setText(f"{row + 1}. {piece.title}")
                if bar.value != piece.confidence:
                    bar.value = piece.confidence
                    bar.update()
                pct.setText(f"{piece.confidence:.0%}")
        if ident is None:
            if self.engine_reason:
                self.ident_title.setText("Identification unavailable")
                self.ident_detail.setText(f"{self.engine_reason[0].upper()}{self.engine_reason[1:]}. "
                                          "Level, spectrogram and device state are live; no piece is guessed.")
            elif self.listening:
                self.ident_title.setText("Not sure yet")
                self.ident_detail.setText("Keep playing: the piece is shown once the evidence is clear.")
            else:
                self.ident_title.setText("Not listening")
                self.ident_detail.setText("Start listening to identify the piece and follow it in the score.")
            return
        top = ident.pieces[0] if ident.pieces else None
        if not ident.sure or top is None:
            self.ident_title.setText("Not sure")
            self.ident_detail.setText("The music does not clearly match one piece of the library (yet).")
        else:
            self.ident_title.setText(top.title)
            pos = ident.position
            where = f"{pos.describe()} ({pos.confidence:.0%})" if pos else ""
            self.ident_detail.setText(f"Confidence {top.confidence:.0%}" + (f" · {where}" if where else ""))

    def shutdown(self) -> None:
        """Stop the session synchronously (window closing: nothing else to keep responsive)."""
        self.timer.stop()
        if self.session is not None:
            self.session.stop(timeout=3.0)
            self.session = None


def _list_devices(ctx: TaskContext, backend: Any = None) -> tuple[list[Any], str]:
    from companion.live import list_input_devices
    from companion.live.devices import NoAudioSystem

    try:
        return list_input_devices(backend), ""
    except NoAudioSystem as exc:
        return [], str(exc)
    except Exception as exc:  # PortAudio errors: show them, keep the app going
        return [], f"the audio system reported: {exc}"


def _make_session(ctx: TaskContext, cfg: Config, input_file: Path | None, device: Any,
                  speed: float, audio_backend: Any = None) -> tuple[CaptureSession, str]:
    from companion.live.file_source import FileBackend

    backend = FileBackend(input_file, speed=speed) if input_file is not None else audio_backend
    try:
        consumer, reason = live_engine(cfg, cfg.paths.library_dir)
    except CompanionError as exc:  # no model, empty library...: listen anyway, say why nothing is named
        consumer, reason = None, str(exc)
    session = CaptureSession(cfg.audio, backend=backend, device=device, consumer=consumer,
                             params=SessionParams(publish_frames=True),
                             settings_file=None if input_file is not None else cfg.paths.settings_file)
    return session, reason
