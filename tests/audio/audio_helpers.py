"""Helpers for the audio tests: synthetic signals and the madmom reference.

(A uniquely named module rather than ``conftest``, so that importing it
cannot pick up another directory's conftest.)
"""

from __future__ import annotations

import numpy as np

SR = 22050


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def piano_like(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Decaying harmonic notes plus a little noise: broadband, like a piano take."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n)
    t = np.arange(n) / sr
    for start in np.arange(0.0, seconds, 0.25):
        f0 = 55.0 * 2 ** (rng.integers(0, 60) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * 3.0), 0.0)
        for h in range(1, 6):
            if f0 * h < sr / 2:
                out += env * np.sin(2 * np.pi * f0 * h * (t - start)) / h
    out += 0.01 * rng.standard_normal(n)
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


def madmom_log_spec(signal: np.ndarray, sr: int = SR) -> np.ndarray:
    """The reference: madmom(-onnx)'s spectrogram as used by Dorfer et al."""
    from madmom.audio.signal import FramedSignal, Signal
    from madmom.audio.spectrogram import LogarithmicFilteredSpectrogram

    frames = FramedSignal(Signal(signal, sample_rate=sr), frame_size=2048, fps=20)
    spec = LogarithmicFilteredSpectrogram(
        frames, num_bands=16, fmin=30, fmax=6000, norm_filters=True, unique_filters=True
    )
    return np.asarray(spec)
