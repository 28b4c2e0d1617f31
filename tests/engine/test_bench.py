"""The identification benchmark's query making and scoring, on toy pieces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from engine_helpers import CHORD_S, CHORDS_PER_SYSTEM, ToyEncoder, build_library, make_pieces, perform, spectrogram

from companion.engine.bench import PieceAudio, build_engines, evaluate, make_queries, rank_of
from companion.engine.engine import Engine, EngineParams


def test_rank_is_pessimistic_on_ties() -> None:
    assert rank_of(np.array([0.5, 0.5, 0.1]), 1) == 2
    assert rank_of(np.array([0.0, 0.0, 0.0]), 0) == 3
    assert rank_of(np.array([0.2, 0.7, 0.1]), 1) == 1


def test_benchmark_scores_methods_side_by_side() -> None:
    enc = ToyEncoder()
    pieces = make_pieces(5, 6, seed=11)
    lib = build_library(pieces[:4], enc)  # piece 4 is not in the library
    sys_s = CHORDS_PER_SYSTEM * CHORD_S / 0.9
    audio_pieces = []
    for i, _ in enumerate(pieces):
        audio, _ = perform(pieces, [(i, s) for s in range(6)], seed=i)
        systems = [(s * sys_s, (s + 1) * sys_s, s) for s in range(6)]
        audio_pieces.append(PieceAudio(i if i < 4 else None, spectrogram(audio), systems))
    queries = make_queries(audio_pieces, per_piece=1, seed=0)
    kinds = {q.kind for q in queries}
    assert kinds == {"excerpt", "repeat", "stranger"}
    rep = next(q for q in queries if q.kind == "repeat")
    assert (np.diff(rep.truth) < 0).any()  # the performance jumps back
    engines = build_engines(lib, enc, EngineParams())
    assert set(engines) == {"votes", "passages", "full", "align"}
    observer = Engine(lib, enc)
    obs = [observer.observe_all(q.spec) for q in queries]
    stats = evaluate(engines, queries, obs)
    full = stats["full"].summary()
    assert set(full) >= {"2s", "5s", "10s", "20s", "30s", "time_to_identify", "system_right_after_id",
                         "false_identification"}
    assert full["10s"]["n"] == 4 and full["30s"]["R@1"] == 1.0
    assert full["false_identification"] == 0.0 and full["strangers"] == 1
    assert full["system_right_after_id"] >= 0.6
    assert full["time_to_identify"]["median_s"] <= 8.0
    align = stats["align"].summary()
    assert align["30s"]["R@1"] == 1.0 and align["false_identification"] == 0.0
    assert align["system_right_after_id"] >= 0.6
    assert align["time_to_identify"]["median_s"] <= 12.0
    # over whole streams the hops before identification count as not followed
    assert 0 < align["system_right_overall"] < align["system_right_after_id"]
    # what was shown after identification: the shares add up, "right" is the system accuracy
    after = align["after_id"]
    assert set(after) == {"right", "blank", "previous_system", "next_system", "other_system", "wrong_piece"}
    assert abs(sum(after.values()) - 1.0) < 0.01 and after["right"] == align["system_right_after_id"]


def test_what_an_update_showed_is_classified_against_the_system_played() -> None:
    from companion.engine.bench import _shown
    from companion.engine.results import EngineUpdate, Position, Status

    def shown(doc: int, index: int) -> EngineUpdate:
        return EngineUpdate(1.0, Status.IDENTIFIED, (), Position(doc, "p.pdf", "t", 0, index, index, 0.9), 0.1)

    assert _shown(shown(7, 3), 7, 3) == "right"
    assert _shown(shown(7, 2), 7, 3) == "previous_system"
    assert _shown(shown(7, 4), 7, 3) == "next_system"
    assert _shown(shown(7, 9), 7, 3) == "other_system"
    assert _shown(shown(8, 3), 7, 3) == "wrong_piece"
    assert _shown(EngineUpdate(1.0, Status.UNSURE, (), None, 0.5), 7, 3) == "blank"


def test_platt_calibration_fixes_overconfidence() -> None:
    from companion.engine.bench import expected_calibration_error, fit_platt

    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 4000)
    true_p = 0.5 + (p - 0.5) * 0.5  # the model says 0.9 when it is right 70% of the time
    y = (rng.random(4000) < true_p).astype(float)
    cal = fit_platt(p, y)
    assert expected_calibration_error(cal(p), y) < 0.5 * expected_calibration_error(p, y)
    assert cal(np.array([0.9]))[0] < 0.85


def test_repeat_queries_stream_across_the_recordings_own_jump() -> None:
    fps = 20.0
    spec = np.arange(2000, dtype=np.float32)[:, None] * np.ones((1, 92), np.float32)  # frame i holds i
    order = [0, 1, 2, 3, 1, 2, 3, 4, 5]  # played up to system 3, back to 1, on to the end
    systems = [(10.0 * j, 10.0 * (j + 1), k) for j, k in enumerate(order)]
    piece = PieceAudio(0, spec[: int(90 * fps)], systems)
    queries = [q for q in make_queries([piece], per_piece=4, seed=3) if q.kind == "repeat"]
    assert len(queries) == 2
    for q in queries:
        first = int(q.spec[0, 0])
        assert np.array_equal(q.spec[:, 0], np.arange(first, first + len(q.spec)))  # one stretch, no splice
        assert (np.diff(q.truth) < 0).sum() == 1 and q.truth[0] in (1, 2)


def test_align_fit_returns_what_it_measured_and_beats_the_defaults() -> None:
    from dataclasses import replace

    from companion.engine.bench import fit_align, objective, reference_embeddings

    enc = ToyEncoder()
    pieces = make_pieces(4, 6, seed=5)
    lib = build_library(pieces[:3], enc)  # piece 3 is the stranger
    sys_s = CHORDS_PER_SYSTEM * CHORD_S / 0.9
    audio_pieces = []
    for i, _ in enumerate(pieces):
        audio, _ = perform(pieces, [(i, s) for s in range(6)], seed=20 + i)
        audio_pieces.append(PieceAudio(i if i < 3 else None, spectrogram(audio),
                                       [(s * sys_s, (s + 1) * sys_s, s) for s in range(6)]))
    queries = make_queries(audio_pieces, per_piece=1, seed=1, strangers_per_piece=3)
    assert sum(q.kind == "stranger" for q in queries) == 3
    observer = Engine(lib, enc)
    obs = [observer.observe_all(q.spec) for q in queries]
    reference = reference_embeddings(obs)
    assert reference.ndim == 2 and reference.shape[1] == enc.w.shape[1] and len(reference) > 10
    # one path recursion and one hub weight (the full grid takes a minute on these toys)
    score, params, notes = fit_align(lib, enc, EngineParams(), queries, obs, reference,
                                     decays=(0.97,), jumps=(6.0,), hubs=(1.0,))
    assert params.method == "align" and notes["objective"] == round(score, 4)
    again, _ = objective(evaluate({"align": Engine(lib, enc, params, reference)}, queries, obs)["align"])
    assert again == score  # the stored parameters are the ones that scored
    default, _ = objective(evaluate({"align": Engine(lib, enc, replace(EngineParams(), method="align"))},
                                    queries, obs)["align"])
    assert score >= default
    assert params.align_decision.release_threshold <= EngineParams().align_decision.release_threshold


def test_fit_strangers_tile_the_whole_piece():
    fps = 20.0
    spec = np.zeros((int(95 * fps), 92), np.float32)
    spec[:, 0] = np.arange(len(spec))  # frame numbers: where each window starts
    stranger = PieceAudio(None, spec, [])
    queries = make_queries([stranger], per_piece=2, seed=0, stranger_hop_s=10.0)
    assert [q.kind for q in queries] == ["stranger"] * 7  # every window lies inside the 95 s
    assert [int(q.spec[0, 0]) for q in queries] == [int(s * fps) for s in range(0, 61, 10)]
    assert all(len(q.spec) == int(30 * fps) for q in queries)
    random = make_queries([stranger], per_piece=2, seed=0, strangers_per_piece=5)
    assert len(random) == 5


def test_recorded_path_recursion_replays_to_the_same_scores() -> None:
    """The fit replays a recorded recursion instead of running it: it must score exactly the same."""
    from dataclasses import replace

    from companion.engine.align import AlignTrace
    from companion.engine.bench import record_align_traces

    enc = ToyEncoder()
    pieces = make_pieces(4, 6, seed=7)
    lib = build_library(pieces[:3], enc)
    sys_s = CHORDS_PER_SYSTEM * CHORD_S / 0.9
    audio_pieces = []
    for i, _ in enumerate(pieces):
        audio, _ = perform(pieces, [(i, s) for s in range(6)], seed=40 + i)
        spec = spectrogram(audio)
        spec[len(spec) // 2 : len(spec) // 2 + 30] = 0.0  # a pause: the recursion resets mid-query
        audio_pieces.append(PieceAudio(i if i < 3 else None, spec, [(s * sys_s, (s + 1) * sys_s, s) for s in range(6)]))
    queries = make_queries(audio_pieces, per_piece=1, seed=3, strangers_per_piece=2)
    obs = [Engine(lib, enc).observe_all(q.spec) for q in queries]
    params = replace(EngineParams(), method="align")
    traces = record_align_traces(Engine(lib, enc, params), obs)
    assert len(traces) == len(queries) and all(isinstance(t, AlignTrace) for t in traces)
    for dec in (params.align_decision, replace(params.align_decision, margin=1.0, temperature=0.5),
                replace(params.align_decision, switch_margin=2.0)):
        p = replace(params, align_decision=dec)
        live = evaluate({"align": Engine(lib, enc, p)}, queries, obs)["align"].summary()
        replayed = evaluate({"align": Engine(lib, enc, p)}, queries, obs, {"align": traces})["align"].summary()
        assert replayed == live
    # a trace is one query's record: asking it for more updates than it saw is an error, not a guess
    short = AlignTrace(np.zeros((1, 3)), np.zeros((1, 3), np.int64))
    short.update(np.zeros(4))
    try:
        short.update(np.zeros(4))
    except IndexError:
        pass
    else:
        raise AssertionError("an exhausted trace must not replay")


def test_compute_benchmark_sizes_its_library_for_the_installed_models(tmp_path):
    """An ensemble's 48-d snippet vectors (two members here) must fit the synthetic library it searches."""
    from companion.config import load_config
    from companion.engine.bench import measure_compute
    from companion.models.checkpoint import save_checkpoint
    from companion.models.ensemble import build_ensemble
    from companion.models.passage import PassageModel
    from tests.models.test_ensemble import member

    models = tmp_path / "models"
    models.mkdir()
    save_checkpoint(member(1, 32), tmp_path / "a.pt")
    save_checkpoint(member(2, 16), tmp_path / "b.pt")
    build_ensemble([tmp_path / "a.pt", tmp_path / "b.pt"], models / "snippet.pt")
    save_checkpoint(PassageModel(), models / "passage.pt")
    out = measure_compute(load_config(models_dir=models), n_pages=20, hops=3)
    assert out["weights"] == "shipped" and out["snippet_dim"] == 48
    assert all(out[m]["hops"] == 3 and out[m]["cpu_median_ms"] > 0 for m in ("votes", "full", "align"))


