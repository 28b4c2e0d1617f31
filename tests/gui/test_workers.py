"""The worker layer: results, progress, user errors, bugs and cancel arrive as signals."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("PySide6")

from companion.errors import CompanionError  # noqa: E402


@pytest.fixture
def runner(qtbot):
    from companion.gui.workers import TaskRunner

    r = TaskRunner()
    yield r
    r.cancel_all()
    r.wait(5000)


def test_result_and_progress_arrive_on_the_gui_thread(qtbot, runner) -> None:
    seen: list[tuple[float, str, object, bool]] = []
    main = threading.get_ident()

    def job(ctx, n):
        for i in range(n):
            ctx.progress((i + 1) / n, f"step {i + 1}", i)
        return n * 2

    results = []
    task = runner.start("job", job, 3,
                        on_progress=lambda f, t, p: seen.append((f, t, p, threading.get_ident() == main)),
                        on_finished=results.append)
    qtbot.waitUntil(lambda: results == [6] and not runner.active, timeout=5000)
    assert [s[0] for s in seen] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert all(s[3] for s in seen), "progress must be delivered on the GUI thread"
    assert task.state == "finished"
    assert runner.active == []


def test_user_error_and_crash_are_reported_not_raised(qtbot, runner) -> None:
    failures = []

    def bad(ctx):
        raise CompanionError("the file is damaged")

    def crash(ctx):
        raise ZeroDivisionError("boom")

    t1 = runner.start("bad", bad, on_failed=lambda m, u: failures.append((m, u)))
    t2 = runner.start("crash", crash, on_failed=lambda m, u: failures.append((m, u)))
    qtbot.waitUntil(lambda: len(failures) == 2, timeout=5000)
    assert t1.state == t2.state == "failed"
    assert ("the file is damaged", True) in failures
    assert any(u is False and "ZeroDivisionError" in m for m, u in failures)


def test_cancel_stops_a_running_task(qtbot, runner) -> None:
    started = threading.Event()
    cancelled = []

    def slow(ctx):
        started.set()
        for _ in range(500):
            ctx.check()
            time.sleep(0.01)
        return "finished anyway"

    finished = []
    task = runner.start("slow", slow, on_cancelled=lambda: cancelled.append(True), on_finished=finished.append)
    assert started.wait(5)
    task.cancel()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=5000)
    assert finished == [] and task.state == "cancelled"


def _square(x: int) -> int:
    return x * x


def _refuse(x: int) -> int:
    raise CompanionError(f"cannot use {x}")


def _sleep_long(x: float) -> None:
    time.sleep(x)


def test_jobs_in_a_child_process_return_fail_and_cancel(qtbot, runner) -> None:
    from companion.gui.process_job import run_in_process

    results, failures, cancelled = [], [], []
    runner.start("square", lambda ctx: run_in_process(ctx, _square, 7), on_finished=results.append)
    runner.start("refuse", lambda ctx: run_in_process(ctx, _refuse, 3), on_failed=lambda m, u: failures.append((m, u)))
    slow = runner.start("slow", lambda ctx: run_in_process(ctx, _sleep_long, 60.0),
                        on_cancelled=lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: results == [49] and len(failures) == 1, timeout=60000)
    assert failures == [("cannot use 3", True)]
    slow.cancel()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=10000)


def _until_cancelled(marker: str, progress, cancel) -> str:
    """A cooperative job: reports progress until told to stop, then tidies up and returns."""
    from pathlib import Path

    step = 0
    while not cancel.is_set():
        step += 1
        progress(min(0.99, step / 1000), f"step {step}")
        time.sleep(0.02)
    Path(marker).write_text("stopped by itself")
    return "stopped"


def test_cooperative_job_reports_progress_and_stops_itself(qtbot, runner, tmp_path) -> None:
    from companion.gui.process_job import run_in_process

    marker = tmp_path / "marker"
    seen, cancelled = [], []
    task = runner.start("coop", lambda ctx: run_in_process(ctx, _until_cancelled, str(marker), cooperative=True),
                        on_progress=lambda f, text, p: seen.append((f, text)),
                        on_cancelled=lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=60000)
    assert seen[0][1].startswith("step ") and 0 < seen[0][0] < 1
    task.cancel()
    qtbot.waitUntil(lambda: cancelled == [True], timeout=20000)
    assert marker.read_text() == "stopped by itself", "the job was asked to stop, not killed"


def test_modules_loaded_by_helper_processes_do_not_load_qt() -> None:
    """The render, indexing and job processes import these: Qt must not come along (fast start, no
    Qt state in a child)."""
    import subprocess
    import sys

    code = ("import sys, companion.gui.library_service, companion.gui.render_service, "
            "companion.gui.process_job, companion.gui.training_jobs; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'shiboken6')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_training_jobs_module_does_not_load_torch() -> None:
    """The GUI process imports it to start jobs: loading torch there would freeze the window."""
    import subprocess
    import sys

    code = "import sys, companion.gui.training_jobs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_many_signals_do_not_use_up_the_references_to_true() -> None:
    """PySide6 6.12's ``emit()`` returns True without a reference of its own: unchecked, each emit takes one
    reference away from True and CPython aborts ("bool_dealloc") once they run out, mid-session or at exit.
    A fresh process that loads the GUI's workers emits far more signals than True has references, ends
    normally, and True is still referenced."""
    import subprocess
    import sys

    code = """
