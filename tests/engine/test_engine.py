"""The engine end to end: audio -> spectrogram -> embeddings -> library search -> HMM -> timeline."""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import (
    SR,
    ToyEncoder,
    build_library,
    make_pieces,
    perform,
    render,
    spectrogram,
)

from companion.engine.engine import Engine, EngineError, EngineParams
from companion.engine.results import Status


@pytest.fixture(scope="module")
def setup():
    enc = ToyEncoder()
    pieces = make_pieces(4, 6, seed=0)
    return pieces, enc, build_library(pieces, enc)


def truth_at(truth: np.ndarray, t: float) -> tuple[int, int]:
    return divmod(int(truth[min(int(round(t * 20)), len(truth) - 1)]), 1000)


def timeline_accuracy(updates, truth, lag_s: float = 0.0) -> tuple[float, float | None]:
    """(share of identified hops on the right system, time of the first correct identification)."""
    ok = n = 0
    first = None
    for u in updates:
        if u.position is None:
            continue
        piece, system = truth_at(truth, max(0.0, u.t - lag_s))
        n += 1
        right_piece = u.position.document_id == 10 + piece
        ok += right_piece and u.position.index == system
        if right_piece and first is None:
            first = u.t
    return (ok / n if n else 0.0), first


def test_timeline_of_a_rendered_piece(setup) -> None:
    pieces, enc, lib = setup
    audio, truth = perform(pieces, [(2, s) for s in range(6)])
    updates = Engine(lib, enc).run(spectrogram(audio))
    assert len(updates) == pytest.approx(len(truth) / 10, abs=1)
    acc, first = timeline_accuracy(updates, truth)
    assert first is not None and first <= 6.0
    assert acc >= 0.75
    late = [u for u in updates if u.t > 8.0]
    assert all(u.status is Status.IDENTIFIED and u.position.document_id == 12 for u in late)
    # pages and systems on a page follow the layout (3 systems per page)
    last = updates[-1].position
    assert (last.page, last.system, last.index) == (1, 2, 5)
    assert updates[-1].pieces[0].document_id == 12
    assert 0.5 <= updates[-1].pieces[0].confidence <= 1.0


def test_piece_switch_is_followed(setup) -> None:
    pieces, enc, lib = setup
    path = [(0, s) for s in range(4)] + [(3, s) for s in range(4)]
    audio, truth = perform(pieces, path)
    updates = Engine(lib, enc).run(spectrogram(audio))
    switch_t = 4 * 6 / 0.9
    before = [u for u in updates if 8.0 < u.t < switch_t]
    after = [u for u in updates if u.t > switch_t + 8.0]
    assert before and after
    assert all(u.position is not None and u.position.document_id == 10 for u in before)
    assert all(u.position is not None and u.position.document_id == 13 for u in after)
    acc, _ = timeline_accuracy(updates, truth)
    assert acc >= 0.7


def test_repeat_goes_back(setup) -> None:
    pieces, enc, lib = setup
    path = [(1, 0), (1, 1), (1, 2), (1, 3), (1, 0), (1, 1), (1, 2)]
    audio, truth = perform(pieces, path)
    updates = Engine(lib, enc).run(spectrogram(audio))
    acc, _ = timeline_accuracy(updates, truth)
    assert acc >= 0.7
    repeat_t = 4 * 6 / 0.9
    back = [u.position.index for u in updates if repeat_t + 3.0 < u.t < repeat_t + 6.0 and u.position]
    assert back and all(i == 0 for i in back)  # after the repeat the first system is highlighted again


def test_silence_and_noise_are_not_identified(setup) -> None:
    pieces, enc, lib = setup
    rng = np.random.default_rng(5)
    silence = np.zeros(SR * 5, np.float32)
    noise = (0.02 * rng.standard_normal(SR * 15)).astype(np.float32)
    engine = Engine(lib, enc)
    updates = engine.run(spectrogram(np.concatenate([silence, noise])))
    assert updates
    assert not any(u.status is Status.IDENTIFIED for u in updates)
    assert all(u.status is Status.SILENT for u in updates if 2.5 < u.t < 4.5)
    # music not in the library (other random chords) is not identified either
    stranger = make_pieces(1, 4, seed=99)[0]
    updates = engine.run(spectrogram(render([c for s in stranger.chords for c in s], timbre=1.6)))
    identified = sum(u.status is Status.IDENTIFIED for u in updates)
    assert identified <= 0.1 * len(updates)


