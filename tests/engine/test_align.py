"""The online snippet alignment (method "align"): order matters, documents stay apart, the engine follows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from engine_helpers import SR, ToyEncoder, build_library, make_pieces, perform, render, spectrogram

from companion.engine.align import AlignParams, SnippetAligner, hubness
from companion.engine.engine import AlignDecision, Engine, EngineParams
from companion.engine.results import Status


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _toy_aligner(params: AlignParams | None = None, seed: int = 0):
    """Two documents of 2 systems x 10 snippets of random unit vectors (given out of order)."""
    rng = np.random.default_rng(seed)
    vecs = _unit(rng.standard_normal((40, 32)).astype(np.float32))
    flat = np.repeat(np.arange(4), 10)
    x = np.tile(np.arange(10) * 25, 4)
    doc_of_system = np.array([0, 0, 1, 1])
    perm = rng.permutation(40)  # the library's row order is not reading order
    return vecs, SnippetAligner(vecs[perm], flat[perm], x[perm], doc_of_system, 2, params)


def test_paths_follow_reading_order_and_find_the_position() -> None:
    vecs, al = _toy_aligner()
    rng = np.random.default_rng(1)
    for i in range(12):  # play snippets 3..14 of document 0 (across its system break), noisily
        al.update(_unit(vecs[3 + i] + 0.8 * rng.standard_normal(32).astype(np.float32) / np.sqrt(32)))
    scores = al.document_scores()
    assert scores[0] > scores[1] + 10
    assert al.best_system(0) == 1  # snippet 14 is on the second system
    forward = scores[0]
    al.reset()
    for i in reversed(range(12)):  # the same snippets backwards: no path explains them
        al.update(_unit(vecs[3 + i]))
    assert al.document_scores()[0] < 0.7 * forward


def test_paths_never_cross_into_another_document() -> None:
    vecs, al = _toy_aligner(AlignParams(decay=1.0, max_step=2, jump_penalty=1e9))
    # the end of document 0 followed by the start of document 1: one path cannot explain both
    for v in list(vecs[14:20]) + list(vecs[20:26]):
        al.update(v)
    both = al.document_scores()
    al.reset()
    for v in list(vecs[20:26]) * 2:
        al.update(v)
    assert al.document_scores()[1] > both.max()


def test_jump_lets_a_repeat_continue() -> None:
    vecs, strict = _toy_aligner(AlignParams(jump_penalty=1e9))
    _, jumpy = _toy_aligner(AlignParams(jump_penalty=4.0))
    played = list(range(0, 12)) + list(range(2, 12))  # a repeat back to snippet 2
    for al in (strict, jumpy):
        for i in played:
            al.update(vecs[i])
    assert jumpy.document_scores()[0] > strict.document_scores()[0]


def test_system_scores_are_the_best_path_ending_in_each_system() -> None:
    vecs, al = _toy_aligner()
    systems, scores = al.system_scores(0)
    assert list(systems) == [0, 1] and np.isneginf(scores).all()  # no audio yet: no path
    for i in range(8, 14):
        al.update(vecs[i])
    for doc in (0, 1):
        systems, scores = al.system_scores(doc)
        assert list(systems) == [2 * doc, 2 * doc + 1]
        for flat, score in zip(systems, scores):
            assert score == al.D[al.system == flat].max()
        assert systems[int(np.argmax(scores))] == al.best_system(doc)


def _shown(engine: Engine, trace_scores: list[float], prev: int) -> int:
    """The system ``engine`` shows for document 0 when its systems' best paths score ``trace_scores``."""
    from companion.engine.align import AlignTrace

    n = len(trace_scores)
    trace = AlignTrace(np.array([[max(trace_scores)]]), np.array([[int(np.argmax(trace_scores))]]),
                       np.arange(n), np.zeros(n, np.int64), np.array([trace_scores], np.float64))
    trace.update(np.zeros(4))
    engine.aligner = trace
    engine._last_flat = prev
    return engine._shown_system(0)


