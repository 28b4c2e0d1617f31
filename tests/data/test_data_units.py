"""Unit tests: sources and exclusion, splits, performance timing, MIDI, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from companion.data import augment, performance
from companion.data.build import split_of
from companion.data.engraving import NoteEvent
from companion.data.sources import (
    Source,
    describe,
    excluded_by,
    find_sources,
    normalise,
    read_exclude_list,
    reserved_reason,
)
from companion.errors import DataError


def _src(composer: str, title: str, opus: str = "", path: str = "x.krn") -> Source:
    return Source(path=Path(path), kind="humdrum", piece_id="p", work="w", composer=composer,
                  title=title, opus=opus)


def test_normalise_opus_numbers():
    assert normalise("Op. 10, No. 3") == "op10 no3"
    assert normalise("Opus 028") == "op28"
    assert normalise("Chopin, Fryderyk") == "chopin fryderyk"


@pytest.mark.parametrize("composer,title,opus,reserved", [
    ("Beethoven, Ludwig van", "Piano Sonata No. 8", "Op. 13", True),
    ("BeethovenLv", "Rondo", "Op. 13", True),  # sonata movement found by opus
    ("Beethoven", "Für Elise", "WoO 59", False),
    ("Mozart", "Sonata facile", "K. 545", True),
    ("Mozart", "Rondo", "K. 485", False),
    ("Scott Joplin", "The Entertainer", "", True),
    ("Chopin", "Nocturne", "Op. 9", False),
])
def test_reserved_evaluation_pieces(composer, title, opus, reserved):
    assert (reserved_reason(_src(composer, title, opus)) is not None) == reserved


def test_exclude_list_matches_title_and_opus(tmp_path):
    f = tmp_path / "list.txt"
    f.write_text("# real scans\nchopin op10\nschubert d899\n", encoding="utf-8")
    pats = read_exclude_list(f)
    assert excluded_by(_src("Chopin, Fryderyk", "Etude", "Op. 10 No. 3"), pats)
    assert not excluded_by(_src("Chopin, Fryderyk", "Etude", "Op. 100"), pats)
    assert excluded_by(_src("Schubert", "Impromptu", "D. 899 No. 2"), pats)
    with pytest.raises(DataError):
        read_exclude_list(tmp_path / "missing.txt")


def test_chopin_editions_share_a_work_and_chamber_parts_are_skipped(tmp_path):
    kern = "!!!COM: Chopin\n!!!OPS: Op. 28\n**kern\n4c\n*-\n"
    for name in ("028-1-BH-009.krn", "028-1a-C-009.krn", "008-1-Sm-001-violino.krn"):
        (tmp_path / name).write_text(kern, encoding="utf-8")
    a = describe(tmp_path / "028-1-BH-009.krn", tmp_path)
    b = describe(tmp_path / "028-1a-C-009.krn", tmp_path)
    assert a is not None and b is not None and a.work == b.work and a.piece_id != b.piece_id
    assert describe(tmp_path / "008-1-Sm-001-violino.krn", tmp_path) is None
    assert len(find_sources([tmp_path])) == 2
    with pytest.raises(DataError):
        find_sources([tmp_path / "nope"])


def test_splits_are_deterministic_and_by_work():
    works = [f"work-{i}" for i in range(2000)]
    a = [split_of(w, 0, (0.8, 0.1)) for w in works]
    assert a == [split_of(w, 0, (0.8, 0.1)) for w in works]
    share = {s: a.count(s) / len(a) for s in ("train", "valid", "test")}
    assert 0.75 < share["train"] < 0.85 and 0.07 < share["valid"] < 0.13
    assert a != [split_of(w, 1, (0.8, 0.1)) for w in works]


def _events(n: int = 40) -> list[NoteEvent]:
    return [NoteEvent(f"n{i}", 60 + (i % 12), i * 0.5, i * 0.5 + 0.45) for i in range(n)]


def test_performance_tempo_and_monotonic_onsets():
    slow = performance.perform(_events(), [], performance.PerformanceParams(tempo_factor=0.8, seed=1))
    fast = performance.perform(_events(), [], performance.PerformanceParams(tempo_factor=1.25, seed=1))
    assert slow.duration > fast.duration * 1.3
    plain = performance.PerformanceParams(tempo_factor=1.0, onset_jitter_s=0.0, seed=2)
    on = np.array([n.onset for n in performance.perform(_events(), [], plain).notes])
    assert np.all(np.diff(on) > 0)  # a tempo curve never reverses time
    # the smooth curve moves onsets away from the mechanical grid, but not wildly
    dev = on - on[0] - np.arange(len(on)) * 0.5
    assert 0.0 < np.abs(dev).max() < 5.0


def test_midi_round_trip(tmp_path):
    import mido

    perf = performance.perform(_events(10), [0.0, 2.0, 4.0], performance.PerformanceParams(pedal=True, seed=3))
    performance.write_midi(perf, tmp_path / "x.mid")
    mid = mido.MidiFile(str(tmp_path / "x.mid"))
    ons, t = [], 0.0
    for msg in mid:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            ons.append(t)
    assert len(ons) == 10
    np.testing.assert_allclose(ons, sorted(n.onset for n in perf.notes), atol=2e-3)
    assert any(m.type == "control_change" and m.control == 64 for m in mid.tracks[0])


def test_page_degradation_keeps_coordinates():
    rng = np.random.default_rng(0)
    page = np.full((300, 200), 255, np.uint8)
    page[100:104, 150:154] = 0  # a "notehead"
    for seed in range(5):
        out, m = augment.degrade_page(page, np.random.default_rng(seed), strength=1.0)
        assert out.shape == page.shape and out.dtype == np.uint8
        x, y = m @ np.array([151.5, 101.5, 1.0])
        # the dark blob is still where the matrix says (elastic moves it a few px at most)
        ys, xs = np.nonzero(out[max(int(y) - 8, 0): int(y) + 9, max(int(x) - 8, 0): int(x) + 9] < 128)
        assert len(xs) > 0, seed
    noise = augment.perlin_noise((64, 64), rng)
    assert noise.min() >= -1 and noise.max() <= 1 and noise.std() > 0.05


def test_audio_degradation_keeps_length_and_timing():
    rng = np.random.default_rng(1)
    sr = 22050
    x = np.zeros(sr * 2, np.float32)
    x[sr] = 1.0  # a click at 1 s
    y = augment.degrade_audio(x, sr, rng)
    assert len(y) == len(x) and np.isfinite(y).all()
    # energy before the click is only noise; the click still stands out after it
    assert np.abs(y[sr: sr + 2000]).max() > 3 * np.abs(y[: sr - 2000]).std()


def test_music21_reserved_pieces_are_found_and_reserved():
    pytest.importorskip("music21")
    from companion.data.sources import music21_sources

    srcs = music21_sources()
    reserved = {s.piece_id for s in srcs if reserved_reason(s)}
    assert any("joplin" in p for p in reserved) and any("k545" in p for p in reserved)
    assert len(srcs) - len(reserved) >= 8
