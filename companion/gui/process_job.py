"""Run one core function in a child process, from a GUI worker, with cancel.

Why: core jobs that draw or analyse pages in Python (preparing scan
snippets, for instance) hold the GIL for long stretches; in a thread of the
app they would freeze the window. Qt-free: the child imports only the core.
Cancelling ends the child (the jobs run here write their output atomically
or into a folder the next run overwrites).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Any, Callable

from companion.errors import CompanionError


def _child(fn: Callable[..., Any], args: tuple, messages: Any) -> None:
    try:
        messages.put(("ok", fn(*args)))
    except CompanionError as exc:
        messages.put(("error", str(exc), True))
    except BaseException as exc:  # report; the parent turns it into a message
        messages.put(("error", f"{type(exc).__name__}: {exc}", False))


def run_in_process(ctx: Any, fn: Callable[..., Any], *args: Any, poll_s: float = 0.1) -> Any:
    """``fn(*args)`` in a spawned child; ``ctx`` is a worker TaskContext (its cancel ends the child)."""
    from companion.gui.workers import Cancelled

    mp = multiprocessing.get_context("spawn")
    messages = mp.Queue()
    child = mp.Process(target=_child, args=(fn, args, messages), daemon=True, name="companion-job")
    child.start()
    started = time.monotonic()
    try:
        while True:
            if ctx.cancelled:
                child.terminate()
                raise Cancelled()
            try:
                msg = messages.get(timeout=poll_s)
            except queue.Empty:
                if not child.is_alive() and messages.empty():
                    raise CompanionError(f"the job stopped unexpectedly after {time.monotonic() - started:.0f} s "
                                         f"(exit code {child.exitcode})") from None
                ctx.progress(None, f"working… {time.monotonic() - started:.0f} s")
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
