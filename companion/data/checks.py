"""Automatic alignment checks run on every built piece.

Why: a silent misalignment (wrong ids joined, a tempo map ignored, a repeat
taken in the audio but not in the onsets) poisons training without any error.
Two cheap tests catch those: noteheads move right as time goes on within a
system, and the audio has a fresh onset at the notated pitch where we claim one.
"""

from __future__ import annotations

import numpy as np

MONOTONIC_MIN = 0.85  # share of consecutive onset groups moving right (or staying)
ONSET_HIT_MIN = 0.65  # share of sampled notes with an energy rise at their pitch
ONSET_SAMPLES = 60


def sounding_pass(heads: np.ndarray) -> np.ndarray:
    """For each row, which sounding of its notehead it is (0 = first time).

    Why: with repeats taken, a system is read left to right once per pass; the
    first and second endings are each heard once, so they fall in pass 0 after
    the repeated bars, in reading order as well.
    """
    out = np.zeros(len(heads), dtype=np.int32)
    if len(heads) == 0:
        return out
    order = np.lexsort((heads["onset"], heads["note"]))
    notes = heads["note"][order]
    first = np.concatenate([[True], notes[1:] != notes[:-1]])
    starts = np.flatnonzero(first)
    run_start = np.repeat(starts, np.diff(np.append(starts, len(notes))))
    out[order] = np.arange(len(notes)) - run_start
    return out


def monotonic_score(heads: np.ndarray, tolerance_px: float = 12.0) -> float:
    """Share of consecutive onset groups (within one system and one sounding
    pass) whose mean x does not move left by more than ``tolerance_px``.
    ``heads`` is the notehead table."""
    good = total = 0
    passes = sounding_pass(heads)
    for system in np.unique(heads["system"]):
        for p in np.unique(passes[heads["system"] == system]):
            rows = heads[(heads["system"] == system) & (passes == p)]
            order = np.argsort(rows["onset"], kind="stable")
            t = rows["onset"][order]
            x = rows["x"][order]
            # Group notes struck together (chords with jitter) into one event.
            starts = np.flatnonzero(np.concatenate([[True], np.diff(t) > 0.03]))
            xs = np.array([np.median(x[a:b]) for a, b in zip(starts, np.append(starts[1:], len(t)))])
            if len(xs) < 2:
                continue
            d = np.diff(xs)
            good += int(np.sum(d > -tolerance_px))
            total += len(d)
    return good / total if total else 1.0


def onset_hit_rate(heads: np.ndarray, spec: np.ndarray, band_freqs: np.ndarray, fps: float,
                   rng: np.random.Generator, threshold: float = 0.03) -> float:
    """Share of sampled noteheads whose pitch bands (fundamental or 2nd/3rd
    harmonic) gain energy between just before and just after the claimed onset."""
    if len(heads) == 0 or len(spec) == 0:
        return 0.0
    pick = rng.choice(len(heads), size=min(ONSET_SAMPLES, len(heads)), replace=False)
    hits = tried = 0
    for i in pick:
        onset = float(heads["onset"][i])
        frame = int(round(onset * fps))
        if frame - 2 < 0 or frame + 2 >= len(spec):
            continue
        f0 = 440.0 * 2 ** ((int(heads["pitch"][i]) - 69) / 12)
        bands = set()
        for h in (1, 2, 3):
            f = f0 * h
            if band_freqs[0] * 0.97 <= f <= band_freqs[-1] * 1.03:
                bands.add(int(np.argmin(np.abs(np.log(band_freqs / f)))))
        if not bands:
            continue
        idx = sorted(bands)
        before = spec[frame - 2: frame, idx].min(axis=0)
        after = spec[frame: frame + 3, idx].max(axis=0)
        tried += 1
        hits += int(np.max(after - before) > threshold)
    return hits / tried if tried else 0.0


def check_piece(heads: np.ndarray, spec: np.ndarray, band_freqs: np.ndarray, fps: float,
                seed: int = 0) -> dict:
    """Both checks with their scores and a pass/fail verdict with reasons."""
    mono = monotonic_score(heads)
    hit = onset_hit_rate(heads, spec, band_freqs, fps, np.random.default_rng(seed))
    reasons = []
    if len(heads) == 0:
        reasons.append("no aligned noteheads")
    if mono < MONOTONIC_MIN:
        reasons.append(f"notehead x does not follow onset order within systems ({mono:.0%} < {MONOTONIC_MIN:.0%})")
    if hit < ONSET_HIT_MIN:
        reasons.append(f"audio has no onset at the notated pitch for {1 - hit:.0%} of sampled notes")
    return {"monotonic": round(mono, 4), "onset_hits": round(hit, 4), "passed": not reasons,
            "reasons": reasons}