import sys
from companion.gui.workers import TaskSignals
from PySide6.QtCore import QObject, Signal

class Ping(QObject):
    ping = Signal()

ping, signals = Ping(), TaskSignals()
n = 20 * sys.getrefcount(True) if sys.getrefcount(True) < 10**6 else 100_000
for _ in range(n):
    ping.ping.emit()
    signals.progress.emit(0.5, "x", None)
    ping.ping.connect(print)
    ping.ping.disconnect(print)
print(n, sys.getrefcount(True) > 100)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    n, alive = out.stdout.split()
    assert int(n) >= 10_000 and alive == "True"


def test_training_reports_cross_the_process_boundary_without_torch() -> None:
    """The trainer's progress and result are copied into plain, torch-free objects in the training process:
    unpickling the trainer's own classes in the app would import torch there."""
    import pickle
    import subprocess
    import sys
    from dataclasses import dataclass, field
    from pathlib import Path

    import numpy as np

    from companion.gui.training_jobs import TrainingReport, TrainingSummary

    @dataclass
    class Progress:  # the trainer's fields, numpy values as validation produces them
        phase: str = "epoch"
        epoch: int = 1
        epochs: int = 3
        step: int = 5
        steps: int = 5
        loss: float = 0.25
        lr: float = 1e-3
        pairs_per_s: float = 40.0
        metrics: dict = field(default_factory=lambda: {"score": np.float32(0.5), "audio_to_sheet": {
            "MRR": np.float64(0.5), "ranks": np.arange(3)}})
        best_score: float = 0.5
        message: str = ""

    report = TrainingReport.of(Progress())
    assert report.epoch == 1 and report.metrics["audio_to_sheet"]["ranks"] == [0, 1, 2]
    assert type(report.metrics["score"]) is float

    @dataclass
    class Result:
        status: str = "done"
        epochs_done: int = 3
        best_score: float = 0.5
        best_path: str = "/runs/snippet/best.pt"
        history: list = field(default_factory=lambda: [{"epoch": 0, "score": np.float32(0.25)}])
        pairs_per_s: float = 40.0
        wall_s: float = 12.0

    summary = TrainingSummary.of(Result())
    assert summary.best_path == Path("/runs/snippet/best.pt") and summary.history[0]["score"] == 0.25
    blobs = pickle.dumps((report, summary)).hex()
    code = (f"import pickle, sys; r, s = pickle.loads(bytes.fromhex('{blobs}')); "
            "print(r.metrics['audio_to_sheet']['MRR'], s.status, 'torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0.5", "done", "False", "False"]
