"""The engine plugged into the live capture session (a file played as if it were the microphone)."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
from engine_helpers import SR, ToyEncoder, build_library, make_pieces, perform

from companion.engine.engine import Engine
from companion.engine.live import LiveEngine
from companion.engine.results import EngineUpdate, Status
from companion.live import CaptureSession, FileBackend, FrameConsumer, ResultEvent


def test_capture_session_publishes_the_engines_identification(tmp_path: Path) -> None:
    enc = ToyEncoder()
    pieces = make_pieces(3, 4, seed=5)
    lib = build_library(pieces, enc)
    audio, _ = perform(pieces, [(2, 0), (2, 1), (2, 2)])
    path = tmp_path / "take.wav"
    sf.write(path, audio, SR)
    consumer = LiveEngine(Engine(lib, enc))
    assert isinstance(consumer, FrameConsumer)
    session = CaptureSession(backend=FileBackend(path, speed=0), consumer=consumer)
    session.start()
    assert session.wait_finished(60)
    results = [e.result for e in session.channel.poll() if isinstance(e, ResultEvent)]
    assert results and all(isinstance(r, EngineUpdate) for r in results)
    identified = [r for r in results if r.status is Status.IDENTIFIED]
    assert identified and identified[-1].position.document_id == 12
    assert identified[-1].position.index == 2  # the third system is being played at the end
    times = [r.t for r in results]
    assert times == sorted(times) and times[-1] > 18.0