def test_a_piece_that_leaves_the_benchmark_library_leaves_its_folder(tmp_path, monkeypatch) -> None:
    """The set changed (renderer 4 moved Op. 9 No. 1 out of the library): a PDF from an earlier
    build must not stay in the folder the benchmark indexes."""
    import companion.data.pieces as pieces_mod
    from companion.engine import bench

    def fake_render(score, out_dir, name, pdf=True, **kw):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{name}.ogg").write_bytes(b"")
        pdf_path = ""
        if pdf:
            pdf_path = str(out_dir / f"{name}.pdf")
            (out_dir / f"{name}.pdf").write_bytes(b"%PDF-1.4")
            pieces_mod.sidecar(Path(pdf_path)).write_text('{"systems": []}')
        return pieces_mod.RenderedPiece(name, "", pdf_path, str(out_dir / f"{name}.ogg"), [(0.0, 1.0, 0)], 1, str(score))

    monkeypatch.setattr(pieces_mod, "render_piece", fake_render)
    for name in ("a", "b"):
        (tmp_path / "kern").mkdir(exist_ok=True)
        (tmp_path / "kern" / f"{name}.krn").write_text("**kern\n*-\n")
    monkeypatch.setattr(bench, "BENCH_SET", (("eval", "a", True), ("eval", "b", True), ("fit", "a", False)))
    bench.build_bench_set(tmp_path / "set", tmp_path / "kern")
    assert sorted(p.name for p in (tmp_path / "set" / "library_pdfs").glob("*.pdf")) == ["a.pdf", "b.pdf"]
    monkeypatch.setattr(bench, "BENCH_SET", (("eval", "a", True), ("eval", "b", False), ("fit", "a", False)))
    monkeypatch.setattr(bench, "RENDERER_VERSION", bench.RENDERER_VERSION + 1)
    paths = bench.build_bench_set(tmp_path / "set", tmp_path / "kern")
    assert sorted(p.name for p in paths["pdfs"].iterdir() if p.suffix == ".pdf") == ["a.pdf"]
    assert not (paths["pdfs"] / "b.systems.json").exists()


