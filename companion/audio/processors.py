"""Small stateful processors that chain, like madmom's ``Processor``.

Every processor has the same three methods, so the live path (microphone
chunks of any size) and the offline path (a whole file fed in blocks) run the
very same code and give the same numbers:

* ``process(x)`` consumes the next piece of the stream and returns whatever
  output is complete so far (possibly nothing: an empty array);
* ``flush()`` ends the stream and returns what was held back (the tail of
  the resampler, the last zero-padded frames) and then resets;
* ``reset()`` forgets everything, ready for a new stream.

:class:`ProcessorChain` runs processors one after another. The building
blocks here are :class:`Downmix` (channels to mono by mean) and
:class:`StreamResampler` (any rate to the analysis rate with
``soxr.ResampleStream``). Framing and the spectrogram itself live in
:mod:`companion.audio.framing` and :mod:`companion.audio.spectrogram`.

Measured: ``soxr.ResampleStream`` fed in chunks of 256, 1000, 4410 or 65536
samples and then flushed returns bit-for-bit the output of one call to
``soxr.resample`` on the whole signal (8, 11.025, 44.1, 48 and 96 kHz in;
see ``tests/audio/test_processors.py``), so a streamed spectrogram equals the
offline one exactly, resampling included.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import soxr

from companion.errors import AudioError


class Processor:
    """Base class: a stateful stream processor (see the module docstring)."""

    def process(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def flush(self) -> np.ndarray:
        """End of stream: return what is still held back, then reset."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError


class ProcessorChain(Processor):
    """Processors run in sequence; ``flush`` cascades through the chain."""

    def __init__(self, processors: Sequence[Processor]) -> None:
        self.processors = list(processors)

    def process(self, x: np.ndarray) -> np.ndarray:
        for p in self.processors:
            x = p.process(x)
        return x

    def flush(self) -> np.ndarray:
        out: np.ndarray | None = None
        for p in self.processors:
            if out is None:
                out = p.flush()
            else:
                head = p.process(out)
                tail = p.flush()
                out = np.concatenate([head, tail]) if len(tail) else head
        assert out is not None, "empty chain"
        return out

    def reset(self) -> None:
        for p in self.processors:
            p.reset()


def as_samples(x: np.ndarray | Sequence[float]) -> np.ndarray:
    """Check a chunk of samples: 1-D (mono) or 2-D (frames, channels), finite numbers."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise AudioError(f"audio samples must be numbers, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise AudioError(
            f"audio must be 1-D (mono) or 2-D (frames, channels); got shape {arr.shape}"
        )
    if arr.dtype.kind in "iu":  # integer PCM: scale to [-1, 1) like soundfile does
        arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise AudioError("audio contains NaN or infinite samples")
    return arr


def to_mono(x: np.ndarray) -> np.ndarray:
    """Mean over channels (axis 1) as float32; mono input is returned as float32."""
    arr = as_samples(x)
    if arr.ndim == 1:
        return arr
    if arr.shape[1] == 1:
        return arr[:, 0]
    return arr.mean(axis=1, dtype=np.float32)


class Downmix(Processor):
    """Any channel count to mono (mean), chunk by chunk; stateless."""

    def process(self, x: np.ndarray) -> np.ndarray:
        return to_mono(x)

    def flush(self) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)

    def reset(self) -> None:
        pass


class StreamResampler(Processor):
    """Mono float32 from ``in_rate`` to ``out_rate`` with ``soxr.ResampleStream``.

    Output equals ``soxr.resample(whole_signal, in_rate, out_rate)`` exactly once
    :meth:`flush` has been called (soxr HQ quality in both). Same rates: a no-op.
    """

    def __init__(self, in_rate: float, out_rate: float, quality: str = "HQ") -> None:
        if not (np.isfinite(in_rate) and in_rate > 0):
            raise AudioError(f"invalid input sample rate {in_rate!r} Hz")
        self.in_rate = float(in_rate)
        self.out_rate = float(out_rate)
        self.quality = quality
        self._stream: soxr.ResampleStream | None = None
        self.reset()

    @property
    def passthrough(self) -> bool:
        return self.in_rate == self.out_rate

    def reset(self) -> None:
        self._stream = (
            None
            if self.passthrough
            else soxr.ResampleStream(
                self.in_rate, self.out_rate, 1, dtype="float32", quality=self.quality
            )
        )

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(as_samples(x))
        if x.ndim != 1:
            raise AudioError("StreamResampler takes mono audio; downmix first")
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=False)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        out = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self.reset()
        return out


def resample(signal: np.ndarray, in_rate: float, out_rate: float) -> np.ndarray:
    """Resample a whole mono signal (soxr HQ); identical to streaming then flushing."""
    signal = np.ascontiguousarray(as_samples(signal))
    if in_rate == out_rate:
        return signal
    return soxr.resample(signal, in_rate, out_rate, quality="HQ")
