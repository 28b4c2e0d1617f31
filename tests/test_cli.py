from __future__ import annotations

import json
import subprocess
import sys

import pytest

from companion import __version__
from companion.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("demo", "info", "bench"):
        assert command in out


def test_info_json(capsys: pytest.CaptureFixture[str], _isolated_home) -> None:
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == __version__
    assert data["config"]["paths"]["library_dir"].startswith(str(_isolated_home))


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "companion", "--version"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_log_file_is_written(_isolated_home) -> None:
    assert main(["--verbose", "info"]) == 0
    assert (_isolated_home / "log" / "companion.log").exists()


def test_console_logging_survives_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import io
    import logging

    from companion.logging_setup import setup_logging

    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    setup_logging(verbose=False)
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("companion.test").warning("still here")
    assert "still here" in second.getvalue()
