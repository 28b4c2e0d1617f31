"""The logarithmic filterbank: shape, madmom parity, centre frequencies."""

from __future__ import annotations

import numpy as np
import pytest

from companion.audio import NUM_BANDS, filterbank_center_frequencies, filterbank_for
from companion.audio.filterbank import build_log_filterbank, fft_frequencies
from companion.config import AudioConfig


def test_default_filterbank_has_92_bands() -> None:
    fb = filterbank_for(AudioConfig())
    assert fb.matrix.shape == (1024, 92)
    assert fb.num_bands == NUM_BANDS == 92
    assert fb.matrix.dtype == np.float32


def test_filters_are_normalised_triangles() -> None:
    m = filterbank_for().matrix
    np.testing.assert_allclose(m.sum(axis=0), 1.0, rtol=1e-6)
    for band in range(m.shape[1]):
        nz = np.nonzero(m[:, band])[0]
        assert np.all(np.diff(nz) == 1), "each filter covers contiguous bins"
        peak = np.argmax(m[:, band])
        assert np.all(np.diff(m[nz[0] : peak + 1, band]) > 0)  # rising to the peak
        assert np.all(np.diff(m[peak : nz[-1] + 1, band]) < 0)  # falling after it


def test_matrix_equals_madmom() -> None:
    from madmom.audio.filters import LogarithmicFilterbank
    from madmom.audio.stft import fft_frequencies as mm_fft_frequencies

    ref = LogarithmicFilterbank(
        mm_fft_frequencies(1024, 22050), num_bands=16, fmin=30, fmax=6000,
        norm_filters=True, unique_filters=True,
    )
    ours = filterbank_for()
    assert ours.matrix.shape == ref.shape
    np.testing.assert_array_equal(ours.matrix, np.asarray(ref))
    np.testing.assert_array_equal(ours.bin_frequencies, ref.bin_frequencies)


def test_center_frequencies_match_madmom_bins() -> None:
    from madmom.audio.filters import LogarithmicFilterbank, frequencies2bins, log_frequencies
    from madmom.audio.stft import fft_frequencies as mm_fft_frequencies

    bin_freqs = mm_fft_frequencies(1024, 22050)
    ref = LogarithmicFilterbank(bin_freqs, num_bands=16, fmin=30, fmax=6000,
                                norm_filters=True, unique_filters=True)
    centres = filterbank_center_frequencies()
    # the peak of every madmom filter ...
    np.testing.assert_array_equal(centres, bin_freqs[np.argmax(np.asarray(ref), axis=0)])
    # ... is the middle one of madmom's snapped, de-duplicated log-frequency bins
    bins = frequencies2bins(log_frequencies(16, 30, 6000), bin_freqs, unique_bins=True)
    np.testing.assert_array_equal(centres, bin_freqs[bins[1:-1]])
    # madmom's own ``center_frequencies`` property agrees except on two-bin
    # filters, where its argmax skips the last (peak) bin: one FFT bin lower.
    diff = ref.center_frequencies - centres
    assert np.all((diff == 0) | np.isclose(diff, -22050 / 2048))
    assert np.count_nonzero(diff) <= 5


def test_center_frequencies_follow_16_bands_per_octave() -> None:
    centres = filterbank_center_frequencies()
    half_bin = 22050 / 2048 / 2
    # every centre is the FFT bin nearest to some 440 * 2**(k/16) in [30, 6000]
    k = np.round(16 * np.log2(centres / 440.0))
    ideal = 440.0 * 2 ** (k / 16)
    assert np.all(np.abs(centres - ideal) <= half_bin + 1e-9)
    assert np.all(np.diff(k) >= 1) and np.all(np.diff(centres) > 0)
    assert centres[0] >= 30 - half_bin and centres[-1] <= 6000 + half_bin
    # above ~400 Hz the FFT resolves every band: consecutive k, 2**(1/16) apart
    high = centres > 400
    assert np.all(np.diff(k[high]) == 1)
    ratios = centres[high][1:] / centres[high][:-1]
    np.testing.assert_allclose(np.median(ratios), 2 ** (1 / 16), rtol=2e-3)


def test_other_configurations() -> None:
    fb = build_log_filterbank(44100, 4096, 12, 27.5, 4200)
    assert fb.matrix.shape[0] == 2048 and 50 < fb.num_bands < 12 * 8
    np.testing.assert_array_equal(fb.bin_frequencies, fft_frequencies(2048, 44100))
    with pytest.raises(ValueError):
        build_log_filterbank(22050, 2048, 16, 1000, 1010)
