"""A GUI-thread stall detector.

Why: the rule "nothing blocks the GUI thread for more than 50 ms" needs a
measurement, in tests and in the field. A timer asks to be woken every
``interval_ms``; when the event loop is blocked, the wake-up comes late, and
the lateness is how long the GUI thread was unavailable. Stalls above
``threshold_ms`` are recorded (and logged, so slow spots show up in the log
file of a real session).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from companion.gui.qt_workarounds import protect_bools

protect_bools()  # see qt_workarounds
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stall:
    at: float
    """perf_counter() at the late wake-up."""
    ms: float
    """How long the GUI thread was unavailable beyond the timer interval."""
    stack: str = ""
    """Where the GUI thread was while blocked (with ``capture_stacks``)."""


class StallWatchdog(QObject):
    stalled = Signal(float)
    """A stall longer than the threshold happened (its length in ms)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 10, threshold_ms: float = 50.0,
                 log_stalls: bool = True, capture_stacks: bool = False) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.threshold_ms = threshold_ms
        self.log_stalls = log_stalls
        self.capture_stacks = capture_stacks
        """Sample the GUI thread's Python stack from a helper thread while it is blocked
        (a diagnostic: says *what* blocked, at the cost of a 20-ms polling thread)."""
        self._gui_ident = threading.get_ident()
        self._sampler: threading.Thread | None = None
        self._sampler_stop = threading.Event()
        self._pending_stack = ""
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self.reset()

    def reset(self) -> None:
        self.stalls: list[Stall] = []
        self.max_stall_ms = 0.0
        self.ticks = 0
        self._last = time.perf_counter()

    def start(self) -> None:
        self.reset()
        self._gui_ident = threading.get_ident()
        self._timer.start()
        if self.capture_stacks and self._sampler is None:
            self._sampler_stop.clear()
            self._sampler = threading.Thread(target=self._sample, name="stall-sampler", daemon=True)
            self._sampler.start()

    def stop(self) -> None:
        self._timer.stop()
        if self._sampler is not None:
            self._sampler_stop.set()
            self._sampler.join(1.0)
            self._sampler = None

    def _sample(self) -> None:
        while not self._sampler_stop.wait(0.02):
            late = (time.perf_counter() - self._last) * 1000.0 - self.interval_ms
            if late > self.threshold_ms * 0.8 and not self._pending_stack:
                frame = sys._current_frames().get(self._gui_ident)
                if frame is not None:
                    self._pending_stack = "".join(traceback.format_stack(frame)[-8:])

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def _tick(self) -> None:
        now = time.perf_counter()
        late_ms = (now - self._last) * 1000.0 - self.interval_ms
        self._last = now
        self.ticks += 1
        if late_ms > self.max_stall_ms:
            self.max_stall_ms = late_ms
        stack, self._pending_stack = self._pending_stack, ""
        if late_ms > self.threshold_ms:
            self.stalls.append(Stall(now, late_ms, stack))
            if self.log_stalls:
                log.warning("GUI thread blocked for %.0f ms%s", late_ms, f" in:\n{stack}" if stack else "")
            self.stalled.emit(late_ms)
