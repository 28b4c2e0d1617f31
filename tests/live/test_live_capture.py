"""The capture session end to end, with files and a scripted fake sounddevice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_helpers import FakeSoundDevice, PortAudioError, chord_sequence, write_wav

from companion.audio import log_spectrogram
from companion.config import load_config
from companion.live import (
    CaptureSession,
    CaptureState,
    FileBackend,
    FramesEvent,
    LevelEvent,
    ResultEvent,
    SessionParams,
    StatusEvent,
)

FAST = SessionParams(retry_initial_s=0.05, retry_max_s=0.2, stall_timeout_s=0.5, poll_s=0.002)


class Recorder:
    """Subscribes to a session's channel and keeps the states it went through."""

    def __init__(self, session: CaptureSession) -> None:
        self.states: list[CaptureState] = []
        self.events: list[Any] = []
        session.channel.subscribe(self._on)

    def _on(self, event: Any) -> None:
        self.events.append(event)
        if isinstance(event, StatusEvent):
            self.states.append(event.state)

    def wait(self, state: CaptureState, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.states.count(state) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"never reached {state} x{count}; states: {self.states}")
            time.sleep(0.005)


def _frames(events: list[Any]) -> np.ndarray:
    return np.concatenate([e.frames for e in events if isinstance(e, FramesEvent)])


@pytest.mark.parametrize("sr", [44100, 48000, 22050])
def test_file_source_frames_equal_offline_spectrogram(tmp_path: Path, sr: int) -> None:
    sig = chord_sequence(sr, repeats=2)
    path = write_wav(tmp_path / "chords.wav", sig, sr)
    session = CaptureSession(backend=FileBackend(path, speed=0), params=SessionParams(publish_frames=True))
    session.start()
    assert session.wait_finished(30)
    events = session.channel.poll()
    np.testing.assert_allclose(_frames(events), log_spectrogram(sig, sample_rate=sr), atol=1e-5)
    frame_times = [e.t for e in events if isinstance(e, FramesEvent)]
    assert frame_times == sorted(frame_times) and frame_times[0] == 0.0
    assert session.stats.dropped_blocks == 0
    assert [e.state for e in events if isinstance(e, StatusEvent)] == [
        CaptureState.STARTING, CaptureState.RUNNING, CaptureState.IDLE
    ]
    assert any(isinstance(e, LevelEvent) and e.level.sound for e in events)


def test_file_source_in_real_time_paces_like_a_microphone(tmp_path: Path) -> None:
    sig = chord_sequence(44100, seconds_per_chord=0.25)  # 1 s
    path = write_wav(tmp_path / "chords.wav", sig, 44100)
    session = CaptureSession(backend=FileBackend(path, speed=1.0))
    t0 = time.monotonic()
    session.start()
    assert session.wait_finished(10)
    assert time.monotonic() - t0 >= 0.9  # not a speed goal: it must not run ahead of real time
    assert session.stats.frames == 20 and session.stats.dropped_blocks == 0
    lat = session.latencies.values()
    assert len(lat) >= 15 and (lat >= 0).all()