def test_silence_after_a_piece_returns_to_unknown(setup) -> None:
    pieces, enc, lib = setup
    audio, _ = perform(pieces, [(0, 0), (0, 1)])
    spec = spectrogram(np.concatenate([audio, np.zeros(SR * 8, np.float32)]))
    updates = Engine(lib, enc).run(spec)
    assert any(u.status is Status.IDENTIFIED for u in updates)
    assert updates[-1].status is Status.SILENT
    assert updates[-1].unknown > 0.9 and updates[-1].position is None


@pytest.mark.parametrize("method", ["votes", "passages"])
def test_single_methods_run_and_rank(setup, method: str) -> None:
    pieces, enc, lib = setup
    audio, truth = perform(pieces, [(3, s) for s in range(6)])
    updates = Engine(lib, enc, EngineParams(method=method)).run(spectrogram(audio))
    assert updates[-1].pieces[0].document_id == 13


def test_streaming_in_odd_chunks_equals_offline(setup) -> None:
    pieces, enc, lib = setup
    audio, _ = perform(pieces, [(1, 0), (1, 1)])
    spec = spectrogram(audio)
    offline = Engine(lib, enc).run(spec)
    engine = Engine(lib, enc)
    streamed = []
    i = 0
    for size in [3, 17, 1, 40, 7] * 100:
        if i >= len(spec):
            break
        streamed += engine.push(spec[i : i + size], t=i / 20)
        i += size
    assert [(u.status, u.position) for u in streamed] == [(u.status, u.position) for u in offline]
    assert [u.t for u in streamed] == pytest.approx([u.t for u in offline])


def test_bad_input_and_mismatched_model(setup) -> None:
    pieces, enc, lib = setup
    engine = Engine(lib, enc)
    with pytest.raises(EngineError):
        engine.push(np.zeros((5, 80)))
    assert engine.push(np.full((3, 92), np.nan)) == []  # NaNs are treated as silence, not a crash
    other = ToyEncoder()
    other.model_version = "toy-2"
    with pytest.raises(EngineError, match="companion index"):
        Engine(lib, other)
    with pytest.raises(EngineError):
        EngineParams(method="magic")
    no_passages = ToyEncoder(with_passages=False)
    with pytest.raises(EngineError, match="passage"):
        Engine(lib, no_passages, EngineParams(method="passages"))


def test_a_republished_library_is_followed(setup) -> None:
    """An indexer publishes a new generation mid-performance: the engine reloads, no crash, no stale ids."""
    pieces, enc, lib = setup
    bigger = build_library(pieces + make_pieces(1, 3, seed=42), enc)

    class Switching:
        def __init__(self) -> None:
            self.current = lib
            self.gen = 1

        def __getattr__(self, name):
            return getattr(self.current, name)

        @property
        def generation(self) -> int:
            return self.gen

        def refresh(self) -> bool:
            return False

    live = Switching()
    engine = Engine(live, enc)
    audio, truth = perform(pieces, [(1, s) for s in range(4)])
    spec = spectrogram(audio)
    half = len(spec) // 2
    first = engine.push(spec[:half], 0.0)
    live.current, live.gen = bigger, 2
    second = engine.push(spec[half:], half / 20)
    assert engine.layout.n_systems == 6 * 4 + 3
    assert first[-1].position.document_id == 11
    assert second[-1].status is Status.IDENTIFIED and second[-1].position.document_id == 11


def test_user_jump_is_followed(setup) -> None:
    """The pianist jumps ahead and the user clicks the system: the engine is there at once."""
    pieces, enc, lib = setup
    audio, _ = perform(pieces, [(0, 0), (0, 1), (0, 4)])
    spec = spectrogram(audio)
    jump = int(round(2 * 6 / 0.9 * 20))  # frame where system 5 (index 4) starts
    engine = Engine(lib, enc)
    before = engine.push(spec[:jump], 0.0)
    assert before[-1].position.index == 1
    engine.jump_to(0, 4)
    after = engine.push(spec[jump : jump + 10])
    assert after[-1].position is not None and after[-1].position.index == 4
