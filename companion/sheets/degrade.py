"""Deterministic scan degradations for the robustness benchmark and tests.

Why these: a phone photo or a cheap scan of a score is slightly rotated, blurred,
noisy, JPEG-compressed and low in resolution. The page is rendered at 150 dpi
(A4 width, 1240 px), rotated by 2 degrees, blurred, given Gaussian noise and
stored as a JPEG of quality 30 inside a fresh PDF, which then goes through the
normal analysis path, so MuPDF's JPEG decoding and scaling are exercised too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DPI150_WIDTH = 1240
"""A4 width at 150 dpi, in pixels."""


@dataclass(frozen=True)
class Degradation:
    angle: float = 2.0
    """Rotation in degrees (the sign is drawn from the generator)."""
    blur_sigma: float = 1.0
    """Gaussian blur, pixels at 150 dpi."""
    noise_sigma: float = 20.0
    """Gaussian noise, grey levels."""
    jpeg_quality: int = 30


@dataclass(frozen=True)
class Rotation:
    """Where things move when a page image is rotated about its centre."""

    degrees: float
    aspect: float
    """Page height / width."""

    def transform_band(self, box: tuple[float, float, float, float], width: float) -> tuple[float, float]:
        """Vertical extent, in pixels of a ``width``-wide image, of a box given in page-width fractions."""
        x0, y0, x1, y1 = box
        cx, cy = 0.5, self.aspect / 2
        # image y points down; a counter-clockwise rotation by +a on screen
        a = math.radians(self.degrees)
        ys = []
        for x, y in ((x0, y0), (x1, y0), (x0, y1), (x1, y1)):
            dx, dy = x - cx, y - cy
            ys.append(cy - math.sin(a) * dx + math.cos(a) * dy)
        return min(ys) * width, max(ys) * width


def degrade_image(img: np.ndarray, rng: np.random.Generator, d: Degradation = Degradation()) -> tuple[np.ndarray, Rotation]:
    """Rotate, blur and add noise to a greyscale page (JPEG is applied by :func:`degraded_pdf`)."""
    angle = d.angle * (1 if rng.random() < 0.5 else -1)
    f = img.astype(np.float32)
    # scipy rotates counter-clockwise on screen for a positive angle (rows down)
    f = ndimage.rotate(f, angle, reshape=False, order=1, mode="constant", cval=255.0, prefilter=False)
    if d.blur_sigma > 0:
        f = ndimage.gaussian_filter(f, d.blur_sigma)
    if d.noise_sigma > 0:
        f = f + rng.normal(0.0, d.noise_sigma, f.shape).astype(np.float32)
    out = np.clip(np.round(f), 0, 255).astype(np.uint8)
    return out, Rotation(angle, img.shape[0] / img.shape[1])


def degraded_pdf(img: np.ndarray, quality: int = 30) -> bytes:
    """A one-page PDF holding ``img`` as a JPEG of the given quality."""
    import pymupdf

    h, w = img.shape
    pix = pymupdf.Pixmap(pymupdf.csGRAY, w, h, np.ascontiguousarray(img).tobytes(), False)
    jpeg = pix.tobytes("jpg", jpg_quality=quality)
    doc = pymupdf.open()
    page = doc.new_page(width=w * 72 / 150, height=h * 72 / 150)
    page.insert_image(page.rect, stream=jpeg)
    data = doc.tobytes()
    doc.close()
    return data


def degrade_page(img150: np.ndarray, rng: np.random.Generator,
                 d: Degradation = Degradation()) -> tuple[bytes, Rotation]:
    """The whole chain on a 150-dpi page image: a PDF to analyse and the rotation applied."""
    out, rot = degrade_image(img150, rng, d)
    return degraded_pdf(out, d.jpeg_quality), rot
