"""The stall watchdog sees a blocked GUI thread, and long work in a worker does not block it."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("PySide6")


def test_watchdog_detects_a_blocked_gui_thread(qtbot) -> None:
    from PySide6.QtCore import QTimer

    from companion.gui.watchdog import StallWatchdog

    dog = StallWatchdog(threshold_ms=50, log_stalls=False)
    dog.start()
    qtbot.wait(100)
    QTimer.singleShot(0, lambda: time.sleep(0.3))  # a deliberate 300-ms block on the GUI thread
    qtbot.waitUntil(lambda: bool(dog.stalls), timeout=3000)
    dog.stop()
    assert dog.max_stall_ms >= 250
    assert dog.ticks > 3


def test_work_in_a_task_does_not_stall_the_gui_thread(qtbot) -> None:
    """Half a second of work in a worker: the watchdog must not see a block of that size."""
    from companion.gui.watchdog import StallWatchdog
    from companion.gui.workers import TaskRunner

    def busy(ctx):
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            sum(range(2000))  # pure Python: holds the GIL in slices, like real core work
        return True

    dog = StallWatchdog(threshold_ms=50, log_stalls=False)
    runner = TaskRunner()
    dog.start()
    task = runner.start("busy", busy)
    qtbot.waitUntil(lambda: task.state == "finished", timeout=5000)
    qtbot.wait(50)
    dog.stop()
    # a blocking call would show up as ~500 ms; GIL switching alone stays far below
    assert dog.max_stall_ms < 250, dog.stalls
    assert dog.ticks > 10