def test_display_leaves_the_shown_system_only_for_a_clear_lead(setup) -> None:
    _, enc, lib = setup
    one = make_pieces(1, 6, seed=3)
    lib1 = build_library(one, enc)
    params = EngineParams(method="align")
    held = Engine(lib1, enc, replace(params, align_decision=replace(params.align_decision, switch_margin=3.0)))
    plain = Engine(lib1, enc, params)
    scores = [0.0, 10.0, 9.0, 0.0, 12.0, 0.0]  # shown: system 1; system 4 leads by 2
    assert _shown(plain, scores, prev=1) == 4  # no hysteresis: always the best path
    assert _shown(held, scores, prev=1) == 1
    assert _shown(held, [0.0, 10.0, 11.0, 0.0, 12.0, 0.0], prev=1) == 2  # reading on to the next system is free
    assert _shown(held, [0.0, 10.0, 9.0, 0.0, 13.5, 0.0], prev=1) == 4  # a lead of more than the margin wins
    assert _shown(held, scores, prev=-1) == 4  # nothing shown before: the best path


def test_display_hysteresis_still_follows_a_repeat(setup) -> None:
    """A genuine repeat builds a lead quickly: the held display goes back too, at most a second later."""
    pieces, enc, lib = setup
    plain = EngineParams(method="align")
    held = replace(plain, align_decision=replace(plain.align_decision, switch_margin=3.0))
    audio, truth = perform(pieces, [(1, 0), (1, 1), (1, 2), (1, 3), (1, 0), (1, 1), (1, 2)])
    repeat_t = 4 * 6 / 0.9
    back_at = {}
    for name, params in (("plain", plain), ("held", held)):
        updates = Engine(lib, enc, params).run(spectrogram(audio))
        back_at[name] = min(u.t for u in updates if u.t > repeat_t and u.position and u.position.index == 0)
        assert all(u.position.index == 0 for u in updates if repeat_t + 4.5 < u.t < repeat_t + 6.0)
        assert _accuracy(updates, truth)[0] >= 0.7
    assert back_at["plain"] <= back_at["held"] <= back_at["plain"] + 1.0


@pytest.fixture(scope="module")
def setup():
    enc = ToyEncoder()
    pieces = make_pieces(4, 6, seed=0)
    return pieces, enc, build_library(pieces, enc)


def _accuracy(updates, truth) -> tuple[float, float | None]:
    ok = n = 0
    first = None
    for u in updates:
        if u.position is None:
            continue
        piece, system = divmod(int(truth[min(int(round(u.t * 20)), len(truth) - 1)]), 1000)
        n += 1
        ok += u.position.document_id == 10 + piece and u.position.index == system
        if first is None and u.position.document_id == 10 + piece:
            first = u.t
    return (ok / n if n else 0.0), first


def test_engine_align_timeline_switch_and_repeat(setup) -> None:
    pieces, enc, lib = setup
    params = EngineParams(method="align")
    audio, truth = perform(pieces, [(2, s) for s in range(6)])
    updates = Engine(lib, enc, params).run(spectrogram(audio))
    acc, first = _accuracy(updates, truth)
    assert first is not None and first <= 12.0 and acc >= 0.75
    assert all(u.status is Status.IDENTIFIED and u.position.document_id == 12 for u in updates if u.t > 14.0)
    # a change of piece
    audio, truth = perform(pieces, [(0, s) for s in range(4)] + [(3, s) for s in range(4)])
    updates = Engine(lib, enc, params).run(spectrogram(audio))
    switch_t = 4 * 6 / 0.9
    assert all(u.position is not None and u.position.document_id == 13 for u in updates if u.t > switch_t + 10)
    assert _accuracy(updates, truth)[0] >= 0.7
    # a repeat back to the first system
    audio, truth = perform(pieces, [(1, 0), (1, 1), (1, 2), (1, 3), (1, 0), (1, 1), (1, 2)])
    updates = Engine(lib, enc, params).run(spectrogram(audio))
    repeat_t = 4 * 6 / 0.9
    back = [u.position.index for u in updates if repeat_t + 3.0 < u.t < repeat_t + 6.0 and u.position]
    assert back and all(i == 0 for i in back)
    assert _accuracy(updates, truth)[0] >= 0.7


