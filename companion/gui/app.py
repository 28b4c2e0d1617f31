"""Application start-up: the QApplication, the main window, and the headless run."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from companion import __version__
from companion.config import Config

log = logging.getLogger(__name__)


def _ensure_platform(headless: bool) -> None:
    """Pick the offscreen Qt platform when there is no screen (or when asked)."""
    if headless:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def create_application(headless: bool = False):  # -> QApplication
    _ensure_platform(headless)
    from PySide6.QtWidgets import QApplication

    from companion.gui.qt_workarounds import protect_bools

    protect_bools()  # signals of PySide6 6.12 leak references to True: see qt_workarounds
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("companion")
    app.setOrganizationName("companion")
    app.setApplicationVersion(__version__)
    return app


def run_app(cfg: Config, input_file: Path | None = None, listen: bool = False,
            quit_when_shown: bool = False) -> int:
    """Open the desktop app and run its event loop until the window closes.

    ``input_file``: the Listen tab plays this audio file as the microphone;
    ``listen``: start listening at once (and show the Listen tab);
    ``quit_when_shown``: print the start-up time as JSON once the window is
    visible and quit (measures a desktop build's start-up).
    """
    app = create_application()
    from PySide6.QtCore import QTimer

    from companion.gui.main_window import MainWindow

    window = MainWindow(cfg, input_file=input_file)
    window.show()
    if quit_when_shown:
        return _report_shown(app, window)
    if listen:
        window.show_view(2)
        QTimer.singleShot(0, window.listen.start)
    return int(app.exec())


def process_age_seconds() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None where that is unknown.

    Why not a timer in Python: a frozen app spends much of its start-up
    unpacking and importing before any of our code runs.
    """
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def _report_shown(app, window) -> int:  # (QApplication, MainWindow) -> exit code
    """Let the window paint, print the start-up report, close it and quit."""
    for _ in range(5):
        app.processEvents()
    age = process_age_seconds()
    result = {
        "window_visible": window.isVisible(),
        "platform": app.platformName(),
        "seconds_since_process_start": None if age is None else round(age, 2),
        "frozen": bool(getattr(sys, "frozen", False)),
    }
    print(json.dumps(result))
    window.close()
    app.processEvents()
    return 0 if result["window_visible"] else 1


def run_headless_smoke(cfg: Config) -> int:
    """Start the app offscreen, show its window, report what it shows, and quit.

    This is the main job of the quick start on a machine with no display: it
    proves that the whole GUI stack starts and prints a machine-readable result.
    """
    started = time.perf_counter()
    app = create_application(headless=True)
    from companion.gui.main_window import MainWindow

    window = MainWindow(cfg)
    window.show()
    for _ in range(5):
        app.processEvents()
    result = {
        "app": "companion",
        "version": __version__,
        "platform": app.platformName(),
        "window_title": window.windowTitle(),
        "window_visible": window.isVisible(),
        "window_size": [window.width(), window.height()],
        "status": window.status_summary(),
        "startup_seconds": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(result, indent=2))
    window.close()
    app.processEvents()
    return 0 if result["window_visible"] else 1
