"""Training-time augmentation: scan-like page degradations and room/microphone/noise
for audio.

Why at training time: every epoch sees a different degradation of the same
engraving and performance, which the stored corpus could never hold. Page
degradations follow Carvalho et al. (MMSys 2023): bilevel thresholding,
rotation, noise, blur, JPEG, Perlin noise, elastic deformation. All functions
take a numpy Generator so they are reproducible.
"""

from __future__ import annotations

import io

import numpy as np
from scipy import ndimage, signal


# --- pages (uint8 greyscale, white = 255) ------------------------------------

def perlin_noise(shape: tuple[int, int], rng: np.random.Generator, cell: int = 64) -> np.ndarray:
    """Smooth gradient noise in [-1, 1] (Perlin-style, bilinear-interpolated lattice)."""
    h, w = shape
    gh, gw = h // cell + 2, w // cell + 2
    angles = rng.uniform(0, 2 * np.pi, size=(gh, gw))
    gx, gy = np.cos(angles), np.sin(angles)
    y, x = np.mgrid[0:h, 0:w] / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = y - y0, x - x0

    def dot(iy, ix, dy, dx):
        return gx[iy, ix] * dx + gy[iy, ix] * dy

    def fade(t):
        return t * t * t * (t * (t * 6 - 15) + 10)

    n00 = dot(y0, x0, fy, fx)
    n10 = dot(y0 + 1, x0, fy - 1, fx)
    n01 = dot(y0, x0 + 1, fy, fx - 1)
    n11 = dot(y0 + 1, x0 + 1, fy - 1, fx - 1)
    u, v = fade(fx), fade(fy)
    out = (n00 * (1 - u) + n01 * u) * (1 - v) + (n10 * (1 - u) + n11 * u) * v
    return np.clip(out * 1.4, -1, 1)


def elastic(img: np.ndarray, rng: np.random.Generator, alpha: float = 8.0, sigma: float = 12.0) -> np.ndarray:
    """Elastic deformation (Simard et al.): smooth random displacement field."""
    h, w = img.shape
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma) * alpha * sigma / 4
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma) * alpha * sigma / 4
    y, x = np.mgrid[0:h, 0:w]
    return ndimage.map_coordinates(img, [y + dy, x + dx], order=1, mode="nearest").astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def degrade_page(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A scan-like version of a clean page and the 2x3 affine matrix that maps
    clean (x, y, 1) to degraded pixel coordinates (rotation about the centre), so
    notehead positions and system boxes can follow. Elastic deformation moves
    pixels by at most a few pixels and is not in the matrix."""
    out = img.astype(np.float32)
    h, w = img.shape
    # Perlin stains / uneven illumination.
    if rng.random() < 0.5 * strength:
        out = out - (perlin_noise((h, w), rng, cell=int(rng.integers(32, 160))) + 1) * rng.uniform(5, 40)
    # Rotation (skewed scan).
    angle = float(rng.uniform(-1.5, 1.5) * strength) if rng.random() < 0.7 else 0.0
    if angle:
        out = ndimage.rotate(out, angle, reshape=False, order=1, mode="constant", cval=255.0)
    if rng.random() < 0.3 * strength:
        out = elastic(np.clip(out, 0, 255).astype(np.uint8), rng, alpha=rng.uniform(2, 8)).astype(np.float32)
    if rng.random() < 0.5 * strength:
        out = ndimage.gaussian_filter(out, rng.uniform(0.3, 1.2))
    if rng.random() < 0.5 * strength:
        out = out + rng.normal(0, rng.uniform(2, 15), size=out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3 * strength:  # bilevel scan (CCITT-style pages)
        out = np.where(out > rng.uniform(110, 190), 255, 0).astype(np.uint8)
    if rng.random() < 0.5 * strength:
        out = jpeg(out, int(rng.integers(30, 90)))
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), np.sin(theta)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # ndimage.rotate turns the image counter-clockwise by `angle` in array coordinates.
    m = np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy]])
    return out, m


# --- audio (mono float32) ------------------------------------------------------

def room_impulse(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room: exponentially decaying noise, RT60 0.2–1.5 s, with a direct path."""
    rt60 = rng.uniform(0.2, 1.5)
    n = int(rt60 * sample_rate)
    t = np.arange(n) / sample_rate
    ir = rng.normal(0, 1, n) * np.exp(-6.9 * t / rt60)
    ir = signal.lfilter([1.0], [1.0, -rng.uniform(0.2, 0.8)], ir)  # darker tail
    ir *= rng.uniform(0.05, 0.4) / (np.sqrt(np.sum(ir**2)) + 1e-9)
    ir[0] = 1.0
    return ir.astype(np.float32)


def microphone(audio: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Microphone/loudspeaker colouring: random high-pass, low-pass and a peaking bump."""
    nyq = sample_rate / 2
    hp = signal.butter(2, rng.uniform(40, 200) / nyq, "highpass", output="sos")
    lp = signal.butter(2, rng.uniform(3500, 10000) / nyq, "lowpass", output="sos")
    out = signal.sosfilt(lp, signal.sosfilt(hp, audio))
    f0 = rng.uniform(300, 3000) / nyq
    b, a = signal.iirpeak(f0, Q=rng.uniform(0.7, 3))
    out = out + rng.uniform(-0.5, 0.8) * signal.lfilter(b, a, out)
    return out.astype(np.float32)


def degrade_audio(audio: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Reverb, microphone colouring, background noise at 10–40 dB SNR; keeps length and timing."""
    out = audio.astype(np.float32)
    if rng.random() < 0.7:
        out = signal.fftconvolve(out, room_impulse(sample_rate, rng))[: len(audio)].astype(np.float32)
    if rng.random() < 0.7:
        out = microphone(out, sample_rate, rng)
    if rng.random() < 0.7:
        noise = rng.normal(0, 1, len(out)).astype(np.float32)
        if rng.random() < 0.5:  # pink-ish
            noise = signal.lfilter([1.0], [1.0, -0.95], noise).astype(np.float32)
        p_sig = float(np.mean(out**2)) + 1e-12
        snr_db = rng.uniform(10, 40)
        noise *= np.sqrt(p_sig / (10 ** (snr_db / 10)) / (float(np.mean(noise**2)) + 1e-12))
        out = out + noise
    peak = float(np.abs(out).max(initial=0.0))
    return out / peak * 0.9 if peak > 1.0 else out
