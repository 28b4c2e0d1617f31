from __future__ import annotations

import numpy as np
from live_helpers import chord_sequence

from companion.live.meter import LevelMeter, MeterParams

SR = 44100


def _gate(meter: LevelMeter, x: np.ndarray) -> str:
    return "".join("#" if r.sound else "." for r in meter.process(x.astype(np.float32)))


def test_sine_level_and_peak() -> None:
    t = np.arange(SR) / SR
    readings = LevelMeter(SR).process((0.5 * np.sin(2 * np.pi * 441 * t)).astype(np.float32))
    assert len(readings) == 10
    assert abs(readings[-1].rms_dbfs - 20 * np.log10(0.5 / np.sqrt(2))) < 0.05
    assert abs(readings[-1].peak_dbfs - 20 * np.log10(0.5)) < 0.05
    assert not readings[-1].clipping


def test_window_boundaries_do_not_depend_on_block_size() -> None:
    x = chord_sequence(SR)
    whole = LevelMeter(SR).process(x)
    m = LevelMeter(SR)
    parts = [r for i in range(0, len(x), 333) for r in m.process(x[i : i + 333])]
    assert [round(r.rms_dbfs, 4) for r in parts] == [round(r.rms_dbfs, 4) for r in whole]


def test_clipping_warning_holds_then_clears() -> None:
    m = LevelMeter(SR, MeterParams(clip_hold_s=0.5))
    x = np.full(SR // 10, 0.2, dtype=np.float32)
    x[100:110] = 1.0
    r = m.process(x)[-1]
    assert r.clipping and r.clipped_samples == 10
    later = m.process(np.full(SR, 0.2, dtype=np.float32))
    assert later[0].clipping and not later[-1].clipping and later[-1].clipped_samples == 10


def test_gate_closed_in_silence_open_while_playing() -> None:
    sig = chord_sequence(SR, repeats=2)  # 4 s
    x = np.concatenate([np.zeros(SR), sig, np.zeros(3 * SR)])
    gate = _gate(LevelMeter(SR), x)
    assert gate[:10] == "." * 10  # silence
    assert set(gate[12:50]) == {"#"}  # playing (after the 0.2-s attack)
    assert gate[-10:] == "." * 10  # released after 1.5 s without sound


def test_steady_room_noise_is_not_sound_but_playing_over_it_is() -> None:
    rng = np.random.default_rng(0)
    noise = 0.02 * rng.standard_normal(SR * 9)  # -34 dBFS, well above the absolute floor
    sig = chord_sequence(SR, repeats=2)
    x = noise.copy()
    x[6 * SR : 6 * SR + 3 * SR] += sig[: 3 * SR]
    gate = _gate(LevelMeter(SR), x)
    assert "#" not in gate[:60]  # noise alone, from the very start: never taken for playing
    assert set(gate[63:90]) == {"#"}  # chords over the noise


def test_dead_input_flags_exact_zeros() -> None:
    m = LevelMeter(SR)
    assert not m.process(np.zeros(SR, dtype=np.float32))[-1].dead_input
    assert m.process(np.zeros(3 * SR, dtype=np.float32))[-1].dead_input
    assert not m.process(np.full(SR // 10, 1e-3, dtype=np.float32))[-1].dead_input
