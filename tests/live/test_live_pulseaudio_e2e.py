"""A real round trip through an audio system: PulseAudio null sink -> monitor -> sounddevice.

The fixture starts a private PulseAudio server (its own runtime folder, so
it never touches a user's session) with a null sink, points PortAudio's ALSA
``pulse`` device at the sink's monitor, and the test plays a synthesised
chord sequence into the sink with ``paplay`` while a :class:`CaptureSession`
records it. The captured spectrogram must match the offline spectrogram of
the same signal, with no buffer dropped. A second test plays the bundled demo
recording into the sink with the identification engine attached (shipped
models, the demo library indexed by the real detector) and checks that the
right piece and the systems being played are found. Skips, saying why, where
PulseAudio, PortAudio or the ALSA pulse plugin is missing or cannot start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from live_helpers import chord_sequence

from companion.audio import load_audio, log_spectrogram
from companion.config import load_config
from companion.live import CaptureSession, CaptureState, FramesEvent, LevelEvent, ResultEvent, SessionParams

SINK = "companion_test"
DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"
DEMO_EXCERPT_S = (35.0, 35.0)
"""The part of the demo recording played into the sink (start, seconds): a pianist starting mid-piece.
Offline, with the shipped parameters, the engine names the piece about 10 s into this excerpt and then
highlights the system being played (``companion identify resources/demo/recording.ogg --start 35
--duration 35``); docs/benchmarks.md has the measured numbers."""


def _portaudio() -> Any:
    try:
        import sounddevice
    except OSError as exc:
        pytest.skip(f"PortAudio is not installed ({exc}); apt install libportaudio2")
    return sounddevice


def _rescan(sd: Any) -> None:
    sd._terminate()
    sd._initialize()


class PulseServer:
    """A private PulseAudio server with a null sink, that a test can stop and start again."""

    def __init__(self, runtime: Path) -> None:
        self.runtime = runtime
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime), HOME=str(runtime))
        self.env.pop("PULSE_SERVER", None)
        self.log_file = runtime / "pulseaudio.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> str | None:
        """Start and wait until it answers; None when up, else why not."""
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
                 "--log-target=stderr", f"--load=module-null-sink sink_name={SINK}",
                 "--load=module-native-protocol-unix"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                return f"PulseAudio cannot run here: {self.log_file.read_text(errors='replace')[-500:]}"
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True, timeout=5).returncode == 0:
                return None
            if time.monotonic() > deadline:
                return f"PulseAudio did not come up within {timeout:.0f} s"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="module")
def pulse_null_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseServer]:
    """A running private PulseAudio server whose sink monitor PortAudio's ``pulse`` device records."""
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.skip(f"no audio system: {tool} not found (apt install pulseaudio pulseaudio-utils)")
    sd = _portaudio()
    runtime = tmp_path_factory.mktemp("pulse-runtime")
    runtime.chmod(0o700)
    server = PulseServer(runtime)
    try:
        why = server.start()
        if why is not None:
            pytest.skip(why)
        names = {
            "XDG_RUNTIME_DIR": str(runtime),
            "PULSE_SERVER": f"unix:{runtime}/pulse/native",
            "PULSE_SOURCE": f"{SINK}.monitor",
        }
        server.env["PULSE_SERVER"] = names["PULSE_SERVER"]
        saved = {k: os.environ.get(k) for k in names}
        os.environ.update(names)
        _rescan(sd)  # PortAudio lists devices at start-up: look again now that a server runs
        try:
            if not any(d["name"] == "pulse" and d["max_input_channels"] > 0 for d in sd.query_devices()):
                pytest.skip("PortAudio has no 'pulse' device (apt install libasound2-plugins)")
            yield server
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    finally:
        server.stop()
        _rescan(sd)


def _best_alignment(live: np.ndarray, offline: np.ndarray) -> tuple[float, int]:
    best = (-1.0, 0)
    for lag in range(0, len(live) - len(offline) + 1):
        c = float(np.corrcoef(live[lag : lag + len(offline)].ravel(), offline.ravel())[0, 1])
        best = max(best, (c, lag))
    return best