def test_engine_align_silence_noise_and_strangers(setup) -> None:
    pieces, enc, lib = setup
    engine = Engine(lib, enc, EngineParams(method="align"))
    rng = np.random.default_rng(5)
    audio = np.concatenate([np.zeros(SR * 5, np.float32), (0.02 * rng.standard_normal(SR * 15)).astype(np.float32)])
    updates = engine.run(spectrogram(audio))
    assert updates and not any(u.status is Status.IDENTIFIED for u in updates)
    stranger = make_pieces(1, 4, seed=99)[0]
    updates = engine.run(spectrogram(render([c for s in stranger.chords for c in s], timbre=1.6)))
    assert sum(u.status is Status.IDENTIFIED for u in updates) <= 0.1 * len(updates)
    # silence after a piece: back to unknown, the paths forgotten
    played, _ = perform(pieces, [(0, 0), (0, 1), (0, 2)])
    updates = engine.run(spectrogram(np.concatenate([played, np.zeros(SR * 6, np.float32)])))
    assert any(u.status is Status.IDENTIFIED for u in updates)
    assert updates[-1].status is Status.SILENT and engine.aligner.D is None


def test_engine_align_user_jump(setup) -> None:
    pieces, enc, lib = setup
    engine = Engine(lib, enc, EngineParams(method="align"))
    audio, _ = perform(pieces, [(2, 0), (2, 1), (2, 2)])
    engine.run(spectrogram(audio))
    engine.jump_to(1, 4)  # the user clicks system 5 of piece 1
    u = engine.hop(100.0)
    assert u.status is Status.IDENTIFIED and u.position.document_id == 11 and u.position.index == 4


def test_engine_align_names_a_piece_only_when_it_leads_the_runner_up_by_the_margin(setup) -> None:
    pieces, enc, lib = setup
    dec = AlignDecision(temperature=1.0, unknown=-1e6, margin=MARGIN)
    engine = Engine(lib, enc, EngineParams(method="align", align_decision=dec))
    assert engine.unknown_score(np.array([5.0, 3.0, -np.inf])) == 3.0 + MARGIN
    assert engine.unknown_score(np.array([5.0, -np.inf, -np.inf])) == -1e6  # no runner-up: the level alone
    audio, _ = perform(pieces, [(2, s) for s in range(6)])
    spec = spectrogram(audio)
    engine.reset()
    named = []
    for i in range(0, len(spec), 10):
        for u in engine.push(spec[i : i + 10], i / 20):
            s = np.sort(engine.aligner.document_scores())
            if u.status is Status.IDENTIFIED:
                named.append((u.t, s[-1] - s[-2], u.position.document_id))
    assert named, "the played piece never led by the margin"
    assert all(lead > MARGIN for _, lead, _ in named)
    assert all(doc == 12 for _, _, doc in named)
    # with the absolute level alone (here: none) the piece is named as soon as the first hop leads
    loose = Engine(lib, enc, EngineParams(method="align", align_decision=replace(dec, margin=None)))
    first_loose = next(u.t for u in loose.run(spec) if u.status is Status.IDENTIFIED)
    assert first_loose < named[0][0]


MARGIN = 12.0


def test_hubness_takes_off_what_a_snippet_shares_with_all_audio() -> None:
    rng = np.random.default_rng(3)
    common = _unit(rng.standard_normal(32).astype(np.float32))
    # "audio in general" leans towards one direction; one snippet (7) sits right on it: a hub
    reference = _unit(common + 0.5 * rng.standard_normal((200, 32)).astype(np.float32) / np.sqrt(32) * 4)
    vecs = _unit(rng.standard_normal((40, 32)).astype(np.float32))
    vecs[7] = common
    h = hubness(vecs, reference, k=10)
    assert int(np.argmax(h)) == 7 and h[7] > np.median(h) + 0.3
    flat, x, doc_of_system = np.repeat(np.arange(4), 10), np.tile(np.arange(10) * 25, 4), np.array([0, 0, 1, 1])
    query = _unit(0.6 * vecs[20] + 0.8 * common)  # snippet 20's music plus what all audio has
    plain = SnippetAligner(vecs, flat, x, doc_of_system, 2, AlignParams())
    hubbed = SnippetAligner(vecs, flat, x, doc_of_system, 2, AlignParams(hub_weight=1.0), reference)
    assert int(np.argmax(plain.similarities(query))) == 7  # the hub wins without the correction
    assert int(np.argmax(hubbed.similarities(query))) == 20
    # no reference, or one of another model's width: no correction, no failure
    assert SnippetAligner(vecs, flat, x, doc_of_system, 2, AlignParams(hub_weight=1.0)).hub is None
    assert SnippetAligner(vecs, flat, x, doc_of_system, 2, AlignParams(hub_weight=1.0), reference[:, :16]).hub is None