class CountingConsumer:
    """Records what the session hands over; returns a result for every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, int]] = []
        self.silences: list[float] = []
        self.resets = 0

    def on_frames(self, frames: np.ndarray, t: float) -> dict[str, float]:
        assert frames.ndim == 2 and frames.shape[1] == 92 and frames.dtype == np.float32
        self.calls.append((t, len(frames)))
        return {"t": t}

    def on_silence(self, t: float) -> str:
        self.silences.append(t)
        return "stopped playing"

    def reset(self) -> None:
        self.resets += 1


def test_consumer_gets_every_frame_and_no_results_are_published_in_silence(tmp_path: Path) -> None:
    sr = 22050
    sig = chord_sequence(sr, repeats=1)  # 2 s of chords between 2 s and 3 s of silence
    x = np.concatenate([np.zeros(2 * sr, np.float32), sig, np.zeros(3 * sr, np.float32)])
    consumer = CountingConsumer()
    session = CaptureSession(backend=FileBackend(write_wav(tmp_path / "x.wav", x, sr), speed=0), consumer=consumer)
    session.start()
    assert session.wait_finished(30)
    events = session.channel.poll()
    total = sum(n for _, n in consumer.calls)
    assert total == len(log_spectrogram(x, sample_rate=sr)) == 140
    assert max(n for _, n in consumer.calls) > 1  # faster than real time: frames come in batches
    # t is the first frame's time: consecutive calls tile the timeline
    ends = [round(t * 20) + n for t, n in consumer.calls]
    assert [round(t * 20) for t, _ in consumer.calls[1:]] == ends[:-1]
    results = [e for e in events if isinstance(e, ResultEvent) and isinstance(e.result, dict)]
    assert results and all(2.0 <= e.t <= 5.6 for e in results)  # only while playing (+release)
    stopped = [e for e in events if isinstance(e, ResultEvent) and e.result == "stopped playing"]
    assert len(stopped) == 1 and stopped[0].t == consumer.silences[0]
    assert session.stats.suppressed_results >= 2  # both silent stretches
    assert len(consumer.silences) == 1 and 5.0 < consumer.silences[0] < 6.0
    assert consumer.resets == 1


def test_input_overflow_is_counted_and_timeline_kept() -> None:
    sd = FakeSoundDevice()
    sd.behaviour, sd.after, sd.stop_at = "overflow_every", 20, 101
    session = CaptureSession(backend=sd, params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.DEVICE_LOST)  # everything delivered was processed by then
    session.stop()
    stats = session.stats
    assert stats.overflows == 5 and stats.dropped_blocks == 5 and stats.dropped_samples == 5 * 512
    # dropped audio is replaced by silence: stream time = delivered + dropped samples
    assert stats.samples == 101 * 512 + 5 * 512
    levels = [e for e in rec.events if isinstance(e, LevelEvent)]
    assert levels[-1].dropped_blocks in (4, 5)  # the last window may end before the last drop


def test_ring_overrun_when_the_worker_stalls_is_counted_not_fatal() -> None:
    sd = FakeSoundDevice()
    sd.block_delay = 0.0005

    class SlowConsumer:
        def on_frames(self, frames: np.ndarray, t: float) -> None:
            time.sleep(0.3)  # an engine far too slow for the ring (0.1 s of audio)

    params = SessionParams(ring_seconds=0.1, poll_s=0.002, max_read_s=0.05, stall_timeout_s=5)
    session = CaptureSession(backend=sd, consumer=SlowConsumer(), params=params)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    time.sleep(1.0)
    assert session.state == CaptureState.RUNNING
    session.stop()
    assert session.stats.dropped_blocks > 0
    assert CaptureState.DEVICE_LOST not in rec.states


def test_no_device_retries_until_one_is_plugged_in() -> None:
    sd = FakeSoundDevice(devices=[], default_input=-1)
    plugged = FakeSoundDevice().devices

    def plug_in_on_third_scan(fake: FakeSoundDevice) -> None:
        if fake.rescans == 3:
            fake.devices = plugged
            fake.default.device = [0, -1]

    sd.on_rescan = plug_in_on_third_scan
    session = CaptureSession(backend=sd, params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    session.stop()
    assert rec.states.count(CaptureState.NO_DEVICE) == 3
    no_device = [e for e in rec.events if isinstance(e, StatusEvent) and e.state == CaptureState.NO_DEVICE]
    assert "No microphone found" in no_device[0].message
    delays = [e.retry_in for e in no_device]
    assert delays == sorted(delays) and delays[-1] > delays[0]  # backoff


def test_device_busy_retries_then_runs() -> None:
    sd = FakeSoundDevice()
    busy = PortAudioError("Error opening InputStream: Device unavailable", -9985)
    sd.open_errors = [busy, busy]
    session = CaptureSession(backend=sd, params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    session.stop()
    assert rec.states.count(CaptureState.DEVICE_BUSY) == 2
    assert rec.states[-1] == CaptureState.IDLE


def test_permission_denied_waits_for_retry() -> None:
    sd = FakeSoundDevice()
    sd.open_errors = [
        PortAudioError("Error opening InputStream: Unanticipated host error", -9999, (0, -13, "Permission denied"))
    ]
    session = CaptureSession(backend=sd, params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.PERMISSION_DENIED)
    time.sleep(0.3)  # several retry periods: it must not retry by itself
    assert rec.states.count(CaptureState.STARTING) == 1
    status = session.channel.status
    assert "privacy settings" in status.message and "Permission denied" in status.detail
    session.restart()  # the user granted access and pressed Retry
    rec.wait(CaptureState.RUNNING)
    session.stop()


def test_rate_unsupported_then_user_picks_another_device(tmp_path: Path) -> None:
    sd = FakeSoundDevice()

    def check(device=None, channels=None, dtype=None, samplerate=None, **_):  # noqa: ANN001, ANN202
        if device == 0:
            raise PortAudioError("Invalid sample rate", -9997)

    sd.check_input_settings = check  # type: ignore[method-assign]
    settings = tmp_path / "settings.json"
    session = CaptureSession(backend=sd, params=FAST, settings_file=settings)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RATE_UNSUPPORTED)
    assert "sample rate" in session.channel.status.message
    session.set_device("Fake Line In")
    rec.wait(CaptureState.RUNNING)
    assert session.device is not None and session.device.name == "Fake Line In"
    assert session.sample_rate == 44100.0
    session.stop()
    assert load_config(settings).audio.audio_device == "Fake Line In"


def test_missing_remembered_device_falls_back_to_default_but_an_explicit_one_is_awaited() -> None:
    cfg = load_config(None, audio={"audio_device": "Scarlett 2i2"})
    session = CaptureSession(cfg.audio, backend=FakeSoundDevice(), params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    session.stop()
    assert session.device is not None and session.device.name == "Fake USB Mic"
    running = [e for e in rec.events if isinstance(e, StatusEvent) and e.state == CaptureState.RUNNING][0]
    assert "'Scarlett 2i2' is not connected" in running.detail

    session = CaptureSession(cfg.audio, backend=FakeSoundDevice(), device="Scarlett 2i2", params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.NO_DEVICE)
    session.stop()
    assert CaptureState.RUNNING not in rec.states
    no_device = [e for e in rec.events if isinstance(e, StatusEvent) and e.state == CaptureState.NO_DEVICE]
    assert "no input device matches 'Scarlett 2i2'" in no_device[0].detail


def test_remembered_device_is_used() -> None:
    cfg = load_config(None, audio={"audio_device": "Line In"})
    session = CaptureSession(cfg.audio, backend=FakeSoundDevice(), params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    session.stop()
    assert session.device is not None and session.device.name == "Fake Line In"


@pytest.mark.parametrize("behaviour", ["stop_after", "stall_after"])
def test_device_unplugged_mid_stream_reconnects(behaviour: str) -> None:
    sd = FakeSoundDevice()
    sd.behaviour, sd.after = behaviour, 30
    session = CaptureSession(backend=sd, params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    rec.wait(CaptureState.DEVICE_LOST)
    sd.behaviour = "ok"  # plugged back in
    rec.wait(CaptureState.RUNNING, count=2)
    session.stop()
    assert session.stats.reconnects == 1
    lost = [e for e in rec.events if isinstance(e, StatusEvent) and e.state == CaptureState.DEVICE_LOST][0]
    assert "reconnect" in lost.message and lost.retry_in is not None


def test_stream_start_failure_and_unknown_errors_are_states() -> None:
    sd = FakeSoundDevice()
    sd.start_error = PortAudioError("Error starting stream: Internal PortAudio error", -9986)
    session = CaptureSession(backend=sd, params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.ERROR)
    sd.start_error = None
    session.restart()
    rec.wait(CaptureState.RUNNING)
    session.stop()


def test_a_crashing_consumer_becomes_an_error_state() -> None:
    class Broken:
        def on_frames(self, frames: np.ndarray, t: float) -> None:
            raise RuntimeError("engine bug")

    session = CaptureSession(backend=FakeSoundDevice(), consumer=Broken(), params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.ERROR)
    session.stop()
    assert "engine bug" in session.channel.status.detail
    assert not session.running


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    from companion.errors import AudioError

    with pytest.raises(AudioError, match="not found"):
        FileBackend(tmp_path / "nope.wav")


def test_busy_while_probing_formats_is_busy_not_rate_unsupported() -> None:
    sd = FakeSoundDevice()
    sd.check_error = PortAudioError("Error opening InputStream: Device unavailable", -9985)
    session = CaptureSession(backend=sd, params=FAST)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.DEVICE_BUSY)
    sd.check_error = None  # the other program let go of the microphone
    rec.wait(CaptureState.RUNNING)
    session.stop()
    assert CaptureState.RATE_UNSUPPORTED not in rec.states


def test_a_stream_that_hangs_in_close_is_abandoned_and_cannot_disturb_the_next() -> None:
    sd = FakeSoundDevice()
    sd.behaviour, sd.after = "stall_after", 20
    release = __import__("threading").Event()
    params = SessionParams(retry_initial_s=0.05, stall_timeout_s=0.3, close_timeout_s=0.2, poll_s=0.002)
    session = CaptureSession(backend=sd, params=params)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    first = sd.streams[0]
    first.abort = first.stop = lambda: release.wait(5)  # type: ignore[method-assign]
    first.close = lambda: None  # type: ignore[method-assign]
    sd_first_callback = first.callback
    rec.wait(CaptureState.DEVICE_LOST)
    sd.behaviour = "ok"
    rec.wait(CaptureState.RUNNING, count=2)
    assert sd.rescans == 0  # no PortAudio restart under a stream stuck in close()
    session.stop()
    ring = session._ring
    assert ring is not None
    before = ring.written
    block = np.ones((512, 1), np.float32)
    sd_first_callback(block, 512, None, None)  # the abandoned stream calls back late: ignored
    assert ring.written == before
    sd.streams[-1].callback(block, 512, None, None)  # the current stream's callback does write
    assert ring.written == before + 512
    release.set()
    type(first).stop(first)  # end the fake's thread (its stop() was replaced above)


@pytest.mark.parametrize("kind", ["silence", "room noise", "hum"])
def test_no_results_are_published_without_playing(tmp_path: Path, kind: str) -> None:
    sr = 22050
    n = 8 * sr
    if kind == "silence":
        x = np.zeros(n, np.float32)
    elif kind == "room noise":
        x = (0.03 * np.random.default_rng(1).standard_normal(n)).astype(np.float32)  # -30 dBFS
    else:  # mains hum with harmonics, loud
        t = np.arange(n) / sr
        x = (0.2 * np.sin(2 * np.pi * 50 * t) + 0.05 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    consumer = CountingConsumer()
    session = CaptureSession(backend=FileBackend(write_wav(tmp_path / "x.wav", x, sr), speed=0), consumer=consumer)
    session.start()
    assert session.wait_finished(30)
    events = session.channel.poll()
    assert sum(n for _, n in consumer.calls) == 160  # the engine still sees every frame
    assert not [e for e in events if isinstance(e, ResultEvent)]
    assert session.stats.suppressed_results == len(consumer.calls)


def test_stereo_only_device_is_downmixed_and_matches_offline() -> None:
    sd = FakeSoundDevice()
    sig = chord_sequence(44100)
    sd.signal, sd.end_stops = sig, True

    def check(device=None, channels=None, dtype=None, samplerate=None, **_):  # noqa: ANN001, ANN202
        if channels == 1:
            raise PortAudioError("Invalid number of channels", -9998)

    sd.check_input_settings = check  # type: ignore[method-assign]
    session = CaptureSession(backend=sd, device="Line In", params=SessionParams(publish_frames=True, poll_s=0.002))
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.DEVICE_LOST)  # the fake's signal ended: everything was processed
    session.stop()
    assert session.channels == 2 and session.sample_rate == 44100.0
    live = _frames(rec.events)
    offline = log_spectrogram(sig, sample_rate=44100)
    assert len(live) >= len(offline) - 2  # the last frames need the end of stream (flush)
    np.testing.assert_allclose(live[: len(offline) - 2], offline[: len(offline) - 2], atol=1e-5)


def test_slow_starting_device_is_waited_for_but_a_silent_one_is_lost() -> None:
    sd = FakeSoundDevice()
    sd.start_delay = 0.8  # longer than the stall limit, shorter than the first-audio limit
    params = SessionParams(stall_timeout_s=0.3, first_audio_timeout_s=1.5, retry_initial_s=0.05, poll_s=0.002)
    session = CaptureSession(backend=sd, params=params)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.RUNNING)
    deadline = time.monotonic() + 5
    while session.stats.callbacks == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert session.stats.callbacks > 0 and CaptureState.DEVICE_LOST not in rec.states
    session.stop()

    sd = FakeSoundDevice()
    sd.behaviour, sd.after = "stall_after", 0  # opens fine, never delivers a sample
    session = CaptureSession(backend=sd, params=params)
    rec = Recorder(session)
    session.start()
    rec.wait(CaptureState.DEVICE_LOST)
    session.stop()
    lost = [e for e in rec.events if isinstance(e, StatusEvent) and e.state == CaptureState.DEVICE_LOST][0]
    assert "no audio from the device" in lost.detail
