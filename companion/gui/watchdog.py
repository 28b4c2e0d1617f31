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
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stall:
    at: float
    """perf_counter() at the late wake-up."""
    ms: float
    """How long the GUI thread was unavailable beyond the timer interval."""


class StallWatchdog(QObject):
    stalled = Signal(float)
    """A stall longer than the threshold happened (its length in ms)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 10, threshold_ms: float = 50.0,
                 log_stalls: bool = True) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.threshold_ms = threshold_ms
        self.log_stalls = log_stalls
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
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

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
        if late_ms > self.threshold_ms:
            self.stalls.append(Stall(now, late_ms))
            if self.log_stalls:
                log.warning("GUI thread blocked for %.0f ms", late_ms)
            self.stalled.emit(late_ms)
