"""Offline spectrogram: madmom parity, shape, frame placement."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from audio_helpers import SR, madmom_log_spec, piano_like, tone

from companion.audio import log_spectrogram, num_frames
from companion.audio.framing import Framer
from companion.config import AudioConfig

TOL = 1e-5


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(int(SR * 4.1)) / SR
    return {
        "noise": (0.3 * rng.standard_normal(len(t))).astype(np.float32),
        "a4": tone(440.0, 4.1),
        "chirp": (0.6 * np.sin(2 * np.pi * (40 * t + 400 * t**2))).astype(np.float32),
        "piano": piano_like(5.0),
        "loud": np.clip(3 * rng.standard_normal(SR), -1, 1).astype(np.float32),
        "one_frame": rng.standard_normal(700).astype(np.float32),
        "odd_length": rng.standard_normal(2205 * 3 + 1).astype(np.float32) * 0.2,
    }


@pytest.mark.parametrize("name", list(_signals()))
def test_matches_madmom(name: str) -> None:
    x = _signals()[name]
    ref = madmom_log_spec(x)
    ours = log_spectrogram(x)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == (num_frames(len(x), 1102.5), 92)
    assert np.max(np.abs(ours - ref)) <= TOL
    assert ref.max() > 0.1  # the comparison is not between two blank images


def test_resampled_input_matches_madmom_on_resampled_signal() -> None:
    x44 = piano_like(3.0, sr=44100, seed=3)
    ours = log_spectrogram(x44, sample_rate=44100)
    ref = madmom_log_spec(soxr.resample(x44, 44100, SR, quality="HQ"))
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= TOL


def test_stereo_array_is_averaged() -> None:
    left, right = tone(220.0, 2.0), tone(1760.0, 2.0, amp=0.2)
    stereo = np.stack([left, right], axis=1)
    ref = madmom_log_spec(((left + right) / 2).astype(np.float32))
    assert np.max(np.abs(log_spectrogram(stereo) - ref)) <= TOL


def test_tone_lands_in_its_band() -> None:
    from companion.audio import filterbank_center_frequencies

    spec = log_spectrogram(tone(1000.0, 2.0))
    band = int(np.argmax(spec[10:-10].mean(axis=0)))
    assert abs(filterbank_center_frequencies()[band] - 1000.0) < 1000.0 * (2 ** (1 / 16) - 1)


def test_frames_are_centred_like_madmom() -> None:
    from madmom.audio.signal import FramedSignal, Signal

    x = np.arange(1, 9000, dtype=np.float32)
    framer = Framer(2048, 1102.5)
    ours = np.concatenate([framer.process(x), framer.flush()])
    ref = FramedSignal(Signal(x, sample_rate=SR), frame_size=2048, fps=20)
    assert len(ours) == len(ref) == 9
    for i in range(len(ref)):
        np.testing.assert_array_equal(ours[i], ref[i])
    # frame 1 is centred on sample int(1102.5) = 1102: its first sample is 1102 - 1024
    assert ours[1][0] == x[1102 - 1024]
    assert ours[0][1023] == 0 and ours[0][1024] == x[0]


def test_empty_signal_gives_no_frames() -> None:
    out = log_spectrogram(np.zeros(0, dtype=np.float32))
    assert out.shape == (0, 92)


def test_block_size_does_not_change_result() -> None:
    x = piano_like(6.0, seed=5)
    whole = log_spectrogram(x)
    small_blocks = log_spectrogram(x, AudioConfig(block_seconds=0.37))
    assert np.max(np.abs(whole - small_blocks)) <= TOL