def _wait_state(session: CaptureSession, states: list[CaptureState], state: CaptureState, count: int = 1,
                timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while states.count(state) < count:
        assert time.monotonic() < deadline, f"never reached {state}; states: {states}"
        time.sleep(0.02)


def _wait_callbacks(session: CaptureSession, more_than: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while session.stats.callbacks <= more_than:
        assert time.monotonic() < deadline, "no audio arrived"
        time.sleep(0.02)


def test_round_trip_through_pulseaudio(pulse_null_sink: PulseServer, tmp_path: Path) -> None:
    import soundfile as sf
    import sounddevice as sd

    sr = 44100
    signal = chord_sequence(sr, repeats=1)  # 2 s
    path = tmp_path / "chords.wav"
    sf.write(str(path), signal, sr, subtype="PCM_16")
    signal = sf.read(str(path), dtype="float32")[0]  # what the sink really gets

    session = CaptureSession(backend=sd, device="pulse", params=SessionParams(publish_frames=True))
    states: list[CaptureState] = []
    session.channel.subscribe(lambda e: states.append(e.state) if hasattr(e, "state") else None)
    session.start()
    deadline = time.monotonic() + 10
    while session.state != CaptureState.RUNNING:
        assert time.monotonic() < deadline, f"capture never ran: {session.channel.status}"
        time.sleep(0.02)
    time.sleep(0.3)
    subprocess.run(["paplay", "-d", SINK, str(path)], env=pulse_null_sink.env, check=True, timeout=30)
    time.sleep(0.6)
    session.stop()

    events = session.channel.poll()
    live = np.concatenate([e.frames for e in events if isinstance(e, FramesEvent)])
    offline = log_spectrogram(signal, sample_rate=sr)
    assert len(live) >= len(offline), f"captured {len(live)} frames, played {len(offline)}"
    corr, lag = _best_alignment(live, offline)
    assert corr > 0.99, f"captured spectrogram differs from the played one (r={corr:.4f} at lag {lag})"
    assert session.stats.dropped_blocks == 0 and session.stats.overflows == 0
    assert any(isinstance(e, LevelEvent) and e.level.sound for e in events)
    assert CaptureState.DEVICE_LOST not in states and CaptureState.ERROR not in states


def test_audio_server_gone_mid_stream_then_back(pulse_null_sink: PulseServer) -> None:
    """A real "unplug": the device vanishes under a running stream, then returns; no app restart."""
    import sounddevice as sd

    params = SessionParams(retry_initial_s=0.3, retry_max_s=1.0)
    session = CaptureSession(backend=sd, device="pulse", params=params)
    states: list[CaptureState] = []
    session.channel.subscribe(lambda e: states.append(e.state) if hasattr(e, "state") else None)
    session.start()
    try:
        _wait_state(session, states, CaptureState.RUNNING)
        _wait_callbacks(session, more_than=0)  # audio flows
        pulse_null_sink.stop()  # the device goes away mid-stream
        _wait_state(session, states, CaptureState.DEVICE_LOST)
        _wait_state(session, states, CaptureState.NO_DEVICE)  # re-scan: it is really gone
        assert pulse_null_sink.start() is None
        _wait_state(session, states, CaptureState.RUNNING, count=2)  # back by itself
        _wait_callbacks(session, more_than=session.stats.callbacks)  # and audio flows again
        assert session.stats.reconnects == 1
        assert CaptureState.ERROR not in states
    finally:
        session.stop()


def _capture_playing(path: Path, server: PulseServer, consumer: Any = None) -> tuple[CaptureSession, list]:
    """Record the sink's monitor while ``paplay`` plays ``path`` into the sink; returns the session and its events."""
    import sounddevice as sd
    import soundfile as sf

    session = CaptureSession(backend=sd, device="pulse", consumer=consumer, params=SessionParams(publish_frames=True))
    events: list = []
    session.channel.subscribe(events.append)
    session.start()
    try:
        deadline = time.monotonic() + 10
        while session.state != CaptureState.RUNNING:
            assert time.monotonic() < deadline, f"capture never ran: {session.channel.status}"
            time.sleep(0.02)
        time.sleep(0.3)
        subprocess.run(["paplay", "-d", SINK, str(path)], env=server.env, check=True,
                       timeout=sf.info(str(path)).duration + 30)
        time.sleep(1.0)  # the last hop reaches the engine
    finally:
        session.stop()
    return session, events


def test_demo_piece_and_its_systems_are_found_through_the_audio_device(pulse_null_sink: PulseServer,
                                                                       tmp_path: Path) -> None:
    """Play the demo recording into the sink; the live engine must name its piece and follow its systems."""
    import soundfile as sf

    from companion.engine.demo import index_demo
    from companion.engine.live import create_live_consumer
    from companion.engine.results import Status

    cfg = load_config()
    meta = json.loads((DEMO / "demo.json").read_text(encoding="utf-8"))["recording"]
    library = tmp_path / "library"
    report = index_demo(cfg, library)
    assert report["errors"] == 0 and report["added"] >= 2
    consumer = create_live_consumer(cfg, library)

    sr = 44100
    start, seconds = DEMO_EXCERPT_S
    audio = load_audio(DEMO / meta["audio"], sample_rate=sr)[int(start * sr) : int((start + seconds) * sr)]
    wav = tmp_path / "excerpt.wav"
    sf.write(str(wav), audio, sr, subtype="PCM_16")
    played = sf.read(str(wav), dtype="float32")[0]

    session, events = _capture_playing(wav, pulse_null_sink, consumer)
    assert session.stats.dropped_blocks == 0 and session.stats.overflows == 0
    live = np.concatenate([e.frames for e in events if isinstance(e, FramesEvent)])
    offline = log_spectrogram(played, sample_rate=sr)
    corr, lag = _best_alignment(live, offline)
    assert corr > 0.95, f"captured spectrogram differs from the played one (r={corr:.4f})"  # and lag = its delay

    def truth(t_stream: float) -> int | None:
        """The system being played at this stream time (None near a boundary: timings are a frame apart)."""
        t = t_stream - lag / 20.0 + start
        for a, b, k in meta["systems"]:
            if a + 0.5 <= t < b - 0.5:
                return int(k)
        return None

    results = [e.result for e in events if isinstance(e, ResultEvent)]
    named = [r for r in results if r.status is Status.IDENTIFIED]
    assert named, f"the piece was never identified in {seconds:.0f} s ({len(results)} results)"
    assert {Path(r.position.path).name for r in named} == {meta["pdf"]}, "another piece was named"
    judged = [(r.position.index, truth(r.t)) for r in named if truth(r.t) is not None]
    right = sum(shown == k for shown, k in judged)
    assert judged and right >= 0.7 * len(judged), \
        f"the highlighted system was right on {right} of {len(judged)} identified hops: {judged}"
