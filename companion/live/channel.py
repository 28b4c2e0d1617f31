"""The thread-safe channel through which the capture worker talks to the app.

Why: the worker thread must never wait for the GUI and the GUI must never
wait for the worker. The worker *publishes* events; a consumer either
*polls* (a GUI timer, the ``listen`` command) or *subscribes* a callback
(called on the worker thread: a Qt adapter re-emits it as a signal, which
Qt queues to the GUI thread). Qt-free on purpose.

Memory stays bounded over hours: the poll queue keeps the newest
``maxlen`` events (older ones are dropped and counted), and the latest
status/level/result are always available as snapshots.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import numpy as np

from companion.live.meter import LevelReading
from companion.live.states import CaptureState, USER_MESSAGES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusEvent:
    """The capture state changed (or its details did)."""

    state: CaptureState
    message: str
    """What to tell the user."""
    detail: str = ""
    """The audio system's own words, for a details line and the log."""
    device: str = ""
    sample_rate: float = 0.0
    retry_in: float | None = None
    """Seconds until the next automatic retry (retrying states only)."""


@dataclass(frozen=True)
class LevelEvent:
    """A level-meter window plus the running counters."""

    level: LevelReading
    dropped_blocks: int
    """Buffers lost so far (PortAudio overflows + ring-buffer overruns)."""
    dropped_samples: int


@dataclass(frozen=True)
class FramesEvent:
    """New spectrogram frames (only published when the session is asked to)."""

    t: float
    """Stream time (s) of the first frame's centre."""
    frames: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class ResultEvent:
    """What the frame consumer (the identification engine) concluded."""

    t: float
    """Stream time (s) of the newest frame the result is based on."""
    result: Any
    latency_s: float | None
    """From the capture of that frame's last sample to publication (s)."""


Event = Union[StatusEvent, LevelEvent, FramesEvent, ResultEvent]
Subscriber = Callable[[Event], None]


class Channel:
    """Publish from one thread; poll or subscribe from others."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._queue: deque[Event] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self.dropped_events = 0
        self.status = StatusEvent(CaptureState.IDLE, USER_MESSAGES[CaptureState.IDLE])
        self.level: LevelEvent | None = None
        self.result: ResultEvent | None = None

    def publish(self, event: Event) -> None:
        with self._lock:
            if len(self._queue) == self._queue.maxlen:
                self.dropped_events += 1
            self._queue.append(event)
            if isinstance(event, StatusEvent):
                self.status = event
            elif isinstance(event, LevelEvent):
                self.level = event
            elif isinstance(event, ResultEvent):
                self.result = event
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken listener must not stop the audio worker
                log.exception("live channel subscriber %r failed", callback)

    def poll(self, max_events: int | None = None) -> list[Event]:
        """Take the queued events, oldest first (all, or at most ``max_events``)."""
        with self._lock:
            n = len(self._queue) if max_events is None else min(max_events, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` on the publishing thread; returns an unsubscribe function.

        The callback runs on the audio worker: it must return quickly (hand the
        event over, e.g. emit a Qt signal), or the worker falls behind.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe
