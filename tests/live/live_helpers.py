"""Test signals and a fake sounddevice for the live-listening tests."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf

# C major, F major, G major, A minor, with a short gap: piano-like decaying partials.
CHORDS = ((60, 64, 67), (65, 69, 72), (67, 71, 74), (57, 60, 64))


def chord_sequence(sr: int, seconds_per_chord: float = 0.5, repeats: int = 1, seed: int = 0) -> np.ndarray:
    """Decaying harmonic chords at ``sr`` Hz, peak about 0.5 (never clips)."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds_per_chord)
    t = np.arange(n) / sr
    env = np.exp(-3.0 * t) * np.minimum(1.0, t / 0.005)
    parts = []
    for _ in range(repeats):
        for chord in CHORDS:
            x = np.zeros(n)
            for midi in chord:
                f0 = 440.0 * 2 ** ((midi - 69) / 12)
                for h in range(1, 6):
                    if f0 * h < sr / 2:
                        x += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h
            parts.append(x * env)
    sig = np.concatenate(parts)
    return (0.5 * sig / np.abs(sig).max()).astype(np.float32)


def write_wav(path: Path, signal: np.ndarray, sr: int) -> Path:
    sf.write(str(path), signal, sr, subtype="FLOAT")
    return path


class _LookAlikePortAudioError(Exception):
    """Same shape as ``sounddevice.PortAudioError``: (text, PaErrorCode[, (hostapi, code, text)])."""

    def __str__(self) -> str:
        msg = self.args[0] if self.args else ""
        if len(self.args) > 1:
            msg = f"{msg} [PaErrorCode {self.args[1]}]"
        if len(self.args) > 2:
            api, code, text = self.args[2]
            msg = f"{msg}: '{text}' [ALSA error {code}]"
        return msg


try:  # the real class where PortAudio is installed, so the tests see the real thing
    from sounddevice import PortAudioError
except OSError:  # no libportaudio on this machine
    PortAudioError = _LookAlikePortAudioError  # type: ignore[misc,assignment]


class Flags:
    def __init__(self, overflow: bool = False) -> None:
        self.input_overflow = overflow

    def __bool__(self) -> bool:
        return self.input_overflow


class FakeStream:
    """A callback stream that plays ``signal`` (or a sine) in blocks, faster than real time.

    ``behaviour``: "ok"; "stop_after" (ends itself after ``after`` blocks, like
    PortAudio after an unplug); "stall_after" (callbacks just stop);
    "overflow_every" (flags an input overflow every ``after`` blocks).
    """

    def __init__(self, backend: "FakeSoundDevice", samplerate: float, channels: int, blocksize: int,
                 callback: Callable, finished_callback: Callable | None) -> None:
        self.backend = backend
        self.samplerate = samplerate
        self.channels = channels
        self.blocksize = blocksize or 512
        self.callback = callback
        self.finished_callback = finished_callback
        self.active = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.blocks_sent = 0

    def start(self) -> None:
        if self.backend.start_error is not None:
            raise self.backend.start_error
        self.active = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        b = self.backend
        n = self.blocksize
        k = 0
        if b.start_delay and self._stop.wait(b.start_delay):
            return
        try:
            while not self._stop.is_set():
                if (b.behaviour == "stop_after" and k >= b.after) or (b.stop_at and k >= b.stop_at):
                    break
                if b.behaviour == "stall_after" and k >= b.after:
                    self._stop.wait()
                    return
                start = k * n
                if b.signal is not None:
                    if start >= len(b.signal):
                        if b.end_stops:
                            break
                        block = np.zeros(n, dtype=np.float32)
                    else:
                        block = b.signal[start : start + n]
                        if len(block) < n:
                            block = np.pad(block, (0, n - len(block)))
                else:
                    t = (start + np.arange(n)) / self.samplerate
                    block = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                indata = np.repeat(block[:, None], self.channels, axis=1).astype(np.float32)
                overflow = b.behaviour == "overflow_every" and k > 0 and k % b.after == 0
                self.callback(indata, n, None, Flags(overflow))
                k += 1
                self.blocks_sent = k
                if b.block_delay:
                    time.sleep(b.block_delay)
        finally:
            if not (b.behaviour == "stall_after" and k >= b.after):
                self.active = False
                if self.finished_callback:
                    self.finished_callback()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.active = False

    abort = stop

    def close(self) -> None:
        self.stop()


class FakeSoundDevice:
    """The parts of the ``sounddevice`` module the capture session uses, scriptable."""

    PortAudioError = PortAudioError

    def __init__(self, devices: list[dict[str, Any]] | None = None, default_input: int = 0) -> None:
        self.devices = devices if devices is not None else [
            {"name": "Fake USB Mic", "index": 0, "hostapi": 0, "max_input_channels": 1,
             "max_output_channels": 0, "default_samplerate": 48000.0},
            {"name": "Fake Line In", "index": 1, "hostapi": 0, "max_input_channels": 2,
             "max_output_channels": 0, "default_samplerate": 44100.0},
        ]
        self.default = type("Default", (), {})()
        self.default.device = [default_input, -1]
        self.supported_rates: set[float] | None = None  # None: all
        self.open_errors: list[BaseException] = []  # raised by successive InputStream() calls
        self.check_error: BaseException | None = None
        self.start_error: BaseException | None = None
        self.behaviour = "ok"
        self.after = 0
        self.signal: np.ndarray | None = None
        self.end_stops = False
        self.stop_at = 0  # if > 0: the stream ends by itself after this many blocks
        self.start_delay = 0.0  # seconds before the first callback (slow devices)
        self.block_delay = 0.001
        self.streams: list[FakeStream] = []
        self.rescans = 0
        self.on_rescan: Callable[["FakeSoundDevice"], None] | None = None

    def rescan(self) -> None:
        self.rescans += 1
        if self.on_rescan is not None:
            self.on_rescan(self)

    def query_hostapis(self) -> list[dict[str, Any]]:
        return [{"name": "ALSA", "devices": list(range(len(self.devices)))}]

    def query_devices(self, device: Any = None, kind: str | None = None) -> Any:
        if kind == "input":
            idx = self.default.device[0]
            if idx < 0:
                raise PortAudioError("Error querying device -1")
            return self.devices[idx]
        return list(self.devices)

    def check_input_settings(self, device: Any = None, channels: int | None = None,
                             dtype: Any = None, samplerate: float | None = None, **_: Any) -> None:
        if self.check_error is not None:
            raise self.check_error
        if self.supported_rates is not None and samplerate not in self.supported_rates:
            raise PortAudioError("Invalid sample rate", -9997)

    def InputStream(self, *, samplerate: float, channels: int = 1, blocksize: int = 0,  # noqa: N802
                    callback: Callable, finished_callback: Callable | None = None, **_: Any) -> FakeStream:
        if self.open_errors:
            raise self.open_errors.pop(0)
        s = FakeStream(self, samplerate, channels, blocksize, callback, finished_callback)
        self.streams.append(s)
        return s