def test_the_benchmark_set_plays_no_library_work_as_a_stranger_and_keeps_fit_and_evaluation_apart() -> None:
    """Each library work once; no stranger is another edition of a library work (it would be a right
    answer counted as a false one); no scanned work (the scans are in the library); the fit tunes the
    decision on music the evaluation never plays."""
    import re

    from companion.data.works import music_identity
    from companion.engine.bench import BENCH_SET
    from companion.evaluation.scans import scan_work_for

    def ident(source: str) -> str:
        return music_identity(source) or source

    library = [ident(src) for _, src, in_lib in BENCH_SET if in_lib]
    strangers = {ident(src) for _, src, in_lib in BENCH_SET if not in_lib}
    assert len(library) == len(set(library))
    assert not strangers & set(library)
    by_split = {split: {ident(src) for s, src, _ in BENCH_SET if s == split} for split in ("eval", "fit")}
    assert not by_split["eval"] & by_split["fit"]
    for work in set(library) | strangers:
        m = re.fullmatch(r"chopin-op(\d+)(?:-no(\d+))?", work)
        if m:
            key = f"op{int(m[1])}" + (f"-{int(m[2]):03d}" if m[2] else "")
            assert scan_work_for(key) is None, work
    assert scan_work_for("op64-002") is not None  # the check can fail


