"""An audio file that behaves like a microphone.

Why: demos, tests and benchmarks need the live path without hardware, and
they must exercise *the same code* as a microphone. :class:`FileBackend`
looks like the ``sounddevice`` module to the capture session (one input
device, a ``check_input_settings`` and an ``InputStream``), and its stream
calls the session's callback from its own thread with blocks of
``blocksize`` samples, paced like a sound card:

* ``speed=1.0``: real time (a 60-s file takes 60 s);
* ``speed=k``: k times faster;
* ``speed=0``: as fast as the worker can take it, with back-pressure (the
  stream waits while the ring buffer is full), so nothing is dropped -- a
  real sound card cannot wait, which is why this is for tests only.

The file is decoded in blocks (bounded memory) at its own sample rate, so
the session's resampler does the same work as for a 44.1/48 kHz device.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from companion.audio import audio_info, iter_audio_blocks
from companion.errors import AudioError


@dataclass(frozen=True)
class _Flags:
    """Mimics ``sounddevice.CallbackFlags`` (a file never overflows)."""

    input_overflow: bool = False

    def __bool__(self) -> bool:
        return self.input_overflow


class FileStream:
    """A ``sounddevice.InputStream`` look-alike fed from a file (see the module docstring)."""

    def __init__(
        self,
        backend: "FileBackend",
        samplerate: float,
        channels: int,
        blocksize: int,
        callback: Callable[[np.ndarray, int, Any, Any], None],
        finished_callback: Callable[[], None] | None = None,
        room: Callable[[], int] | None = None,
    ) -> None:
        self.backend = backend
        self.samplerate = float(samplerate)
        self.channels = int(channels)
        self.blocksize = int(blocksize) or 1024
        self._callback = callback
        self._finished_callback = finished_callback
        self._room = room
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.active = False
        self.closed = False
        self.error: BaseException | None = None

    def start(self) -> None:
        self.active = True
        self._thread = threading.Thread(target=self._run, name="companion-file-stream", daemon=True)
        self._thread.start()

    def _blocks(self) -> Iterator[np.ndarray]:
        rest = np.zeros(0, dtype=np.float32)
        for _ in range(self.backend.repeat):
            for chunk in iter_audio_blocks(self.backend.path, int(self.samplerate), block_seconds=5.0):
                data = np.concatenate([rest, chunk]) if len(rest) else chunk
                n_full = len(data) // self.blocksize * self.blocksize
                for i in range(0, n_full, self.blocksize):
                    yield data[i : i + self.blocksize]
                rest = data[n_full:]
        if len(rest):
            yield rest

    def _run(self) -> None:
        speed = self.backend.speed
        t0 = time.monotonic()
        sent = 0
        flags = _Flags()
        try:
            for block in self._blocks():
                if self._stop.is_set():
                    break
                if speed > 0:
                    due = t0 + sent / self.samplerate / speed
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                elif self._room is not None:
                    while self._room() < len(block) and not self._stop.is_set():
                        time.sleep(0.002)
                indata = block.reshape(-1, 1)
                self._callback(indata, len(block), None, flags)
                sent += len(block)
        except AudioError as exc:  # the file went bad while playing: like a lost device
            self.error = exc
        finally:
            self.active = False
            if self._finished_callback is not None:
                self._finished_callback()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self.active = False

    abort = stop

    def close(self) -> None:
        self.stop()
        self.closed = True


class FileBackend:
    """A one-device "audio system" whose only input is an audio file."""

    finite = True
    """The stream ends by itself (end of file): that is not a lost device."""
    accepts_backpressure = True

    def __init__(self, path: str | Path, speed: float = 1.0, repeat: int = 1) -> None:
        self.path = Path(path)
        info = audio_info(self.path)  # raises AudioError for missing/unreadable files
        if speed < 0:
            raise AudioError(f"playback speed must be >= 0, got {speed}")
        if repeat < 1:
            raise AudioError(f"repeat must be >= 1, got {repeat}")
        self.info = info
        self.speed = float(speed)
        self.repeat = int(repeat)
        self.PortAudioError = AudioError
        self.default = type("Default", (), {"device": (0, -1)})()

    @property
    def device_name(self) -> str:
        return f"file: {self.path.name}"

    def query_hostapis(self) -> list[dict[str, Any]]:
        return [{"name": "file", "devices": [0], "default_input_device": 0}]

    def query_devices(self, device: Any = None, kind: str | None = None) -> Any:
        dev = {
            "name": self.device_name,
            "index": 0,
            "hostapi": 0,
            "max_input_channels": 1,
            "max_output_channels": 0,
            "default_samplerate": float(self.info.sample_rate),
        }
        return dev if (device is not None or kind is not None) else [dev]

    def check_input_settings(
        self, device: Any = None, channels: int | None = None, dtype: Any = None,
        samplerate: float | None = None, **_: Any,
    ) -> None:
        if samplerate is not None and float(samplerate) != float(self.info.sample_rate):
            raise AudioError(f"Invalid sample rate: the file is at {self.info.sample_rate} Hz")
        if channels is not None and channels != 1:
            raise AudioError("Invalid number of channels: the file is read as mono")

    def InputStream(  # noqa: N802 - the sounddevice name
        self,
        *,
        samplerate: float,
        channels: int = 1,
        blocksize: int = 0,
        callback: Callable[[np.ndarray, int, Any, Any], None],
        finished_callback: Callable[[], None] | None = None,
        room: Callable[[], int] | None = None,
        **_: Any,
    ) -> FileStream:
        self.check_input_settings(channels=channels, samplerate=samplerate)
        return FileStream(self, samplerate, channels, blocksize, callback, finished_callback, room)


FileSource = FileBackend
"""The name the design uses: a file as a live source (see :class:`FileBackend`)."""
