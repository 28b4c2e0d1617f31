"""Run one core function in a child process, from a GUI worker, with progress and cancel.

Why: core jobs that draw or analyse pages in Python (preparing scan
snippets, building training data) hold the GIL for long stretches; in a
thread of the app they would freeze the window. Qt-free: the child imports
only the core.

Two ways to cancel. By default cancelling ends the child (for jobs that write
their output atomically or into a folder the next run overwrites). With
``cooperative=True`` the function is called as ``fn(*args, progress=...,
cancel=...)``: it reports ``progress(fraction_or_None, text)`` and stops by
itself when the ``cancel`` event is set (a job that runs its own process pool
must end it cleanly; ending its parent would orphan the pool). Only when it
does not stop within ``grace_s`` is it ended.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from typing import Any, Callable

from companion.errors import CompanionError

COOPERATIVE_GRACE_S = 30.0
"""A cooperative job gets this long after Cancel to stop by itself before it is ended."""


class _Reporter:
    """The ``progress`` callable a cooperative job gets in the child: it posts to the parent."""

    def __init__(self, messages: Any) -> None:
        self.messages = messages

    def __call__(self, fraction: float | None, text: str = "", payload: Any = None) -> None:
        self.messages.put(("progress", fraction, text, payload))


BACKGROUND_NICENESS = 5
"""Child jobs run at this lower CPU priority: on a busy machine the window is served first."""


def _child(fn: Callable[..., Any], args: tuple, messages: Any, cancel: Any = None) -> None:
    if hasattr(os, "nice"):
        try:
            os.nice(BACKGROUND_NICENESS)
        except OSError:
            pass
    try:
        if cancel is not None:
            result = fn(*args, progress=_Reporter(messages), cancel=cancel)
        else:
            result = fn(*args)
        messages.put(("ok", result))
    except CompanionError as exc:
        messages.put(("error", str(exc), True))
    except BaseException as exc:  # report; the parent turns it into a message
        messages.put(("error", f"{type(exc).__name__}: {exc}", False))


def run_in_process(ctx: Any, fn: Callable[..., Any], *args: Any, poll_s: float = 0.1,
                   cooperative: bool = False, grace_s: float = COOPERATIVE_GRACE_S) -> Any:
    """``fn(*args)`` in a spawned child; ``ctx`` is a worker TaskContext (its cancel stops the child)."""
    from companion.gui.workers import Cancelled

    mp = multiprocessing.get_context("spawn")
    messages = mp.Queue()
    cancel = mp.Event() if cooperative else None
    # a cooperative job may run its own process pool, which a daemonic process may not have; it is
    # still ended with the app: closing the window cancels every task, and the finally below ends it
    child = mp.Process(target=_child, args=(fn, args, messages, cancel), daemon=not cooperative,
                       name="companion-job")
    child.start()
    started = time.monotonic()
    cancel_at: float | None = None
    try:
        while True:
            if ctx.cancelled:
                if cancel is None:
                    child.terminate()
                    raise Cancelled()
                if cancel_at is None:
                    cancel.set()
                    cancel_at = time.monotonic()
                elif time.monotonic() - cancel_at > grace_s:
                    child.terminate()
                    raise Cancelled()
            try:
                msg = messages.get(timeout=poll_s)
            except queue.Empty:
                if not child.is_alive() and messages.empty():
                    raise CompanionError(f"the job stopped unexpectedly after {time.monotonic() - started:.0f} s "
                                         f"(exit code {child.exitcode})") from None
                if not cooperative:
                    ctx.progress(None, f"working… {time.monotonic() - started:.0f} s")
                continue
            if msg[0] == "progress":
                if cancel_at is None:
                    ctx.progress(msg[1], msg[2], msg[3])
                continue
            if msg[0] == "ok":
                return msg[1]
            if msg[2]:
                raise CompanionError(msg[1])
            raise RuntimeError(msg[1])
    finally:
        child.join(2.0)
        if child.is_alive():
            child.terminate()
        messages.close()
