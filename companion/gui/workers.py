"""Long work off the GUI thread: tasks with progress, cancel and errors as signals.

Why one layer: every long job (indexing, rendering, lookup, training) must
run in a worker so the window never freezes, report progress the same way,
be cancellable, and turn a :class:`~companion.errors.CompanionError` into a
message the user can act on (anything else is a bug: logged with its
traceback and shown as "unexpected error").

A task function receives a :class:`TaskContext` as its first argument; it
calls ``ctx.progress(fraction, text, payload)`` and checks ``ctx.cancelled``
(or ``ctx.check()``, which raises :class:`Cancelled`). Signals arrive on the
GUI thread (Qt queues them across threads).
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from companion.errors import CompanionError
from companion.gui.qt_workarounds import protect_bools

protect_bools()  # before any task reports progress: see qt_workarounds

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a task when the user cancelled it."""


class TaskContext:
    """What a task sees: progress reporting and the cancel flag (thread-safe)."""

    def __init__(self, task: "Task") -> None:
        self._task = task
        self.cancel_event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def progress(self, fraction: float | None = None, text: str = "", payload: Any = None) -> None:
        """Report progress; ``fraction`` None means "busy, amount unknown"."""
        value = -1.0 if fraction is None else max(0.0, min(1.0, float(fraction)))
        self._task.signals.progress.emit(value, text, payload)


class TaskSignals(QObject):
    progress = Signal(float, str, object)
    """fraction (-1: unknown), text, payload (task-specific, e.g. a ProgressEvent)."""
    finished = Signal(object)
    """The task's return value."""
    failed = Signal(str, bool)
    """message, user_error (True: a CompanionError the user can act on)."""
    cancelled = Signal()
    done = Signal()
    """Always emitted last, whatever the outcome."""


class Task(QRunnable):
    """One job for the pool: ``fn(ctx, *args, **kwargs)``."""

    def __init__(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the GUI keeps a reference while it shows the task
        self.name = name
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.signals = TaskSignals()
        self.ctx = TaskContext(self)
        self.state = "queued"
        self.error = ""
        self.result: Any = None

    def cancel(self) -> None:
        self.ctx.cancel_event.set()

    def run(self) -> None:  # runs on a pool thread
        self.state = "running"
        try:
            result = self.fn(self.ctx, *self.args, **self.kwargs)
        except Cancelled:
            self.state = "cancelled"
            self.signals.cancelled.emit()
        except CompanionError as exc:
            self.state, self.error = "failed", str(exc)
            log.info("task %s failed: %s", self.name, exc)
            self.signals.failed.emit(str(exc), True)
        except Exception as exc:  # a bug: keep the app alive, log the traceback
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            log.error("task %s crashed:\n%s", self.name, traceback.format_exc())
            self.signals.failed.emit(self.error, False)
        else:
            if self.ctx.cancelled:
                self.state = "cancelled"
                self.signals.cancelled.emit()
            else:
                self.state, self.result = "finished", result
                self.signals.finished.emit(result)
        finally:
            self.signals.done.emit()


class TaskRunner(QObject):
    """Starts tasks on a thread pool and keeps them alive until they end."""

    task_started = Signal(object)
    task_ended = Signal(object)

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self.active: list[Task] = []

    def start(
        self,
        name: str,
        fn: Callable[..., Any],
        *args: Any,
        on_progress: Callable[[float, str, Any], None] | None = None,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[str, bool], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_done: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Start ``fn(ctx, *args, **kwargs)``; the callbacks are connected before it starts
        (connecting after ``start`` could miss the signals of a task that ends at once)."""
        task = Task(name, fn, *args, **kwargs)
        if on_progress:
            task.signals.progress.connect(on_progress)
        if on_finished:
            task.signals.finished.connect(on_finished)
        if on_failed:
            task.signals.failed.connect(on_failed)
        if on_cancelled:
            task.signals.cancelled.connect(on_cancelled)
        if on_done:
            task.signals.done.connect(on_done)
        task.signals.done.connect(lambda t=task: self._ended(t))
        self.active.append(task)
        self.task_started.emit(task)
        self.pool.start(task)
        return task

    def _ended(self, task: Task) -> None:
        if task in self.active:
            self.active.remove(task)
        self.task_ended.emit(task)

    def cancel_all(self) -> None:
        for task in list(self.active):
            task.cancel()

    def wait(self, timeout_ms: int = 10000) -> bool:
        """Wait for running tasks (at shutdown); True when all ended."""
        return bool(self.pool.waitForDone(timeout_ms))
