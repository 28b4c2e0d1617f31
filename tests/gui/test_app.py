"""The app starts offscreen, shows its window and reports what it shows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("PySide6")


def test_headless_demo_shows_window(_isolated_home) -> None:
    import os

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("DISPLAY", None)
    out = subprocess.run(
        [sys.executable, "-m", "companion", "demo", "--headless"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout[out.stdout.index("{"):])
    assert result["window_visible"] is True
    assert result["platform"] == "offscreen"


def test_main_window_remembers_geometry(qtbot, _isolated_home) -> None:
    from companion.config import load_config
    from companion.gui.main_window import MainWindow

    cfg = load_config()
    window = MainWindow(cfg)
    qtbot.addWidget(window)
    window.show()
    window.resize(760, 540)
    window.close()
    again = MainWindow(cfg)
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (760, 540)


def test_quit_when_shown_reports_startup_time(_isolated_home) -> None:
    import os

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run(
        [sys.executable, "-m", "companion", "gui", "--quit-when-shown"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["window_visible"] is True and result["frozen"] is False
    if sys.platform.startswith("linux"):
        assert result["seconds_since_process_start"] > 0


def test_process_age_grows() -> None:
    import time

    from companion.gui.app import process_age_seconds

    first = process_age_seconds()
    if first is None:
        pytest.skip("no /proc on this platform")
    time.sleep(0.05)
    assert process_age_seconds() >= first > 0
