from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from live_helpers import FakeSoundDevice, chord_sequence, write_wav

import companion.engine
from companion.cli import main
from companion.commands import listen


def _chords_file(tmp_path: Path) -> Path:
    sr = 44100
    x = np.concatenate([np.zeros(sr, np.float32), chord_sequence(sr, repeats=1)])
    return write_wav(tmp_path / "take.wav", x, sr)


def test_listen_to_a_file_without_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delattr(companion.engine, listen.ENGINE_HOOK, raising=False)
    assert main(["listen", "--input-file", str(_chords_file(tmp_path)), "--speed", "0"]) == 0
    out = capsys.readouterr().out
    assert "identification is not available" in out
    assert "[running]" in out and "Finished" in out
    assert "silence" in out and "sound" in out and "level" in out
    assert "60 frames, dropped buffers: 0" in out
    assert "piece" not in out  # never an identification it did not make


@dataclass
class _Result:
    piece: str
    system: int


class _PluggedEngine:
    """Stands in for the engine's live consumer: reports the system from the frame count."""

    def __init__(self) -> None:
        self.frames = 0

    def on_frames(self, frames: np.ndarray, t: float) -> _Result:
        self.frames += len(frames)
        return _Result("Test piece", 1 + self.frames // 20)


def test_listen_prints_piece_and_system_changes_from_the_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    calls: list[Path] = []

    def factory(cfg, library_dir: Path) -> _PluggedEngine:  # noqa: ANN001
        calls.append(library_dir)
        return _PluggedEngine()

    monkeypatch.setattr(companion.engine, listen.ENGINE_HOOK, factory, raising=False)
    lib = tmp_path / "lib"
    lib.mkdir()
    assert main(["listen", "--input-file", str(_chords_file(tmp_path)), "--speed", "0", "--library", str(lib)]) == 0
    out = capsys.readouterr().out
    assert calls == [lib]
    assert "not available" not in out
    lines = [ln for ln in out.splitlines() if "piece: Test piece" in ln]
    # printed on change only, and only while sound is heard (the first second is silent)
    assert [ln.split("|")[1].strip() for ln in lines] == ["system 2", "system 3", "system 4"]


def test_listen_errors_are_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["listen", "--input-file", str(tmp_path / "missing.wav")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["listen", "--library", str(tmp_path / "nolib"), "--input-file", str(_chords_file(tmp_path))]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_list_devices_and_remember_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    fake = FakeSoundDevice()
    monkeypatch.setattr(listen, "get_backend", lambda: fake)
    assert main(["listen", "--list-devices"]) == 0
    out = capsys.readouterr().out
    assert "* [0] Fake USB Mic (ALSA, 1 ch, 48000 Hz)  rates: 48k, 44.1k, 96k" in out and "[1] Fake Line In" in out
    fake.supported_rates = {44100.0}
    assert main(["listen", "--list-devices"]) == 0
    assert "Fake USB Mic (ALSA, 1 ch, 48000 Hz)  rates: 44.1k\n" in capsys.readouterr().out

    settings = tmp_path / "settings.json"
    assert main(["--settings", str(settings), "listen", "--device", "line", "--duration", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "[running]" in out and "'Fake Line In' remembered" in out
    assert json.loads(settings.read_text())["audio"]["audio_device"] == "Fake Line In"


def test_no_devices_keeps_retrying_with_a_clear_message(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    fake = FakeSoundDevice(devices=[], default_input=-1)
    monkeypatch.setattr(listen, "get_backend", lambda: fake)
    assert main(["listen", "--list-devices"]) == 0
    assert "no input devices found" in capsys.readouterr().out
    assert main(["listen", "--duration", "1.5"]) == 0
    out = capsys.readouterr().out
    assert out.count("[no_device] No microphone found") >= 2 and "Retrying in" in out