def test_the_fit_objective_does_not_buy_speed_with_strangers_named_over_its_cap() -> None:
    """A decision that names pieces 6 s sooner but names 7 of 257 strangers (2.7%, the fit that then
    named 7.6% in the evaluation) must lose to a slower one that names none; below the cap, speed wins."""
    from companion.engine.bench import FALSE_ID_CAP, MethodStats, objective

    def stats(tti: float, false_ids: int, strangers: int = 257) -> MethodStats:
        return MethodStats(ranks={10.0: [1, 1, 2, 1]}, tti=[tti] * 4, follow_ok=40, follow_n=50, stream_hops=100,
                           false_ids=false_ids, strangers=strangers)

    fast_loose, slow_safe = objective(stats(8.0, 7))[0], objective(stats(14.0, 0))[0]
    assert slow_safe > fast_loose
    within = int(FALSE_ID_CAP * 257)  # 2 of 257: under the cap, only the linear price
    assert objective(stats(8.0, within))[0] > slow_safe


def test_let_go_measures_how_long_a_named_piece_outlives_its_music() -> None:
    from dataclasses import replace

    from companion.engine.bench import let_go_times
    from companion.engine.engine import AlignDecision

    enc = ToyEncoder()
    pieces = make_pieces(4, 6, seed=5)
    lib = build_library(pieces[:3], enc)  # piece 3 is the stranger
    sys_s = CHORDS_PER_SYSTEM * CHORD_S / 0.9
    audio_pieces = []
    for i, _ in enumerate(pieces):
        audio, _ = perform(pieces, [(i, s) for s in range(6)], seed=20 + i)
        audio_pieces.append(PieceAudio(i if i < 3 else None, spectrogram(audio),
                                       [(s * sys_s, (s + 1) * sys_s, s) for s in range(6)]))
    queries = make_queries(audio_pieces, per_piece=1, seed=1, strangers_per_piece=3)
    observer = Engine(lib, enc)
    obs = [observer.observe_all(q.spec) for q in queries]
    streams = sum(q.doc_index is not None and not (q.kind == "excerpt" and q.length < 30) for q in queries)
    # a decision that lets go as soon as the piece is not sure
    engine = Engine(lib, enc, EngineParams(method="align", align_decision=AlignDecision(unknown=8.0)))
    let_go = let_go_times(engine, queries, obs)
    assert 0 < let_go["streams"] <= streams and let_go["kept"] == 0
    assert 0 < let_go["median_s"] <= let_go["p90_s"] < 30
    # one that names whatever leads, however weakly, never lets go
    sticky = engine.with_params(align_decision=replace(AlignDecision(unknown=-1e6), identify_threshold=0.0,
                                                       release_threshold=0.0))
    held = let_go_times(sticky, queries, obs)
    assert held["streams"] == streams and held["kept"] == held["streams"]
    assert held["median_s"] == float("inf")
