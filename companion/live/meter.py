"""Input level, clipping and the silence gate, in 100-ms windows.

Why a gate: the engine must make no identification claims while nobody
plays: neither in digital silence nor in room noise (a fan, traffic, a
humming amplifier). The gate is open ("sound") when the level is

* above an absolute floor (``MeterParams.silence_dbfs``), and
* clearly above the room's noise floor (``noise_margin_db``), where the noise
  floor is the quietest 100-ms window of the last ``floor_seconds`` spent
  with the gate closed, and
* not *stationary*: steady noise varies by a fraction of a dB from one 100-ms
  window to the next, a piano never does (notes attack and decay). Over the
  last ``steady_seconds`` (at least ``min_history_s``) a spread (std) below
  ``steady_std_db`` is noise, whatever its level, and it becomes the new
  noise floor.

It opens after ``attack_s`` of sound and closes after ``release_s`` without,
so a breath between phrases does not toggle it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

FLOOR_DB = -120.0


@dataclass(frozen=True)
class MeterParams:
    """Thresholds of the level meter and the silence gate."""

    window_s: float = 0.1
    silence_dbfs: float = -55.0
    """Windows quieter than this (RMS, dB full scale) are silence, always."""
    noise_margin_db: float = 10.0
    """Sound must be this much louder than the measured noise floor."""
    floor_seconds: float = 10.0
    steady_seconds: float = 3.0
    steady_std_db: float = 1.0
    min_history_s: float = 1.0
    """The gate stays closed until this much input was heard (steadiness needs history):
    a session started in a noisy room never mistakes the noise for playing."""
    attack_s: float = 0.2
    release_s: float = 1.5
    clip_level: float = 0.999
    """|sample| at or above this counts as clipped."""
    clip_hold_s: float = 2.0
    """The clipping warning stays on this long after the last clipped sample."""
    dead_input_s: float = 3.0
    """Exact zeros for this long: the input is dead (muted, or no permission on macOS)."""


@dataclass(frozen=True)
class LevelReading:
    """One 100-ms window of the input, as a GUI meter shows it."""

    t: float
    """Stream time (s) at the end of the window."""
    rms_dbfs: float
    peak_dbfs: float
    clipping: bool
    """Clipped samples within the last ``clip_hold_s``: turn the input gain down."""
    clipped_samples: int
    """Total clipped samples since the stream started."""
    sound: bool
    """The silence gate: True while someone is playing."""
    noise_floor_dbfs: float
    dead_input: bool
    """Only exact zeros for a while: muted, or (macOS) no microphone permission."""


def to_db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 1e-6 else FLOOR_DB


class LevelMeter:
    """Feed mono blocks at the device rate; get one :class:`LevelReading` per window."""

    def __init__(self, sample_rate: float, params: MeterParams | None = None) -> None:
        self.params = params or MeterParams()
        self.sample_rate = float(sample_rate)
        self.window = max(1, int(round(self.sample_rate * self.params.window_s)))
        n_floor = max(1, int(self.params.floor_seconds / self.params.window_s))
        n_steady = max(2, int(self.params.steady_seconds / self.params.window_s))
        self._floor_hist: deque[float] = deque(maxlen=n_floor)
        self._recent: deque[float] = deque(maxlen=n_steady)
        self._min_history = max(2, int(round(self.params.min_history_s / self.params.window_s)))
        self._attack_n = max(1, int(round(self.params.attack_s / self.params.window_s)))
        self._release_n = max(1, int(round(self.params.release_s / self.params.window_s)))
        self.reset()

    def reset(self) -> None:
        self._sumsq = 0.0
        self._peak = 0.0
        self._fill = 0
        self._nonzero = False
        self._samples = 0
        self._clipped = 0
        self._last_clip_sample = -(10**18)
        self._zero_run = 0
        self._floor_hist.clear()
        self._recent.clear()
        self._sound = False
        self._above = 0
        self._below = 0
        self.last: LevelReading | None = None

    @property
    def sound(self) -> bool:
        return self._sound

    @property
    def clipped_samples(self) -> int:
        return self._clipped

    def process(self, mono: np.ndarray) -> list[LevelReading]:
        """Consume samples; return the readings of the windows completed by them."""
        out: list[LevelReading] = []
        pos = 0
        n = len(mono)
        while pos < n:
            take = min(self.window - self._fill, n - pos)
            part = mono[pos : pos + take]
            a = np.abs(part)
            peak = float(a.max()) if take else 0.0
            self._sumsq += float(np.dot(part, part))
            self._peak = max(self._peak, peak)
            if peak >= self.params.clip_level:
                clipped = int(np.count_nonzero(a >= self.params.clip_level))
                self._clipped += clipped
                self._last_clip_sample = self._samples + pos + take
            if peak > 0.0:
                self._nonzero = True
            self._fill += take
            pos += take
            if self._fill == self.window:
                out.append(self._finish_window(self._samples + pos))
        self._samples += n
        return out

    def _finish_window(self, end_sample: int) -> LevelReading:
        p = self.params
        rms = math.sqrt(self._sumsq / self.window)
        level = to_db(rms)
        peak_db = to_db(self._peak)
        self._zero_run = 0 if self._nonzero else self._zero_run + 1
        self._recent.append(level)
        floor = min(self._floor_hist) if self._floor_hist else FLOOR_DB
        known = len(self._recent) >= self._min_history
        steady = known and float(np.std(np.fromiter(self._recent, dtype=np.float64))) < p.steady_std_db
        loud = known and not steady and level > p.silence_dbfs and level > floor + p.noise_margin_db
        if loud:
            self._above += 1
            self._below = 0
        else:
            self._below += 1
            self._above = 0
        if not self._sound and self._above >= self._attack_n:
            self._sound = True
        elif self._sound and self._below >= self._release_n:
            self._sound = False
        if steady:
            # stationary noise: it *is* the room's floor now, loud or not
            self._floor_hist.clear()
            self._floor_hist.append(float(np.mean(np.fromiter(self._recent, dtype=np.float64))))
        elif known and not loud and not self._sound:
            self._floor_hist.append(level)
        clip_window = int(p.clip_hold_s * self.sample_rate)
        reading = LevelReading(
            t=end_sample / self.sample_rate,
            rms_dbfs=level,
            peak_dbfs=peak_db,
            clipping=end_sample - self._last_clip_sample <= clip_window,
            clipped_samples=self._clipped,
            sound=self._sound,
            noise_floor_dbfs=min(self._floor_hist) if self._floor_hist else FLOOR_DB,
            dead_input=self._zero_run * p.window_s >= p.dead_input_s,
        )
        self._sumsq = 0.0
        self._peak = 0.0
        self._fill = 0
        self._nonzero = False
        self.last = reading
        return reading
