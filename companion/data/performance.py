"""Turning score time into a performance: tempo, tempo curve, jitter, dynamics, pedal.

Why our own MIDI (not the engraver's): the same warp is applied to the audio and
to every notehead's onset, so we know each note's true onset in the audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from companion.data.engraving import NoteEvent

TICKS_PER_BEAT = 480
MIDI_TEMPO = 500_000  # microseconds per beat: 960 ticks per second


@dataclass(frozen=True)
class PerformanceParams:
    tempo_factor: float = 1.0  # > 1 plays faster
    curve_depth: float = 0.08  # std of log tempo deviation of the smooth curve
    onset_jitter_s: float = 0.008  # std of per-note onset noise
    velocity_base: float = 68.0
    velocity_spread: float = 8.0  # std of per-note velocity noise
    dynamic_depth: float = 14.0  # amplitude of the slow dynamics curve
    pedal: bool = True
    seed: int = 0


@dataclass
class PerformedNote:
    note_id: str
    pitch: int
    onset: float
    offset: float
    velocity: int


@dataclass
class Performance:
    notes: list[PerformedNote]
    pedal: list[tuple[float, int]] = field(default_factory=list)  # (time, 0|127)
    duration: float = 0.0


def sample_params(rng: np.random.Generator, tempo_range: tuple[float, float]) -> PerformanceParams:
    """Random performance settings: log-uniform global tempo in ``tempo_range``."""
    lo, hi = tempo_range
    return PerformanceParams(
        tempo_factor=float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
        curve_depth=float(rng.uniform(0.02, 0.12)),
        onset_jitter_s=float(rng.uniform(0.0, 0.015)),
        velocity_base=float(rng.uniform(50, 85)),
        velocity_spread=float(rng.uniform(3, 12)),
        dynamic_depth=float(rng.uniform(0, 20)),
        pedal=bool(rng.random() < 0.7),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _smooth_curve(rng: np.random.Generator, t: np.ndarray, depth: float) -> np.ndarray:
    """Zero-mean smooth noise: a few sinusoids with periods of 3–25 s."""
    out = np.zeros_like(t)
    for _ in range(4):
        period = rng.uniform(3.0, 25.0)
        out += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return out * depth / np.sqrt(2.0)


def time_warp(score_end: float, params: PerformanceParams, rng: np.random.Generator):
    """A monotonic map score seconds -> performance seconds (vectorised)."""
    grid = np.linspace(0.0, max(score_end, 0.01) + 5.0, int((score_end + 5.0) * 50) + 2)
    log_rate = _smooth_curve(rng, grid, params.curve_depth)
    rate = params.tempo_factor * np.exp(log_rate)
    perf = np.concatenate([[0.0], np.cumsum(np.diff(grid) / rate[:-1])])

    def warp(t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        inside = np.interp(t, grid, perf)
        return np.where(t > grid[-1], perf[-1] + (t - grid[-1]) / params.tempo_factor, inside)

    return warp


def perform(events: list[NoteEvent], bar_times: list[float], params: PerformanceParams,
            lead_in: float = 0.5) -> Performance:
    """Apply tempo, tempo curve, onset jitter, dynamics and pedalling to ``events``."""
    rng = np.random.default_rng(params.seed)
    if not events:
        return Performance([], [], 0.0)
    onsets = np.array([e.onset for e in events])
    offsets = np.array([max(e.offset, e.onset + 0.03) for e in events])
    end = float(offsets.max())
    warp = time_warp(end, params, rng)
    p_on = warp(onsets) + lead_in
    p_off = warp(offsets) + lead_in
    jitter = rng.normal(0.0, params.onset_jitter_s, size=len(events))
    p_on = np.maximum(p_on + jitter, 0.05)
    p_off = np.maximum(p_off, p_on + 0.03)
    # A repeated pitch must be released before it is struck again.
    pitches = np.array([e.pitch for e in events])
    for pitch in np.unique(pitches):
        idx = np.flatnonzero(pitches == pitch)
        idx = idx[np.argsort(p_on[idx], kind="stable")]
        for a, b in zip(idx[:-1], idx[1:]):
            if p_off[a] > p_on[b] - 0.005:
                p_off[a] = max(p_on[b] - 0.005, p_on[a] + 0.01)
    dyn_t = np.linspace(0, float(p_off.max()) + 1, 200)
    dyn = np.interp(p_on, dyn_t, _smooth_curve(rng, dyn_t, params.dynamic_depth))
    vel = params.velocity_base + dyn + rng.normal(0, params.velocity_spread, size=len(events))
    vel = np.clip(np.round(vel), 20, 120).astype(int)
    notes = [PerformedNote(e.note_id, e.pitch, float(a), float(b), int(v))
             for e, a, b, v in zip(events, p_on, p_off, vel)]
    pedal: list[tuple[float, int]] = []
    if params.pedal:
        # Change pedal just after each bar line (legato pedalling); without bar
        # information, every ~2 s of score time.
        changes = sorted(set(bar_times)) if len(bar_times) > 1 else list(np.arange(0, end, 2.0))
        perf_changes = warp(np.array(changes)) + lead_in
        for t in perf_changes:
            if pedal:
                pedal.append((max(float(t) - 0.02, 0.0), 0))
            pedal.append((float(t) + 0.06, 127))
        pedal.append((float(p_off.max()), 0))
    duration = float(p_off.max()) + 1.0
    return Performance(notes, pedal, duration)


def write_midi(perf: Performance, path: Path, program: int = 0) -> None:
    """A type-0 MIDI file of the performance (960 ticks per second)."""
    import mido

    tps = TICKS_PER_BEAT * 1_000_000 / MIDI_TEMPO
    msgs: list[tuple[int, int, mido.Message]] = []
    for n in perf.notes:
        msgs.append((round(n.onset * tps), 1, mido.Message("note_on", note=n.pitch, velocity=n.velocity)))
        msgs.append((round(n.offset * tps), 0, mido.Message("note_off", note=n.pitch, velocity=0)))
    for t, value in perf.pedal:
        msgs.append((round(t * tps), 0, mido.Message("control_change", control=64, value=value)))
    msgs.sort(key=lambda m: (m[0], m[1]))
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=MIDI_TEMPO, time=0))
    track.append(mido.Message("program_change", program=program, time=0))
    now = 0
    for tick, _, msg in msgs:
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=round(tps)))
    mid = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
    mid.tracks.append(track)
    mid.save(str(path))
