"""Logarithmic triangular filterbank, built exactly like madmom's.

Dorfer et al. (TISMIR 2018) feed their audio encoder madmom's
``LogarithmicFilteredSpectrogram(num_bands=16, fmin=30, fmax=6000,
norm_filters=True, unique_filters=True)``. This module rebuilds that
filterbank in plain numpy so the runtime does not need madmom:

1. centre frequencies ``440 * 2**(k / 16)`` between ``fmin`` and ``fmax``;
2. each snapped to the nearest FFT bin, duplicates removed (``unique``);
3. overlapping triangular filters over consecutive triples of those bins
   (rising edge without the centre, falling edge from the centre, height 1);
4. each filter normalised to unit area in float32 (madmom's dtype);
5. filters placed into a ``(num_fft_bins, num_bands)`` matrix, taking the
   maximum where they overlap.

With the project's defaults (22,050 Hz, 2048-sample frames) this gives 92
bands. Use :func:`log_filterbank` (cached) to get the matrix and the centre
frequencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

A4 = 440.0
"""Reference tuning frequency of the logarithmic scale (Hz)."""

FILTER_DTYPE = np.float32
"""madmom stores filters (and therefore the spectrogram) as float32."""


def fft_frequencies(num_fft_bins: int, sample_rate: float) -> np.ndarray:
    """Frequencies (Hz) of the first ``num_fft_bins`` FFT bins (no Nyquist bin)."""
    return np.fft.fftfreq(num_fft_bins * 2, 1.0 / sample_rate)[:num_fft_bins]


def log_frequencies(
    bands_per_octave: int, fmin: float, fmax: float, fref: float = A4
) -> np.ndarray:
    """Frequencies ``fref * 2**(k / bands_per_octave)`` that lie in ``[fmin, fmax]``."""
    left = np.floor(np.log2(float(fmin) / fref) * bands_per_octave)
    right = np.ceil(np.log2(float(fmax) / fref) * bands_per_octave)
    freqs = fref * 2.0 ** (np.arange(left, right) / float(bands_per_octave))
    freqs = freqs[np.searchsorted(freqs, fmin) :]
    return freqs[: np.searchsorted(freqs, fmax, "right")]


def frequencies_to_bins(
    frequencies: np.ndarray, bin_frequencies: np.ndarray, unique: bool = True
) -> np.ndarray:
    """Index of the FFT bin nearest to each frequency (ties go to the upper bin)."""
    frequencies = np.asarray(frequencies, dtype=float)
    bin_frequencies = np.asarray(bin_frequencies, dtype=float)
    idx = np.clip(bin_frequencies.searchsorted(frequencies), 1, len(bin_frequencies) - 1)
    left = bin_frequencies[idx - 1]
    right = bin_frequencies[idx]
    idx = idx - (frequencies - left < right - frequencies)
    return np.unique(idx) if unique else idx


def _triangle(start: int, center: int, stop: int, norm: bool) -> np.ndarray:
    """One triangular filter covering bins ``[start, stop)`` with its peak at ``center``."""
    if stop - start < 2:  # madmom's handling of degenerate (too narrow) filters
        center, stop = start, start + 1
    c, n = center - start, stop - start
    data = np.zeros(n)
    data[:c] = np.linspace(0.0, 1.0, c, endpoint=False)
    data[c:] = np.linspace(1.0, 0.0, n - c, endpoint=False)
    filt = data.astype(FILTER_DTYPE)
    if norm:
        filt /= np.sum(filt)  # float32 sum, as madmom does
    return filt


@dataclass(frozen=True)
class LogFilterbank:
    """A logarithmic filterbank matrix and where its bands sit."""

    matrix: np.ndarray
    """float32, shape ``(num_fft_bins, num_bands)``: spectrogram @ matrix."""
    bin_frequencies: np.ndarray
    """Frequency (Hz) of each FFT bin (rows of :attr:`matrix`)."""
    center_bins: np.ndarray
    """FFT bin of each band's peak."""

    @property
    def num_bands(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def center_frequencies(self) -> np.ndarray:
        """Centre frequency (Hz) of each band: the frequency of its peak FFT bin."""
        return self.bin_frequencies[self.center_bins]


def build_log_filterbank(
    sample_rate: float = 22050.0,
    frame_size: int = 2048,
    bands_per_octave: int = 16,
    fmin: float = 30.0,
    fmax: float = 6000.0,
    norm_filters: bool = True,
    unique_filters: bool = True,
    fref: float = A4,
) -> LogFilterbank:
    """Build the filterbank for frames of ``frame_size`` samples at ``sample_rate``."""
    bin_freqs = fft_frequencies(frame_size >> 1, sample_rate)
    bins = frequencies_to_bins(
        log_frequencies(bands_per_octave, fmin, fmax, fref), bin_freqs, unique=unique_filters
    )
    if len(bins) < 3:
        raise ValueError(
            f"fmin={fmin}, fmax={fmax} give fewer than 3 distinct FFT bins; widen the range"
        )
    matrix = np.zeros((len(bin_freqs), len(bins) - 2), dtype=FILTER_DTYPE)
    centers = []
    for band in range(len(bins) - 2):
        start, center, stop = (int(b) for b in bins[band : band + 3])
        if stop - start < 2:  # degenerate filter: a single bin
            center = start
        filt = _triangle(start, center, stop, norm_filters)
        end = min(start + len(filt), len(bin_freqs))
        np.maximum(filt[: end - start], matrix[start:end, band], out=matrix[start:end, band])
        centers.append(center)
    matrix.setflags(write=False)
    return LogFilterbank(matrix=matrix, bin_frequencies=bin_freqs, center_bins=np.array(centers))


@lru_cache(maxsize=8)
def log_filterbank(
    sample_rate: float = 22050.0,
    frame_size: int = 2048,
    bands_per_octave: int = 16,
    fmin: float = 30.0,
    fmax: float = 6000.0,
) -> LogFilterbank:
    """Cached :func:`build_log_filterbank` with normalised, unique filters (the papers')."""
    return build_log_filterbank(sample_rate, frame_size, bands_per_octave, fmin, fmax)
