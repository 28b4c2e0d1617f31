"""Cutting a signal into overlapping frames, placed exactly as madmom does.

madmom's ``FramedSignal(frame_size=2048, fps=20)`` on a 22,050 Hz signal:

* hop = 22050 / 20 = 1102.5 samples (fractional: frames alternate 1102/1103);
* frame ``i`` is centred on sample ``int(i * hop)``, i.e. it covers samples
  ``[int(i * hop) - 1024, int(i * hop) + 1024)``;
* samples outside the signal are zeros;
* there are ``ceil(num_samples / hop)`` frames (every frame whose centre
  lies inside the signal).

:class:`Framer` does this on a stream: a frame is returned as soon as its
last sample has arrived (so the live latency is half a frame, ~46 ms, plus the
hop), and :meth:`Framer.flush` pads the end with zeros to give the last frames.
Fed any chunking of a signal, it returns the same frames as one pass over the
whole signal.
"""

from __future__ import annotations

import math

import numpy as np

from companion.audio.processors import Processor, as_samples


def num_frames(num_samples: int, hop_size: float) -> int:
    """madmom's frame count: frames whose centre sample lies inside the signal."""
    return int(math.ceil(num_samples / float(hop_size)))


def frame_centers(start: int, stop: int, hop_size: float) -> np.ndarray:
    """Centre sample of frames ``start .. stop-1`` (``int(i * hop)``, as in madmom)."""
    return (np.arange(start, stop, dtype=np.float64) * hop_size).astype(np.int64)


class Framer(Processor):
    """Mono samples in, ``(n_frames, frame_size)`` float32 frames out.

    The framer keeps only the samples that later frames still need, so memory
    stays at about one frame plus one chunk whatever the stream's length.
    """

    def __init__(self, frame_size: int = 2048, hop_size: float = 1102.5) -> None:
        if frame_size < 2 or hop_size <= 0:
            raise ValueError("frame_size must be >= 2 and hop_size > 0")
        self.frame_size = int(frame_size)
        self.hop_size = float(hop_size)
        self._half = self.frame_size // 2
        self.reset()

    def reset(self) -> None:
        # The buffer starts with the zero padding left of the first sample:
        # buffer index 0 is absolute sample -frame_size // 2.
        self._buf = np.zeros(self._half, dtype=np.float32)
        self._buf_start = -self._half
        self._received = 0
        self._next = 0

    @property
    def frames_emitted(self) -> int:
        return self._next

    @property
    def samples_received(self) -> int:
        return self._received

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.frame_size), dtype=np.float32)

    def _ready_until(self, available: int, final: bool) -> int:
        """Index one past the last frame that can be cut now."""
        if final:
            return num_frames(self._received, self.hop_size)
        # frame i is complete when int(i * hop) + half <= available samples
        last = available - (self.frame_size - self._half)
        if last < 0:
            return 0
        n = int(math.floor(last / self.hop_size)) + 1
        # guard against floating point at exact boundaries
        while n > 0 and int((n - 1) * self.hop_size) > last:
            n -= 1
        while int(n * self.hop_size) <= last:
            n += 1
        return min(n, num_frames(self._received, self.hop_size))

    def _cut(self, until: int) -> np.ndarray:
        if until <= self._next:
            return self._empty()
        starts = frame_centers(self._next, until, self.hop_size) - self._half - self._buf_start
        need = int(starts[-1]) + self.frame_size
        if need > len(self._buf):  # only at flush: zero padding right of the signal
            self._buf = np.concatenate(
                [self._buf, np.zeros(need - len(self._buf), dtype=np.float32)]
            )
        windows = np.lib.stride_tricks.sliding_window_view(self._buf, self.frame_size)
        frames = windows[starts]  # fancy indexing copies: frames own their memory
        self._next = until
        # drop samples no later frame needs
        keep_from = int(frame_centers(until, until + 1, self.hop_size)[0]) - self._half
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:].copy()
            self._buf_start = keep_from
        return frames

    def process(self, x: np.ndarray) -> np.ndarray:
        x = as_samples(x)
        if x.ndim != 1:
            raise ValueError("Framer takes mono audio; downmix first")
        if len(x):
            self._buf = np.concatenate([self._buf, x])
            self._received += len(x)
        return self._cut(self._ready_until(self._received, final=False))

    def flush(self) -> np.ndarray:
        frames = self._cut(self._ready_until(self._received, final=True))
        self.reset()
        return frames
