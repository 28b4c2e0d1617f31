"""A single-producer / single-consumer float32 ring buffer for audio callbacks.

Why: the PortAudio callback runs on a real-time thread; anything slow there
(allocating big arrays, logging, waiting on a lock the worker holds) makes
the driver drop audio. So the callback only *copies* samples into memory
allocated up front, and the worker thread reads them at its own pace.

How it stays safe without locks: the producer (callback) owns ``_write`` and
the consumer (worker) owns ``_read``; each only ever *reads* the other's
counter. Both are monotonically growing Python ints (never wrapped), and a
counter is published only after the samples it covers are copied, so the
other side never sees half-written data. Python int assignment is atomic.

When the consumer falls behind by the whole capacity, a block that does not
fit is dropped *whole* (never partly written, so the stream has clean gaps)
and counted. The position and length of each gap are recorded (also in
preallocated arrays) so the consumer can put silence in its place and keep
the timeline: frame times stay true to the wall clock after a drop.

Each write also records the wall-clock time of its last sample, so the
worker can measure latency from "the sample was captured" to "a result was
published" (see :meth:`RingBuffer.capture_time`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

_GAP_SLOTS = 256
_TIME_SLOTS = 4096


@dataclass(frozen=True)
class Gap:
    """``length`` samples were dropped just before stream sample ``position``."""

    position: int
    length: int


class RingBuffer:
    """Fixed-capacity SPSC ring of ``(samples, channels)`` float32 audio.

    Producer side (callback thread): :meth:`write`.
    Consumer side (worker thread): :meth:`available`, :meth:`read`.
    Counters (:attr:`dropped_samples`, :attr:`dropped_blocks`) may be read from
    any thread.
    """

    def __init__(self, capacity: int, channels: int = 1) -> None:
        if capacity < 1 or channels < 1:
            raise ValueError("capacity and channels must be >= 1")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._data = np.zeros((self.capacity, self.channels), dtype=np.float32)
        # np.zeros maps pages lazily; touch them now so the callback never takes
        # a page fault (a real-time thread must not wait on the kernel)
        self._data.fill(0.0)
        self._write = 0  # total samples written (producer-owned)
        self._read = 0  # total samples consumed (consumer-owned)
        self.dropped_samples = 0
        self.dropped_blocks = 0
        # Gap records: a small SPSC ring of its own (producer writes records,
        # consumer advances _gap_read). A record's position is where the
        # write pointer stood when the block was dropped.
        self._gap_pos = np.zeros(_GAP_SLOTS, dtype=np.int64)
        self._gap_len = np.zeros(_GAP_SLOTS, dtype=np.int64)
        self._gap_write = 0
        self._gap_read = 0
        self._gap_overflow = 0  # samples of gaps that found no free record slot
        # Capture times: (stream position after the write, monotonic time).
        self._time_pos = np.zeros(_TIME_SLOTS, dtype=np.int64)
        self._time_val = np.zeros(_TIME_SLOTS, dtype=np.float64)
        self._time_write = 0

    # ------------------------------------------------------------------ producer
    def write(self, block: np.ndarray, now: float | None = None) -> bool:
        """Copy ``block`` (``(n, channels)`` or ``(n,)`` for mono) in; False if dropped.

        Never blocks and allocates nothing but slice views.
        """
        n = block.shape[0]
        if n == 0:
            return True
        w = self._write
        if n > self.capacity - (w - self._read):
            self._record_gap(w, n)
            return False
        data = self._data
        start = w % self.capacity
        first = min(n, self.capacity - start)
        if block.ndim == 1:
            data[start : start + first, 0] = block[:first]
            if first < n:
                data[: n - first, 0] = block[first:]
        else:
            data[start : start + first] = block[:first]
            if first < n:
                data[: n - first] = block[first:]
        slot = self._time_write % _TIME_SLOTS
        self._time_pos[slot] = w + n
        self._time_val[slot] = time.monotonic() if now is None else now
        self._time_write += 1
        self._write = w + n  # publish last: the data above is complete
        return True

    def note_dropped(self, samples: int) -> None:
        """Count samples lost *before* they reached us (PortAudio input overflow)."""
        if samples > 0:
            self._record_gap(self._write, samples)

    def _record_gap(self, position: int, length: int) -> None:
        self.dropped_samples += length
        self.dropped_blocks += 1
        g = self._gap_write
        if g > self._gap_read:  # consecutive drops at the same spot extend one record
            last = (g - 1) % _GAP_SLOTS
            if self._gap_pos[last] == position:
                # the consumer only takes records strictly before its read end,
                # and nothing was written past ``position`` yet, so it cannot
                # be reading this record now
                self._gap_len[last] += length
                return
        if g - self._gap_read >= _GAP_SLOTS:
            self._gap_overflow += length
            return
        slot = g % _GAP_SLOTS
        self._gap_pos[slot] = position
        self._gap_len[slot] = length
        self._gap_write = g + 1

    # ------------------------------------------------------------------ consumer
    @property
    def available(self) -> int:
        """Samples ready to read."""
        return self._write - self._read

    @property
    def written(self) -> int:
        """Samples written since creation (the stream position of the next write)."""
        return self._write

    @property
    def consumed(self) -> int:
        return self._read

    def read(self, max_samples: int | None = None) -> tuple[np.ndarray, list[Gap]]:
        """Take up to ``max_samples`` (default: all) ready samples.

        Returns ``(block, gaps)``: ``block`` is a new ``(n, channels)`` array
        (the consumer may keep it) and ``gaps`` the drops that happened before
        stream positions inside ``[start, start + n)`` of this read, in order.
        """
        r = self._read
        n = self._write - r
        if max_samples is not None:
            n = min(n, int(max_samples))
        out = np.empty((max(n, 0), self.channels), dtype=np.float32)
        if n > 0:
            start = r % self.capacity
            first = min(n, self.capacity - start)
            out[:first] = self._data[start : start + first]
            if first < n:
                out[first:] = self._data[: n - first]
        gaps = self._take_gaps(r, r + max(n, 0))
        self._read = r + max(n, 0)  # publish last: the copy above is done
        return out, gaps

    def _take_gaps(self, start: int, end: int) -> list[Gap]:
        gaps: list[Gap] = []
        while self._gap_read < self._gap_write:
            slot = self._gap_read % _GAP_SLOTS
            pos = int(self._gap_pos[slot])
            if pos >= end:
                break  # at or after the read end: may still grow, take it next time
            gaps.append(Gap(pos, int(self._gap_len[slot])))
            self._gap_read += 1
        if self._gap_overflow and end > start:
            lost, self._gap_overflow = self._gap_overflow, 0
            gaps.append(Gap(end, lost))  # placement unknown: put it at the end
        return gaps

    def capture_time(self, position: int) -> float | None:
        """Monotonic time at which stream sample ``position - 1`` was written, if known.

        Looks back over the last few thousand writes (seconds to minutes of
        audio); returns None for positions older than that or not yet written.
        """
        hi = self._time_write
        lo = max(0, hi - _TIME_SLOTS + 1)
        if hi == 0 or position > self._write:
            return None
        # binary search for the first write whose end position >= position
        while lo < hi:
            mid = (lo + hi) // 2
            if self._time_pos[mid % _TIME_SLOTS] >= position:
                hi = mid
            else:
                lo = mid + 1
        if lo >= self._time_write:
            return None
        return float(self._time_val[lo % _TIME_SLOTS])

    def reset(self) -> None:
        """Forget everything (only while no producer runs: between streams)."""
        self._write = self._read = 0
        self._gap_write = self._gap_read = self._gap_overflow = 0
        self._time_write = 0
