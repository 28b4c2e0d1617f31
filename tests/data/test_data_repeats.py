"""Repeats: the audio takes them and every notehead maps to each time it sounds.

Small pieces written here: a kern piece with a repeat and first/second endings
(expansion list ``*>[A,A1,A,A2,B]``), the same piece without the list (kept in
notated order and marked), and a LilyPond piece with ``\\repeat volta 2`` and
``\\alternative``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from companion.data.checks import monotonic_score, sounding_pass
from companion.data.engrave_lilypond import unfold_segments
from companion.data.store import HEAD_DTYPE, SYSTEM_DTYPE, _first_visits

from score_sources import tools_missing

# 120 quarter notes per minute: a 4/4 bar is 2 s. Bars 1-2 (A) are repeated,
# bar 3 is the first ending, bar 4 the second, bar 5 (B) closes: played
# A A1 A A2 B = 7 bars = 14 s; in notated order 5 bars = 10 s.
KERN_REPEAT = """!!!COM: Tester, Tom
!!!OTL: Kern repeat piece
**kern\t**kern
*>[A,A1,A,A2,B]\t*>[A,A1,A,A2,B]
*>A\t*>A
*clefF4\t*clefG2
*M4/4\t*M4/4
*MM120\t*MM120
=1\t=1
4C\t4c
4E\t4e
4G\t4g
4c\t4cc
=2\t=2
4A\t4a
4F\t4f
4D\t4d
4B\t4b
=3\t=3
*>A1\t*>A1
4C\t4cc
4G\t4g
2E\t2e
=4:|!\t=4:|!
*>A2\t*>A2
4D\t4dd
4A\t4a
2F\t2f
=5\t=5
*>B\t*>B
2G\t2g
2C\t2c
==\t==
*-\t*-
"""
KERN_NOTES = {"A": 16, "A1": 6, "A2": 6, "B": 4}

# Same shape in LilyPond, 4/4 at 120: A (2 bars) A1 A A2 B = 14 s.
LILYPOND_REPEAT = r"""\version "2.24.0"
\header { title = "LilyPond repeat piece" composer = "Tester" }
\score {
  \new PianoStaff <<
    \new Staff \relative c'' {
      \time 4/4 \tempo 4 = 120
      \repeat volta 2 { c4 d e f | g a b c | }
      \alternative { { d c b a | } { g f e d | } }
      c1 \bar "|."
    }
    \new Staff \relative c {
      \clef bass \time 4/4
      \repeat volta 2 { c1 | g' | }
      \alternative { { f | } { e | } }
      c1
    }
  >>
  \layout { }
}
"""


def _verovio_missing() -> str | None:
    try:
        import verovio  # noqa: F401
    except ImportError:
        return "verovio not installed"
    return None


def test_kern_expansion_list_plays_the_repeat_and_both_endings(tmp_path: Path) -> None:
    if _verovio_missing():
        pytest.skip(_verovio_missing())
    from companion.data import engrave_verovio

    src = tmp_path / "repeat.krn"
    src.write_text(KERN_REPEAT, encoding="utf-8")
    score = engrave_verovio.engrave(src, {}, 600)
    assert score.repeats == "expanded"
    heads = {h.note_id for h in score.noteheads}
    times = Counter(e.note_id for e in score.events)
    assert set(times) == heads  # every sounding comes back to an engraved notehead
    assert sum(KERN_NOTES.values()) == len(heads)
    assert sorted(Counter(times.values()).items()) == [(1, 16), (2, 16)]  # A twice, endings and B once
    assert max(e.offset for e in score.events) == pytest.approx(14.0, abs=0.01)
    # A note of bar 1 sounds at the start and again after the first ending (6 s later).
    first = min(score.events, key=lambda e: e.onset)
    again = sorted(e.onset for e in score.events if e.note_id == first.note_id)
    assert again == pytest.approx([0.0, 6.0], abs=0.01)
    # A (0-4 s), first ending (4-6 s), A again (6-10 s), second ending (10-12 s), B (12-14 s).
    once = sorted({e.onset for e in score.events if times[e.note_id] == 1})
    assert once == pytest.approx([4.0, 4.5, 5.0, 10.0, 10.5, 11.0, 12.0, 13.0], abs=0.01)


def test_kern_repeat_without_expansion_list_is_read_from_the_bar_lines(tmp_path: Path) -> None:
    """Without ``*>[...]`` verovio plays notated order; the repeat bar line and
    the two endings then give the same performance as the expansion list."""
    if _verovio_missing():
        pytest.skip(_verovio_missing())
    from companion.data import engrave_verovio

    with_list = tmp_path / "list.krn"
    with_list.write_text(KERN_REPEAT, encoding="utf-8")
    no_list = tmp_path / "bars.krn"
    no_list.write_text("".join(l + "\n" for l in KERN_REPEAT.splitlines() if not l.startswith("*>[")),
                       encoding="utf-8")
    a = engrave_verovio.engrave(with_list, {}, 400)
    b = engrave_verovio.engrave(no_list, {}, 400)
    assert (a.repeats, a.params["repeat_source"]) == ("expanded", "expansion")
    assert (b.repeats, b.params["repeat_source"]) == ("expanded", "bar lines")
    # (Ids are line numbers in kern, so they differ by the removed line.)
    assert sorted((round(e.onset, 3), e.pitch) for e in a.events) == sorted((round(e.onset, 3), e.pitch) for e in b.events)
    assert Counter(Counter(e.note_id for e in b.events).values()) == {1: 16, 2: 16}
    assert {h.note_id for h in b.noteheads} == {e.note_id for e in b.events}
    assert b.bar_times == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0])  # 7 bars played


def test_kern_repeat_with_da_capo_words_keeps_notated_order_and_says_why(tmp_path: Path) -> None:
    if _verovio_missing():
        pytest.skip(_verovio_missing())
    from companion.data import engrave_verovio

    src = tmp_path / "dc.krn"
    lines = [l for l in KERN_REPEAT.splitlines() if not l.startswith("*>[")]
    lines.insert(lines.index("==\t=="), "!LO:TX:t=D.C. al Fine\t!")
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    score = engrave_verovio.engrave(src, {}, 400)
    assert score.repeats == "not-expanded: D.C./D.S. jump written only as text"
    assert Counter(Counter(e.note_id for e in score.events).values()) == {1: 32}
    assert max(e.offset for e in score.events) == pytest.approx(10.0, abs=0.01)


def test_repeat_status_distrusts_jumps_written_only_as_words() -> None:
    from companion.data.engrave_verovio import repeat_status

    mei = '<measure right="rptend"/><dir>D.C. al Fine</dir>'
    assert repeat_status(mei, "<words>D.C. al Fine</words>", expanded=True).startswith("not-expanded: D.C.")
    assert repeat_status(mei, '<words>D.C.</words><sound dacapo="yes"/>', expanded=True) == "expanded"
    assert repeat_status('<measure right="rptend"/>', "", expanded=False).startswith("not-expanded")
    assert repeat_status("<measure/>", "", expanded=False) == "none"


@pytest.mark.parametrize("marks, spans, status", [
    ([], [(0.0, float("inf"))], "none"),
    # \repeat volta 2 { A } from 0.5 to 1.5 whole notes.
    ([("rstart", 0.5, 2, "none"), ("rend", 1.5, 1, "none")],
     [(0.0, 1.5), (0.5, float("inf"))], "expanded"),
    # With two alternatives [2, 2.5) and [2.5, 3); the events come once per staff.
    ([("rstart", 0.0, 2, "none"), ("volta", 2.0, -1, "1"), ("volta", 2.5, 1, "1"), ("rend", 2.5, 1, "none"),
      ("volta", 2.5, -1, "2"), ("volta", 3.0, 1, "2")] * 2,
     [(0.0, 2.5), (0.0, 2.0), (2.5, float("inf"))], "expanded"),
    # \repeat volta 3 with \volta 1,2 and \volta 3 alternatives.
    ([("rstart", 0.0, 3, "none"), ("volta", 1.0, -1, "1,2"), ("volta", 2.0, 1, "1,2"), ("rend", 2.0, 2, "none"),
      ("volta", 2.0, -1, "3"), ("volta", 3.0, 1, "3")],
     [(0.0, 2.0), (0.0, 2.0), (0.0, 1.0), (2.0, float("inf"))], "expanded"),
    # A repeat, then a section whose ":|" has no start of its own (returns to the
    # first repeat's end) with first and second endings.
    ([("rstart", 1.0, 2, "none"), ("rend", 2.0, 1, "none"), ("volta", 3.0, -1, "1"), ("volta", 4.0, 1, "1"),
      ("rend", 4.0, 1, "none"), ("volta", 4.0, -1, "2"), ("volta", 5.0, 1, "2")],
     [(0.0, 2.0), (1.0, 4.0), (2.0, 3.0), (4.0, float("inf"))], "expanded"),
    # Two repeats in a row.
    ([("rstart", 0.0, 2, "none"), ("rend", 1.0, 1, "none"), ("rstart", 1.0, 2, "none"), ("rend", 2.0, 1, "none")],
     [(0.0, 1.0), (0.0, 2.0), (1.0, float("inf"))], "expanded"),
])
def test_unfold_segments_plays_like_unfold_repeats(marks, spans, status) -> None:
    assert unfold_segments(marks) == (spans, status)


def test_unfold_segments_refuses_jumps_and_nesting() -> None:
    spans, status = unfold_segments([("rstart", 0.0, 2, "none"), ("rend", 1.0, 1, "none"),
                                     ("jump", 2.0, 0, "dal-segno")])
    assert spans == [(0.0, float("inf"))] and status.startswith("not-expanded: dal-segno")
    spans, status = unfold_segments([("rstart", 0.0, 2, "none"), ("rstart", 0.5, 2, "none"),
                                     ("rend", 1.0, 1, "none"), ("rend", 2.0, 1, "none")])
    assert spans == [(0.0, float("inf"))] and status == "not-expanded: nested repeats"


def test_lilypond_volta_repeat_maps_each_notehead_to_every_sounding(tmp_path: Path) -> None:
    if tools_missing():
        pytest.skip(tools_missing())
    from companion.data import engrave_lilypond

    src = tmp_path / "repeat.ly"
    src.write_text(LILYPOND_REPEAT, encoding="utf-8")
    score = engrave_lilypond.engrave(src, {}, 600)
    assert score.repeats == "expanded"
    assert score.params["unjoined_noteheads"] == 0
    heads = {h.note_id for h in score.noteheads}
    times = Counter(e.note_id for e in score.events)
    assert set(times) == heads and len(heads) == 22  # 8 + 4 + 4 + 1 upper, 2 + 1 + 1 + 1 lower
    assert sorted(Counter(times.values()).items()) == [(1, 12), (2, 10)]
    assert max(e.offset for e in score.events) == pytest.approx(14.0, abs=0.01)
    first = min(score.events, key=lambda e: (e.onset, -e.pitch))
    assert sorted(e.onset for e in score.events if e.note_id == first.note_id) == pytest.approx([0.0, 6.0])


def _heads(rows: list[tuple]) -> np.ndarray:
    return np.array([(n, 0, s, x, 0.0, t, 60) for n, s, x, t in rows], dtype=HEAD_DTYPE)


def test_monotonic_check_is_per_sounding_pass() -> None:
    # System 0 holds notes 0-3 (x 100..400) played twice; a wrong alignment
    # (second pass backwards) must still be caught.
    good = _heads([(n, 0, 100.0 * (n + 1), t) for n, t in [(0, 0), (1, 1), (2, 2), (3, 3),
                                                          (0, 4), (1, 5), (2, 6), (3, 7)]])
    assert sounding_pass(good).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert monotonic_score(good) == 1.0
    bad = _heads([(n, 0, 100.0 * (n + 1), t) for n, t in [(0, 0), (1, 1), (2, 2), (3, 3),
                                                         (3, 4), (2, 5), (1, 6), (0, 7)]])
    assert monotonic_score(bad) < 0.85


def test_system_passage_is_its_first_visit_not_the_whole_repeat() -> None:
    # Systems 0 and 1 repeated together, then system 2: 0 [0,4) 1 [4,8) 0 [8,12) 1 [12,16) 2 [16,20).
    rows = []
    for start, system in [(0, 0), (4, 1), (8, 0), (12, 1), (16, 2)]:
        rows += [(system * 10 + k, system, 10.0 * k, start + k) for k in range(4)]
    heads = _heads(rows)
    systems = np.zeros(3, dtype=SYSTEM_DTYPE)
    systems["start"] = systems["end"] = np.nan
    _first_visits(heads, systems, last_offset=20.0)
    assert systems["start"].tolist() == [0.0, 4.0, 16.0]
    assert systems["end"][:2].tolist() == [4.0, 8.0]  # not 16.0: the repeat is not part of system 1's passage
    assert systems["end"][2] == pytest.approx(20.0)


@pytest.fixture(scope="module")
def repeat_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    why = tools_missing()
    if why:
        pytest.skip(why)
    from companion.data import store
    from companion.data.build import BuildOptions, build_piece, piece_key
    from companion.data.sources import find_sources

    root = tmp_path_factory.mktemp("repeat-src")
    src = root / "scores"
    (src / "ly" / "repeat").mkdir(parents=True)
    (src / "kern-repeat.krn").write_text(KERN_REPEAT, encoding="utf-8")
    (src / "ly" / "repeat" / "lily-repeat.ly").write_text(LILYPOND_REPEAT, encoding="utf-8")
    out = root / "corpus"
    (out / "pieces").mkdir(parents=True)
    opts = BuildOptions(out=out, soundfonts=("FluidR3_GM.sf2", "TimGM6mb.sf2"),
                        held_out_soundfont="TimGM6mb.sf2", page_width_px=800)
    # In this process (no worker pool): the pool is tested in test_data_build.
    results = [build_piece(s, piece_key(s, opts), "train", opts) for s in find_sources([src])]
    store.write_index(out, evaluation=False)
    return {"out": out, "results": results}


def test_built_pieces_have_one_row_per_sounding_and_pass_the_checks(repeat_corpus: dict) -> None:
    assert [r["ok"] for r in repeat_corpus["results"]] == [True, True], repeat_corpus["results"]
    index = json.loads((repeat_corpus["out"] / "index.json").read_text())
    assert index["by_repeats"] == {"expanded": 2}
    for piece in (repeat_corpus["out"] / "pieces").iterdir():
        meta = json.loads((piece / "meta.json").read_text())
        heads = np.load(piece / "noteheads.npy")
        assert meta["repeats"] == "expanded"
        assert meta["check"]["passed"], meta["check"]
        per_head = Counter(Counter(heads["note"].tolist()).values())
        # 16 (kern) or 10 (LilyPond) noteheads of the repeated bars have two rows.
        assert per_head[2] == (16 if meta["engraver"] == "verovio" else 10)
        assert meta["n_pairs"] == meta["n_noteheads"] + per_head[2]
        # The audio lasts the notated 14 s (10 s without the repeat) at the performance's
        # tempo, plus 0.5 s lead-in and 1 s tail; the tempo curve moves it a little.
        played = (meta["duration_s"] - 1.5) * meta["performance"]["tempo_factor"]
        assert 14.0 * 0.85 < played < 14.0 * 1.15
        # Both soundings of a repeated notehead are in the audio, 6 notated seconds apart.
        twice = [n for n, c in Counter(heads["note"].tolist()).items() if c == 2]
        gaps = [float(np.ptp(heads["onset"][heads["note"] == n])) for n in twice]
        assert all(6.0 / 1.25 * 0.8 < g < 6.0 / 0.8 * 1.2 for g in gaps)


def test_repeat_jumps_are_found_where_the_performance_goes_back() -> None:
    from companion.data.inspect import repeat_jumps

    # A (notes 0-3) A1 (4-5) A again A2 (6-7) B (8), one chord a second; the two hands of
    # the first chord of each pass 20 ms apart (jitter, still one chord).
    plan = [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (0, 6), (1, 7), (2, 8), (3, 9), (6, 10), (7, 11), (8, 12)]
    rows = [(n, 0, 10.0 * n, t) for n, t in plan] + [(100, 0, 0.0, 0.02), (100, 0, 0.0, 6.02)]
    jumps = repeat_jumps(_heads(rows))
    assert jumps == [(6.0, pytest.approx(0.01))]  # at 6 s, back to the music first heard at 0 s
    assert repeat_jumps(_heads([(n, 0, 10.0 * n, float(n)) for n in range(8)])) == []
    assert repeat_jumps(_heads([])) == []


def test_inspect_draws_every_sounding_and_the_repeat_jump(repeat_corpus: dict, tmp_path: Path) -> None:
    from PIL import Image

    from companion.data.inspect import JUMP_COLOUR, _colour, inspect_piece

    def close(pixel, colour, tol=3) -> bool:
        return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, colour))

    for piece in sorted((repeat_corpus["out"] / "pieces").iterdir()):
        heads = np.load(piece / "noteheads.npy")
        info = inspect_piece(piece, tmp_path / f"{piece.name}.png")
        img = np.asarray(Image.open(tmp_path / f"{piece.name}.png").convert("RGB"))
        twice = sum(c == 2 for c in Counter(heads["note"].tolist()).values())
        assert (info.noteheads, info.soundings, info.repeated) == (len(np.unique(heads["note"])), len(heads), twice)
        t0, t1 = float(heads["onset"].min()), float(heads["onset"].max())

        def colour(t: float) -> tuple:
            return tuple(_colour(np.array([(t - t0) / (t1 - t0)]))[0])

        yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
        for h in info.heads:
            x, y, onsets = h["x"], h["y"], h["onsets"]
            # the dot keeps the colour of the first sounding (not painted over by the repeat)
            assert close(img[int(round(y)), int(round(x))], colour(onsets[0])), (piece.name, h)
            if len(onsets) == 2:
                # a ring in the second sounding's colour
                d = np.hypot(xx - x, yy - y)
                ring = img[(d > info.radius + 1.5) & (d < info.radius + 3.5)]
                share = np.mean([close(p, colour(onsets[1]), tol=6) for p in ring])
                assert share > 0.3, (piece.name, h, share)
        # One jump back: at the first repeated sounding, to the piece's first onset.
        second = heads["onset"][sounding_pass(heads) == 1]
        (jump,) = info.jumps
        assert jump["time"] == pytest.approx(float(second.min()), abs=0.05)
        assert jump["target"] == pytest.approx(t0, abs=0.05)
        bar = img[info.spec_top + 12:, int(round(jump["x"]))]
        assert np.mean([close(p, JUMP_COLOUR) for p in bar]) > 0.9, piece.name


def test_lilypond_unfolding_matches_lilypond_unfold_repeats(tmp_path: Path) -> None:
    """Where every staff carries the repeat, our unfolding of the folded score
    sounds exactly what LilyPond's own ``\\unfoldRepeats`` interprets."""
    if tools_missing():
        pytest.skip(tools_missing())
    from companion.data import engrave_lilypond

    folded, unfolded = tmp_path / "folded.ly", tmp_path / "unfolded.ly"
    folded.write_text(LILYPOND_REPEAT, encoding="utf-8")
    unfolded.write_text(LILYPOND_REPEAT.replace(r"\new PianoStaff", r"\unfoldRepeats \new PianoStaff"),
                        encoding="utf-8")
    ours = engrave_lilypond.engrave(folded, {}, 400)
    reference = engrave_lilypond.engrave(unfolded, {}, 400)
    assert reference.repeats == "none"  # nothing left to unfold
    assert (sorted((round(e.onset, 3), e.pitch) for e in ours.events)
            == sorted((round(e.onset, 3), e.pitch) for e in reference.events))


TWO_SCORES = r"""\version "2.24.0"
\header { title = "Two movements" composer = "Tester" }
\score {
  \relative c'' { \time 4/4 \tempo 4 = 120 c4 d e f | g a b c | }
  \header { piece = "I" }
  \layout { }
}
\score {
  \relative c'' { \time 4/4 \tempo 4 = 120 \repeat volta 2 { e4 d c d } c1 \bar "|." }
  \header { piece = "II" }
  \layout { }
}
"""


def test_lilypond_movements_play_one_after_another(tmp_path: Path) -> None:
    """Each \\score restarts at moment 0: the second movement (with its repeat)
    must follow the first, and its systems must not merge with the first's."""
    if tools_missing():
        pytest.skip(tools_missing())
    from companion.data import engrave_lilypond
    from companion.data.build import has_repeat_hints
    from companion.data.sources import describe

    src = tmp_path / "two.ly"
    src.write_text(TWO_SCORES, encoding="utf-8")
    score = engrave_lilypond.engrave(src, {}, 400)
    assert score.repeats == "expanded"
    assert len(score.systems) == 2 and score.systems[0].y1 < score.systems[1].y0
    system_of = {h.note_id: h.system for h in score.noteheads}
    timeline = sorted((round(e.onset, 3), system_of[e.note_id]) for e in score.events)
    first = [t for t, s in timeline if s == 0]
    second = [t for t, s in timeline if s == 1]
    assert first == [0.5 * k for k in range(8)]  # 4 s of movement I
    # Movement II after a 2 s gap: 4 quarters twice, then the whole note.
    assert second == [6.0 + 0.5 * k for k in range(8)] + [10.0]
    # Such files are rebuilt even without a repeat (their movements used to overlap).
    plain = tmp_path / "plain.ly"
    plain.write_text(TWO_SCORES.replace(r"\repeat volta 2 ", ""), encoding="utf-8")
    one = tmp_path / "one.ly"
    one.write_text(TWO_SCORES[:TWO_SCORES.rindex(r"\score")], encoding="utf-8")
    assert has_repeat_hints(describe(plain)) and not has_repeat_hints(describe(one))


def _musicxml(dacapo_sound: bool) -> str:
    """Three 4/4 bars at 120: |: C D E F | G A B C :| D E (half notes) D.C."""
    def note(step: str, octave: int = 4, dur: int = 1, kind: str = "quarter") -> str:
        return (f"<note><pitch><step>{step}</step><octave>{octave}</octave></pitch>"
                f"<duration>{dur}</duration><type>{kind}</type></note>")

    sound = '<sound dacapo="yes"/>' if dacapo_sound else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
<part-list><score-part id="P1"><part-name>Piano</part-name></score-part></part-list>
<part id="P1">
<measure number="1"><attributes><divisions>1</divisions><key><fifths>0</fifths></key>
<time><beats>4</beats><beat-type>4</beat-type></time><clef><sign>G</sign><line>2</line></clef></attributes>
<direction placement="above"><direction-type><metronome><beat-unit>quarter</beat-unit>
<per-minute>120</per-minute></metronome></direction-type><sound tempo="120"/></direction>
{"".join(note(s) for s in "CDEF")}</measure>
<measure number="2">{"".join(note(s) for s in "GAB")}{note("C", 5)}
<barline location="right"><bar-style>light-heavy</bar-style><repeat direction="backward"/></barline></measure>
<measure number="3">{note("D", 5, 2, "half")}{note("E", 5, 2, "half")}
<direction placement="below"><direction-type><words>D.C.</words></direction-type>{sound}</direction>
<barline location="right"><bar-style>light-heavy</bar-style></barline></measure>
</part>
</score-partwise>
"""


def test_musicxml_da_capo_is_taken_only_when_encoded(tmp_path: Path) -> None:
    if _verovio_missing():
        pytest.skip(_verovio_missing())
    from companion.data import engrave_verovio

    # <sound dacapo>: bars 1-2 twice, bar 3, D.C. to the end without the repeat = 8 bars.
    encoded = tmp_path / "dacapo.musicxml"
    encoded.write_text(_musicxml(True), encoding="utf-8")
    score = engrave_verovio.engrave(encoded, {}, 400)
    assert score.repeats == "expanded"
    assert sorted(Counter(Counter(e.note_id for e in score.events).values()).items()) == [(2, 2), (3, 8)]
    assert max(e.offset for e in score.events) == pytest.approx(16.0, abs=0.01)
    # "D.C." only as words: verovio would take the repeat but not the jump, so
    # the piece is reloaded in notated order (3 bars) and marked.
    words = tmp_path / "words.musicxml"
    words.write_text(_musicxml(False), encoding="utf-8")
    score = engrave_verovio.engrave(words, {}, 400)
    assert score.repeats == "not-expanded: D.C./D.S. jump written only as text"
    assert Counter(Counter(e.note_id for e in score.events).values()) == {1: 10}
    assert max(e.offset for e in score.events) == pytest.approx(6.0, abs=0.01)
    assert {h.note_id for h in score.noteheads} == {e.note_id for e in score.events}


# Repeats drawn by hand (old Mutopia style): \bar ".|:" / ":|." and volta
# brackets through Score.repeatCommands. In 2/4 at 90 quarters per minute.
LILYPOND_HAND_REPEATS = r"""\version "2.24.0"
\score {
  \relative c'' { \time 2/4 c4 d \bar ".|:" e f | g a \bar ":|." b c
    \set Score.repeatCommands = #'((volta "1.")) d e
    \set Score.repeatCommands = #'((volta #f) end-repeat (volta "2.")) f g
    \set Score.repeatCommands = #'((volta #f)) a2 \bar "|." }
  \layout { }
}
"""


def test_hand_drawn_repeat_bars_and_voltas_are_read() -> None:
    from companion.data.engrave_lilypond import _hand_marks

    marks = _hand_marks([("bar", 0.5, ".|:"), ("bar", 1.5, ":|."), ("rcmd", 2.0, '((volta "1."))'),
                         ("rcmd", 2.5, '((volta #f) end-repeat (volta "2."))'), ("rcmd", 3.0, "((volta #f))")])
    assert marks == [("rstart", 0.5, 2, "none"), ("rend", 1.5, 1, "none"), ("volta", 2.0, -1, "1"),
                     ("volta", 2.5, 1, "1"), ("rend", 2.5, 1, "none"), ("volta", 2.5, -1, "2"),
                     ("volta", 3.0, 1, "2")]
    assert _hand_marks([("rcmd", 1.0, "((volta #<procedure markup>))")])[0][0] == "jump"
    assert _hand_marks([("rcmd", 1.0, '((volta "1.-3."))')])[0] == ("volta", 1.0, -1, "1,2,3")


def test_lilypond_hand_drawn_repeats_are_unfolded(tmp_path: Path) -> None:
    if tools_missing():
        pytest.skip(tools_missing())
    from companion.data import engrave_lilypond

    src = tmp_path / "hand.ly"
    src.write_text(LILYPOND_HAND_REPEATS, encoding="utf-8")
    score = engrave_lilypond.engrave(src, {}, 400)
    assert score.repeats == "expanded"
    # c d |: e f g a :| b c [1. d e :| back to b c] [2. f g] a
    pitches = [e.pitch for e in sorted(score.events, key=lambda e: e.onset)]
    assert pitches == [72, 74, 76, 77, 79, 81, 76, 77, 79, 81, 83, 84, 86, 88, 83, 84, 89, 91, 93]
