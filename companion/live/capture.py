"""The capture session: microphone (or file) -> ring buffer -> worker -> channel.

Threads and who does what:

* the **audio callback** (PortAudio's thread, or the file stream's) only
  copies each block into a :class:`~companion.live.ring_buffer.RingBuffer`
  and notes the time -- no allocation worth the name, no logging, no locks;
* one **worker thread** owns everything else: opening the device (with
  retries), pulling blocks from the ring, the level meter and silence gate,
  the streaming resampler + spectrogram (:class:`companion.audio.StreamingSpectrogram`),
  the frame consumer (the identification engine, when there is one), and
  publishing through a :class:`~companion.live.channel.Channel`;
* the **app** (GUI or ``companion listen``) polls the channel or subscribes
  to it, and calls :meth:`CaptureSession.start` / ``stop`` / ``restart`` /
  ``set_device`` from any thread.

Failures never escape as exceptions: they become states
(:mod:`companion.live.states`), retried with exponential backoff where the
device may come back (unplugged, busy, none yet), or waiting for
:meth:`CaptureSession.restart` / :meth:`CaptureSession.set_device`.

Timeline: frame ``i`` is centred at ``i / fps`` seconds of *stream time*.
Samples dropped on the way (PortAudio overflows, ring overruns) are replaced
by silence of the same length, so stream time stays wall-clock time. Each
(re)opened stream starts again at 0 and the consumer is ``reset()``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from companion.audio import StreamingSpectrogram
from companion.config import AudioConfig
from companion.live import devices as devmod
from companion.live.channel import Channel, FramesEvent, LevelEvent, ResultEvent, StatusEvent
from companion.live.meter import LevelMeter, MeterParams
from companion.live.ring_buffer import Gap, RingBuffer
from companion.live.states import USER_MESSAGES, CaptureState, Failure, classify_error

log = logging.getLogger(__name__)


@runtime_checkable
class FrameConsumer(Protocol):
    """What the identification engine implements to receive live spectrogram frames.

    ``on_frames`` gets the new frames ``(k, 92)`` float32 (k >= 1) and ``t``,
    the stream time in seconds of the *first* of them (frame centres are
    ``t + j / fps``). It returns a result to publish (e.g. the piece and
    system), or None when there is nothing new to say. It runs on the worker
    thread and should take well under one hop (50 ms) on average.

    Optional: ``on_silence(t)`` is called when the silence gate closes (the
    pianist stopped; what it returns, if not None, is published as a result),
    ``reset()`` when a new stream starts. Results of ``on_frames`` are only
    published while the gate is open: no claims during silence or room noise.
    """

    def on_frames(self, frames: np.ndarray, t: float) -> Any | None: ...


@dataclass(frozen=True)
class SessionParams:
    """Tuning of the capture session (defaults suit a desktop microphone)."""

    ring_seconds: float = 20.0
    """Audio the ring buffer holds: the worker may stall this long before anything is lost."""
    blocksize: int = 0
    """Samples per callback; 0 lets PortAudio choose (best for glitch-free input)."""
    latency: str | float = "high"
    """PortAudio input latency: 'high' favours never dropping over speed (~35 ms on ALSA)."""
    poll_s: float = 0.01
    """How often the worker looks for new audio (bounds the added latency)."""
    max_read_s: float = 0.5
    """At most this much audio per worker step, so results keep flowing after a stall."""
    stall_timeout_s: float = 3.0
    """No callback for this long while running means the device is gone."""
    first_audio_timeout_s: float = 10.0
    """A newly opened stream may take this long to deliver its first block
    (PulseAudio takes ~1.5 s here; Bluetooth headsets can take seconds)."""
    close_timeout_s: float = 2.0
    """Give up closing a stream after this long (PortAudio may hang on a vanished device)."""
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0
    publish_frames: bool = False
    """Also publish every spectrogram frame (for a live spectrogram view)."""
    meter: MeterParams = field(default_factory=MeterParams)


@dataclass
class CaptureStats:
    """Counters of the current session (read from any thread; approximate while running)."""

    callbacks: int = 0
    overflows: int = 0
    """Callbacks that PortAudio flagged with an input overflow (audio lost upstream)."""
    dropped_blocks: int = 0
    dropped_samples: int = 0
    samples: int = 0
    frames: int = 0
    results: int = 0
    suppressed_results: int = 0
    """Results the consumer returned while the silence gate was closed (not published)."""
    reconnects: int = 0
    worker_cpu_s: float = 0.0
    """CPU time of the worker thread (everything but the audio callback)."""


class LatencyLog:
    """The newest ``size`` per-frame latencies (capture of the last needed sample -> publication)."""

    def __init__(self, size: int = 1 << 17) -> None:
        self._values = np.zeros(size, dtype=np.float64)
        self._values.fill(0.0)  # touch the pages now: memory stays flat while it fills
        self._count = 0

    def add(self, value: float) -> None:
        self._values[self._count % len(self._values)] = value
        self._count += 1

    def values(self) -> np.ndarray:
        n = min(self._count, len(self._values))
        return self._values[:n].copy()

    def clear(self) -> None:
        self._count = 0


class _Retry(Exception):
    """Internal: leave the pump loop to re-open the stream."""


class CaptureSession:
    """Listen to one input device (or file) until stopped; see the module docstring.

    ``backend`` is the ``sounddevice`` module (default), a
    :class:`~companion.live.file_source.FileBackend`, or a fake with the same
    interface. ``device`` is a name, an index or None (the remembered device
    from ``cfg.audio_device``, else the system default).
    """

    def __init__(
        self,
        cfg: AudioConfig | None = None,
        *,
        backend: Any | None = None,
        device: str | int | None = None,
        consumer: FrameConsumer | None = None,
        channel: Channel | None = None,
        params: SessionParams | None = None,
        settings_file: Path | None = None,
    ) -> None:
        self.cfg = cfg or AudioConfig()
        self._backend = backend
        self._device_spec: str | int | None = device if device is not None else (self.cfg.audio_device or None)
        # a remembered device that is missing falls back to the default input;
        # one the caller asked for explicitly is waited for
        self._spec_is_remembered = device is None and bool(self.cfg.audio_device)
        self._note = ""
        self.consumer = consumer
        self.channel = channel or Channel()
        self.params = params or SessionParams()
        self.settings_file = settings_file
        self.stats = CaptureStats()
        self.latencies = LatencyLog()
        self.device: devmod.DeviceInfo | None = None
        self.sample_rate = 0.0
        self.channels = 1
        self._state = CaptureState.IDLE
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._restart = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._eof = False
        self._stream: Any = None
        self._ring: RingBuffer | None = None
        self._stream_ended = False
        self._last_callback = 0.0
        self._got_audio = False
        self._spec: StreamingSpectrogram | None = None
        self._meter: LevelMeter | None = None
        self._stream_pos = 0  # samples (device rate) fed to the spectrogram, gaps included
        self._gap_total = 0  # of which silence put in for dropped samples
        self._was_sound = False
        self._closers: list[threading.Thread] = []
        self._dropped_before = (0, 0)
        self._pending: list[np.ndarray] = []  # frames not yet handed to the consumer
        self._pending_first = 0
        self._pending_sound = False

    # ------------------------------------------------------------------ control
    @property
    def state(self) -> CaptureState:
        return self._state

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start listening in the background (returns at once; watch the channel)."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._finished.clear()
            self._eof = False
            self._thread = threading.Thread(target=self._run, name="companion-capture", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and close the device; the session can be started again."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def restart(self) -> None:
        """Re-open the device now (the Retry button), whatever the state."""
        self._restart = True
        self._wake.set()
        if not self.running:
            self.start()

    def set_device(self, device: str | int | None, remember: bool = True) -> None:
        """Switch to another input device (None: system default), without restarting the app.

        ``remember`` stores the choice in the settings file so the next start uses it.
        """
        self._device_spec = device
        self._spec_is_remembered = False
        if remember and self.settings_file is not None:
            devmod.remember_device("" if device is None else str(device), self.settings_file)
        self.restart()

    def wait_finished(self, timeout: float | None = None) -> bool:
        """Wait until the worker ended: a file was processed to its end, stop(), or an error.

        True when it did within ``timeout``; the final StatusEvent is published by then.
        """
        return self._finished.wait(timeout)

    # ------------------------------------------------------------------ state
    def _set_state(
        self, state: CaptureState, detail: str = "", retry_in: float | None = None, message: str = ""
    ) -> None:
        self._state = state
        # info, not warning: the channel is how the user hears about it
        log.info("capture: %s %s", state.value, detail)
        self.channel.publish(
            StatusEvent(
                state=state,
                message=message or USER_MESSAGES[state],
                detail=detail,
                device=self.device.name if self.device else "",
                sample_rate=self.sample_rate,
                retry_in=retry_in,
            )
        )

    def _wait(self, seconds: float | None) -> bool:
        """Sleep until ``seconds`` pass, stop, or restart; True when the worker should go on."""
        self._wake.wait(seconds)
        self._wake.clear()
        return not self._stop.is_set()

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        self._cpu0 = time.thread_time() - self.stats.worker_cpu_s
        if self.consumer is not None:
            _limit_torch_threads()
        delay = self.params.retry_initial_s
        first = True
        try:
            while not self._stop.is_set():
                self._restart = False
                self._wake.clear()
                if not first:
                    self._rescan()
                first = False
                failure = self._open()
                if failure is None:
                    delay = self.params.retry_initial_s
                    failure = self._pump()
                    self._close()
                    if failure is None:  # stopped, finished or restart requested
                        if self._eof or self._stop.is_set():
                            break
                        continue
                    self.stats.reconnects += 1
                if failure.state.retries:
                    self._set_state(failure.state, failure.detail, retry_in=delay)
                    if not self._wait(delay):
                        break
                    delay = min(delay * 2.0, self.params.retry_max_s)
                else:
                    self._set_state(failure.state, failure.detail)
                    if not self._wait(None):  # until restart() or set_device()
                        break
                    delay = self.params.retry_initial_s
        except Exception as exc:  # a bug must not kill the app silently: report it as a state
            log.exception("capture worker failed")
            self._close()
            self._set_state(CaptureState.ERROR, f"{type(exc).__name__}: {exc}")
            self._finished.set()
            return
        self._close()
        if self._eof:
            self._set_state(CaptureState.IDLE, "end of input", message="Finished: the whole input was processed.")
        else:
            self._set_state(CaptureState.IDLE)
        self._finished.set()

    def _rescan(self) -> None:
        backend = self._backend
        self._closers = [t for t in self._closers if t.is_alive()]
        if self._closers:  # restarting PortAudio under a stream stuck in close() could crash it
            log.info("device re-scan skipped: an old stream is still closing")
            return
        if backend is not None:
            devmod.rescan(backend)

    def _resolve_backend(self) -> Any:
        if self._backend is None:
            self._backend = devmod.get_backend()
        return self._backend

    def _open(self) -> Failure | None:
        """Find the device, pick a format, open and start the stream; a Failure if not."""
        self.device = None
        self.sample_rate = 0.0
        self._set_state(CaptureState.STARTING)
        try:
            backend = self._resolve_backend()
        except devmod.NoAudioSystem as exc:
            return Failure(CaptureState.NO_DEVICE, str(exc))
        self._note = ""
        try:
            try:
                device = devmod.find_input_device(self._device_spec, backend)
            except devmod.DeviceNotFound:
                if not (self._spec_is_remembered and devmod.list_input_devices(backend)):
                    raise
                device = devmod.find_input_device(None, backend)
                self._note = f"; the remembered input {self._device_spec!r} is not connected, using the default"
        except devmod.DeviceNotFound as exc:
            return Failure(CaptureState.NO_DEVICE, str(exc))
        except Exception as exc:
            return classify_error(exc)
        self.device = device
        try:
            fmt = devmod.choose_stream_format(device, backend)
        except devmod.FormatProbeError as exc:
            return classify_error(exc.cause)
        if fmt is None:
            return Failure(
                CaptureState.RATE_UNSUPPORTED,
                f"{device.name}: none of {', '.join(str(r) for r in devmod.COMMON_RATES)} Hz works",
            )
        rate, channels = fmt
        self.sample_rate, self.channels = rate, channels
        if self._ring is not None:  # keep the session's drop totals across reconnects
            self._update_drop_counts()
            self._dropped_before = (self.stats.dropped_blocks, self.stats.dropped_samples)
        self._ring = RingBuffer(max(4096, int(self.params.ring_seconds * rate)), channels)
        self._spec = StreamingSpectrogram(self.cfg, input_rate=rate)
        self._meter = LevelMeter(rate, self.params.meter)
        self._stream_pos = 0
        self._gap_total = 0
        self._was_sound = False
        self._pending = []
        self._stream_ended = False
        callback, finished = self._make_callbacks(self._ring)
        reset = getattr(self.consumer, "reset", None)
        if callable(reset):
            reset()
        kwargs: dict[str, Any] = dict(
            device=device.index,
            samplerate=rate,
            channels=channels,
            dtype="float32",
            blocksize=self.params.blocksize,
            latency=self.params.latency,
            callback=callback,
            finished_callback=finished,
        )
        if getattr(backend, "accepts_backpressure", False):
            ring = self._ring
            kwargs["room"] = lambda: ring.capacity - ring.available
        try:
            stream = backend.InputStream(**kwargs)
        except Exception as exc:
            return classify_error(exc)
        try:
            self._last_callback = time.monotonic()
            self._got_audio = False
            stream.start()
        except Exception as exc:
            _close_quietly(stream)
            return classify_error(exc)
        self._stream = stream
        self._set_state(CaptureState.RUNNING, f"{device.name} at {rate:.0f} Hz, {channels} ch{self._note}")
        return None

    def _close(self) -> None:
        """Close the stream, giving up after ``close_timeout_s``.

        PortAudio can hang in stop/close on a device that was unplugged; the
        worker must not hang with it, so closing runs on a helper thread.
        """
        stream, self._stream = self._stream, None
        if stream is None:
            return
        closer = threading.Thread(target=_close_quietly, args=(stream,), name="companion-close", daemon=True)
        closer.start()
        closer.join(self.params.close_timeout_s)
        if closer.is_alive():
            log.warning("audio stream did not close within %.1f s; abandoned", self.params.close_timeout_s)
            self._closers.append(closer)

    def _make_callbacks(self, ring: RingBuffer) -> tuple[Any, Any]:
        """The stream's callback and finished callback, bound to *this* stream's ring.

        A stream abandoned in a hung close() may still call back later: bound to
        its own (old) ring, it can never write into the new stream's ring or end it.
        """
        stats = self.stats

        # PortAudio's thread: copy, count, nothing else.
        def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
            if ring is not self._ring:
                return
            now = time.monotonic()
            self._last_callback = now
            self._got_audio = True
            stats.callbacks += 1
            if status and getattr(status, "input_overflow", False):
                stats.overflows += 1
                ring.note_dropped(frames)
            ring.write(indata, now)

        def finished() -> None:
            if ring is self._ring:
                self._stream_ended = True

        return callback, finished

    def _pump(self) -> Failure | None:
        """Process audio until stop/restart (None), end of a finite source (None), or a failure."""
        ring = self._ring
        assert ring is not None
        backend = self._backend
        finite = bool(getattr(backend, "finite", False))
        max_read = max(1, int(self.params.max_read_s * self.sample_rate))
        while True:
            self.stats.worker_cpu_s = time.thread_time() - self._cpu0
            if self._stop.is_set() or self._restart:
                return None
            ended = self._stream_ended or not bool(getattr(self._stream, "active", True))
            if ring.available == 0:
                if ended:
                    error = getattr(self._stream, "error", None)
                    if finite and error is None:
                        self._drain_end()
                        self._eof = True
                        return None
                    detail = str(error) if error else "the audio stream stopped by itself"
                    return Failure(CaptureState.DEVICE_LOST, detail)
                silent_for = time.monotonic() - self._last_callback
                limit = self.params.stall_timeout_s if self._got_audio else self.params.first_audio_timeout_s
                if silent_for > limit:
                    return Failure(
                        CaptureState.DEVICE_LOST, f"no audio from the device for {silent_for:.1f} s"
                    )
                self._stop.wait(self.params.poll_s)
                continue
            start = ring.consumed
            block, gaps = ring.read(max_read)
            self._process(block, gaps, start)

    def _process(self, block: np.ndarray, gaps: list[Gap], start: int) -> None:
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
        if not np.isfinite(mono).all():  # a broken driver must not stop the worker
            mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
        offset = 0
        for gap in gaps:
            cut = max(0, min(len(mono), gap.position - start))
            if cut > offset:
                self._feed(mono[offset:cut])
                offset = cut
            self._feed_silence(gap.length)
        if offset < len(mono):
            self._feed(mono[offset:])
        self._flush_pending()
        self._update_drop_counts()

    def _update_drop_counts(self) -> None:
        """Session totals: earlier streams' drops plus the current ring's."""
        ring = self._ring
        blocks, samples = (ring.dropped_blocks, ring.dropped_samples) if ring is not None else (0, 0)
        self.stats.dropped_blocks = self._dropped_before[0] + blocks
        self.stats.dropped_samples = self._dropped_before[1] + samples

    def _feed_silence(self, n: int) -> None:
        self._gap_total += n
        step = max(1, int(self.sample_rate))
        while n > 0 and not self._stop.is_set():
            k = min(n, step)
            self._feed(np.zeros(k, dtype=np.float32))
            n -= k

    def _feed(self, mono: np.ndarray) -> None:
        """Meter + spectrogram + consumer, one hop at most at a time.

        Hop-sized steps keep the silence gate in step with the frames it
        gates, also when the worker catches up on a backlog in big reads.
        """
        step = max(1, int(self.sample_rate / self.cfg.fps))
        for i in range(0, len(mono), step):
            if self._stop.is_set():  # stay responsive while catching up on a backlog
                return
            self._feed_step(mono[i : i + step])

    def _feed_step(self, mono: np.ndarray) -> None:
        assert self._spec is not None and self._meter is not None and self._ring is not None
        readings = self._meter.process(mono)
        if readings:
            self._update_drop_counts()
            for reading in readings:
                self.channel.publish(
                    LevelEvent(reading, self.stats.dropped_blocks, self.stats.dropped_samples)
                )
        self._stream_pos += len(mono)
        self.stats.samples = self._stream_pos
        frames = self._spec.process(mono)
        if len(frames):
            self._queue(frames)

    def _queue(self, frames: np.ndarray) -> None:
        """Collect frames with the same gate state; a batch goes out when the state flips.

        Live, a worker step holds at most a frame or two anyway; when it catches
        up on a backlog, the consumer gets the backlog in a few big calls (an
        encoder is much cheaper per frame in batches) yet never a batch that
        mixes playing and silence.
        """
        assert self._spec is not None and self._meter is not None
        sound = self._meter.sound
        if self._pending and sound != self._pending_sound:
            self._flush_pending()
        if not self._pending:
            self._pending_first = self._spec.frames_emitted - len(frames)
            self._pending_sound = sound
        self._pending.append(frames)

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        frames = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending = []
        self._deliver(frames, self._pending_first, self._pending_sound)

    def _deliver(self, frames: np.ndarray, first_index: int, sound: bool) -> None:
        fps = self.cfg.fps
        t0 = first_index / fps
        self.stats.frames += len(frames)
        if self._was_sound and not sound:
            on_silence = getattr(self.consumer, "on_silence", None)
            if callable(on_silence):
                # what the consumer says when playing stops ("silent") retracts, not
                # claims: it is published although the gate is closed
                update = on_silence(t0)
                if update is not None:
                    self.stats.results += 1
                    self.channel.publish(ResultEvent(t0, update, None))
        self._was_sound = sound
        if self.params.publish_frames:
            self.channel.publish(FramesEvent(t0, frames))
        result = None
        if self.consumer is not None:
            result = self.consumer.on_frames(frames, t0)
        now = time.monotonic()
        latency = self._record_latency(first_index, len(frames), now)
        if result is not None:
            if sound:
                self.stats.results += 1
                self.channel.publish(ResultEvent((first_index + len(frames) - 1) / fps, result, latency))
            else:
                self.stats.suppressed_results += 1

    def _record_latency(self, first_index: int, n: int, now: float) -> float | None:
        """Per frame: from the capture of the last sample it needs to now; returns the newest's."""
        assert self._ring is not None
        hop = self.cfg.hop_size
        half = self.cfg.frame_size // 2
        ratio = self.sample_rate / self.cfg.sample_rate
        latency = None
        for i in range(first_index, first_index + n):
            needed = (int(i * hop) + half) * ratio  # device samples, gaps included
            ring_pos = int(np.ceil(needed)) - self._gap_total
            captured = self._ring.capture_time(max(1, ring_pos))
            if captured is not None:
                latency = now - captured
                self.latencies.add(latency)
        return latency

    def _drain_end(self) -> None:
        """End of a finite source: the spectrogram's last (zero-padded) frames."""
        assert self._spec is not None
        self._flush_pending()
        tail = self._spec.flush()
        if len(tail):
            # flush() reset the framer: emitted count is gone, so time the tail by samples
            fps = self.cfg.fps
            total = int(np.ceil(self._stream_pos * self.cfg.sample_rate / self.sample_rate / self.cfg.hop_size))
            first = max(0, total - len(tail))
            self.stats.frames += len(tail)
            if self.params.publish_frames:
                self.channel.publish(FramesEvent(first / fps, tail))
            if self.consumer is not None:
                result = self.consumer.on_frames(tail, first / fps)
                if result is not None and self._meter is not None and self._meter.sound:
                    self.stats.results += 1
                    self.channel.publish(ResultEvent((first + len(tail) - 1) / fps, result, None))


def _close_quietly(stream: Any) -> None:
    # abort, not stop: an input stream has nothing to drain, and stop can wait on a dead device
    for name in ("abort" if hasattr(stream, "abort") else "stop", "close"):
        try:
            getattr(stream, name)()
        except Exception as exc:  # a vanished device may refuse even to close
            log.debug("stream %s failed: %s", name, exc)


def _limit_torch_threads() -> None:
    """One intra-op thread for the encoders: the app must leave cores for audio and GUI.

    Only when the consumer already loaded torch (an engine with encoders does):
    importing it here just for this would cost seconds and ~300 MB.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


__all__ = [
    "CaptureSession",
    "CaptureStats",
    "FrameConsumer",
    "SessionParams",
]
