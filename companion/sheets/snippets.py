"""System strips and the snippets cut from them for the encoders.

Why this scale: as in Dorfer et al. (TISMIR 2018) every system is cut out of the
835-px page and scaled to a fixed strip height (160 px): the band is the staves'
extent plus ``margin`` x that extent above and below (room for ledger lines),
deskewed, so a grand staff appears at the same size in every score. Snippets of
200 x 160 px (hop 50) are downscaled by two to the encoder's 80 x 100 input.
The passage encoder (Carvalho & Widmer 2023) reads one snippet per second of
music: 200 px of strip correspond to 42 spectrogram frames (2.1 s), so one
second is about 95 strip pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from companion.sheets.detect import System

STRIP_MARGIN = 0.3
"""Band margin above and below the staves, as a fraction of their extent."""
PX_PER_SECOND = 200 / 2.1
"""Strip pixels per second of music (a 200-px snippet pairs with 2.1 s of audio)."""


@dataclass(frozen=True)
class StripGeometry:
    """How strip pixels map to analysis-page pixels: ``page_x = x0 + strip_x / scale``."""

    x0: float
    x1: float
    top: float
    """Page y of the strip's first row at the system's horizontal centre."""
    scale: float
    """Strip pixels per page pixel."""
    angle: float
    height: int

    @property
    def width(self) -> int:
        return max(1, int(round((self.x1 - self.x0) * self.scale)))

    def to_page_x(self, strip_x) -> np.ndarray:
        return self.x0 + np.asarray(strip_x, dtype=np.float64) / self.scale


def strip_geometry(system: System, height: int = 160, margin: float = STRIP_MARGIN) -> StripGeometry:
    """Where the strip of ``system`` lies on the page and at what scale."""
    x0, _, x1, _ = system.staff_box
    top = min(s[0] for s in system.staff_lines)
    bottom = max(s[-1] for s in system.staff_lines)
    extent = max(bottom - top, 4.0)
    band = extent * (1 + 2 * margin)
    return StripGeometry(x0=float(x0), x1=float(x1), top=top - margin * extent,
                         scale=height / band, angle=system.angle, height=height)


def system_strip(image: np.ndarray, system: System, height: int = 160,
                 margin: float = STRIP_MARGIN) -> np.ndarray:
    """The system as a ``height`` x W uint8 strip (white = 255), deskewed and scaled."""
    g = strip_geometry(system, height, margin)
    h, w = image.shape
    src = image.astype(np.float32)
    if g.scale < 0.8:  # shrinking: blur first so thin lines do not alias away
        y0 = int(max(0, g.top - 40))
        y1 = int(min(h, g.top + height / g.scale + 40))
        src = src.copy()
        src[y0:y1] = ndimage.gaussian_filter(src[y0:y1], 0.4 / g.scale)
    u = np.arange(g.width, dtype=np.float64)
    v = np.arange(height, dtype=np.float64)
    xs = g.x0 + (u + 0.5) / g.scale - 0.5
    xc = (g.x0 + g.x1) / 2
    tilt = (xs - xc) * math.tan(math.radians(g.angle))
    ys = g.top + (v[:, None] + 0.5) / g.scale - 0.5 + tilt[None, :]
    coords = np.stack([ys, np.broadcast_to(xs, ys.shape)])
    out = ndimage.map_coordinates(src, coords, order=1, mode="constant", cval=255.0, prefilter=False)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average when the factors are whole numbers (the usual 2x), else bilinear."""
    h, w = img.shape[-2:]
    oh, ow = shape
    if h % oh == 0 and w % ow == 0:
        fh, fw = h // oh, w // ow
        lead = img.shape[:-2]
        r = img.reshape(*lead, oh, fh, ow, fw).astype(np.float32).mean(axis=(-3, -1))
        return np.round(r).astype(np.uint8)
    zoom = [1.0] * (img.ndim - 2) + [oh / h, ow / w]
    r = ndimage.zoom(img.astype(np.float32), zoom, order=1, grid_mode=True, mode="nearest")
    return np.clip(np.round(r[..., :oh, :ow]), 0, 255).astype(np.uint8)


def cut_snippets(strip: np.ndarray, width: int = 200, hop: int = 50,
                 out: tuple[int, int] = (80, 100)) -> tuple[np.ndarray, np.ndarray]:
    """Snippets ``(N, *out)`` uint8 and their left edges (strip pixels, int32).

    A strip narrower than one snippet is padded with white on the right. The last
    snippet ends at or before the strip's end, plus one aligned to the end when
    the regular hop would leave more than half a hop uncovered.
    """
    if strip.ndim != 2 or width <= 0 or hop <= 0:
        raise ValueError("strip must be 2-D and width, hop positive")
    h, w = strip.shape
    if w < width:
        strip = np.pad(strip, ((0, 0), (0, width - w)), constant_values=255)
        w = width
    starts = list(range(0, w - width + 1, hop))
    if w - width - starts[-1] > hop // 2:
        starts.append(w - width)
    xs = np.asarray(starts, dtype=np.int32)
    windows = np.stack([strip[:, s : s + width] for s in starts])
    return _resize(windows, out), xs


def cut_passage_snippets(strip: np.ndarray, seconds: float = 1.0, px_per_second: float = PX_PER_SECOND,
                         width: int = 200, out: tuple[int, int] = (80, 100)) -> tuple[np.ndarray, np.ndarray]:
    """One snippet per ``seconds`` of music along the strip, for the passage encoder.

    Each snippet is the usual ``width``-px context centred on its step, so the
    passage encoder sees the same kind of image as the snippet encoder.
    """
    step = max(1, int(round(seconds * px_per_second)))
    h, w = strip.shape
    half = width // 2
    padded = np.pad(strip, ((0, 0), (half, half + step)), constant_values=255)
    centres = np.arange(step // 2, max(w, 1), step)
    windows = np.stack([padded[:, c : c + width] for c in centres])
    return _resize(windows, out), (centres - half).astype(np.int32)


def passage_strip(strip: np.ndarray, height: int = 80) -> np.ndarray:
    """The strip downscaled to the encoder's height (80 px for a 160-px strip)."""
    h, w = strip.shape
    new_w = max(1, int(round(w * height / h)))
    if h == 2 * height and w % 2 == 0:
        return _resize(strip, (height, w // 2))
    return _resize(strip, (height, new_w))
