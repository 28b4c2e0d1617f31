"""The real sheet front end for indexing: companion.sheets rendering and system detection.

Why an adapter: the indexer talks to a small protocol (open, detect, cut) so
that its crash-safety and incremental logic do not depend on the detector's
types; this module maps the protocol onto :mod:`companion.sheets` and turns a
stored :class:`SystemRecord` back into the detector's ``System`` so a model
change re-embeds without re-detecting.

Strips follow the papers' sheet front end (Dorfer et al. 2018): the system
band, deskewed by the page angle the detector measured, scaled to 160 px high;
snippets 200 px wide every 50 px, downscaled 2x to 80 x 100; the passage
strip is the whole strip downscaled 2x (80 px high).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from companion.config import SheetConfig
from companion.errors import SheetError
from companion.library.protocols import SystemRecord


class SheetsFrontEnd:
    """``SheetFrontEnd`` over :mod:`companion.sheets` (picklable, for worker processes)."""

    def __init__(self, cfg: SheetConfig | None = None) -> None:
        self.cfg = cfg or SheetConfig()

    def open(self, path: Path):
        from companion.sheets.document import open_document

        return open_document(Path(path), self.cfg)

    def detect(self, image: np.ndarray, page: int) -> list[SystemRecord]:
        from companion.sheets.detect import DetectOptions, detect_systems

        opts = DetectOptions(deadline=time.monotonic() + self.cfg.page_time_limit_s)
        try:
            systems = detect_systems(image, opts)
        except SheetError as exc:
            raise SheetError(f"system detection gave up ({exc})") from exc
        return [
            SystemRecord(page=page, box=tuple(map(float, s.box)), n_staves=s.n_staves,  # type: ignore[arg-type]
                         staff_lines=s.staff_lines, angle=float(s.angle),
                         staff_box=tuple(map(float, s.staff_box)))  # type: ignore[arg-type]
            for s in systems
        ]

    def cut(self, image: np.ndarray, system: SystemRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        strip = system_strip(image, system, self.cfg.strip_height)
        small = downscale(strip, self.cfg.snippet_size[0] / self.cfg.strip_height)
        snippets, xs = cut_snippets(strip, self.cfg.snippet_width, self.cfg.snippet_hop, self.cfg.snippet_size,
                                    small=small)
        return snippets, xs, small


def system_strip(image: np.ndarray, system: SystemRecord, height: int = 160) -> np.ndarray:
    """The system's band, deskewed, scaled to ``height`` px (uint8, white = 255)."""
    h, w = image.shape
    x0, y0, x1, y1 = system.box
    x0, x1 = max(0, int(math.floor(x0))), min(w, int(math.ceil(x1)))
    y0, y1 = max(0.0, y0), min(float(h), y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise SheetError(f"system box {system.box} is empty")
    # sample rows along the skew: y(x) = y + tan(angle) * (x - centre)
    slope = math.tan(math.radians(system.angle))
    out_w = max(1, int(round((x1 - x0) * height / (y1 - y0))))
    xs = np.linspace(x0, x1 - 1, out_w)
    ys = np.linspace(y0, y1 - 1, height)
    centre = 0.5 * (x0 + x1)
    yy = ys[:, None] + slope * (xs[None, :] - centre)
    xx = np.broadcast_to(xs[None, :], yy.shape)
    # work on the band only (plus the skew and a filter margin), not the whole page
    r0 = max(0, int(math.floor(yy.min())) - 4)
    r1 = min(h, int(math.ceil(yy.max())) + 5)
    band = image[r0:r1, x0:x1].astype(np.float32)
    shrink = (y1 - y0) / height
    if shrink > 1.5:  # smooth before sampling when shrinking (anti-aliasing)
        band = ndimage.gaussian_filter(band, sigma=0.5 * shrink)
    strip = ndimage.map_coordinates(band, [yy - r0, xx - x0], order=1, mode="constant", cval=255.0)
    return np.clip(np.round(strip), 0, 255).astype(np.uint8)


def downscale(strip: np.ndarray, factor: float) -> np.ndarray:
    """Area-style downscaling by ``factor`` (< 1)."""
    h = max(1, int(round(strip.shape[0] * factor)))
    w = max(1, int(round(strip.shape[1] * factor)))
    f = strip.astype(np.float32)
    if factor < 0.75:
        f = ndimage.uniform_filter(f, size=int(round(1 / factor)))
    ys = np.linspace(0, strip.shape[0] - 1, h)
    xs = np.linspace(0, strip.shape[1] - 1, w)
    out = ndimage.map_coordinates(f, np.meshgrid(ys, xs, indexing="ij"), order=1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def cut_snippets(strip: np.ndarray, width: int = 200, hop: int = 50, out: tuple[int, int] = (80, 100),
                 small: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Snippets ``width`` px wide every ``hop`` px (the last one flush right), downscaled to ``out``.

    ``small`` is the strip already downscaled to ``out[0]`` px high (saves a second resampling).
    """
    h, w = strip.shape
    xs = list(range(0, max(1, w - width + 1), hop))
    if w > width and xs[-1] != w - width and w - width - xs[-1] > hop // 2:
        xs.append(w - width)
    if small is None:
        small = downscale(strip, out[0] / h)
    scale = out[0] / h
    snippets = np.stack([_fit(small[:, int(round(x * scale)) : int(round(x * scale)) + out[1]], out[1]) for x in xs])
    return snippets, np.asarray(xs, dtype=np.int32)


def _fit(a: np.ndarray, width: int) -> np.ndarray:
    if a.shape[1] >= width:
        return a[:, :width]
    return np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=255)
