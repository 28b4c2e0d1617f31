"""Augmentations, applied on batches of tensors (cheap on CPU).

Audio (Carvalho et al. 2023 list), in the spectrogram domain because the
prepared pairs hold log-filtered spectrograms ``s = log10(1 + |X|)``; each
operation maps to the linear magnitude ``m = 10**s - 1`` and back:

=====================  ==============================================================
waveform augmentation  spectrogram-domain equivalent used here
=====================  ==============================================================
time shift             random crop offset inside the stored context (``crop_audio``)
polarity inversion     identity on magnitudes (the spectrogram is sign-invariant);
                       listed for completeness, nothing to do
noise, 5–20 dB SNR     white-noise magnitude floor added at the drawn SNR
gain ±12 dB            magnitude scaled by 10**(g/20)
7-band EQ              per-band gains (±6 dB) at 7 log-spaced centres, interpolated
                       over the 92 bands
time stretch 0.5–1.8   resampling the time axis (linear interpolation) of the crop
time / frequency masks SpecAugment masks (up to 8 frames, up to 12 bands)
=====================  ==============================================================

Sheet (scan-like degradations): small rotation (±1.5°), scale (0.9–1.1),
translation (±2 px), blur, additive noise, contrast / brightness changes and random
binarisation, plus horizontal jitter via the crop offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class AudioAugment:
    p: float = 0.5
    shift: bool = True
    max_shift: int | None = None
    """Largest crop offset from the centre in frames; None = anywhere in the stored context.
    Supervised pairs need a small bound: the excerpt must stay on the snippet's notes."""
    noise_snr_db: tuple[float, float] = (5.0, 20.0)
    gain_db: float = 12.0
    eq_bands: int = 7
    eq_db: float = 6.0
    stretch: tuple[float, float] = (0.5, 1.8)
    time_mask: int = 8
    freq_mask: int = 12


@dataclass(frozen=True)
class SheetAugment:
    p: float = 0.5
    shift: bool = True
    max_shift: int | None = None
    """Largest crop offset from the centre in pixels; None = anywhere in the stored context."""
    rotate_deg: float = 1.5
    scale: tuple[float, float] = (0.9, 1.1)
    translate_px: float = 2.0
    blur: bool = True
    noise: float = 0.08
    binarise: bool = True


def crop(x: torch.Tensor, width: int, gen: torch.Generator | None, random: bool,
         max_shift: int | None = None) -> torch.Tensor:
    """Crop (N, H, W0) to (N, H, width) at the centre or at random offsets per item
    (at most ``max_shift`` from the centre when given)."""
    n, _, w0 = x.shape
    if w0 == width:
        return x
    c = (w0 - width) // 2
    if not random or max_shift == 0:
        return x[:, :, c : c + width]
    lo, hi = 0, w0 - width
    if max_shift is not None:
        lo, hi = max(lo, c - max_shift), min(hi, c + max_shift)
    off = torch.randint(lo, hi + 1, (n,), generator=gen)
    idx = off[:, None] + torch.arange(width)[None, :]
    return torch.gather(x, 2, idx[:, None, :].expand(-1, x.shape[1], -1))


def _bernoulli(n: int, p: float, gen: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=gen) < p


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def augment_audio(
    x: torch.Tensor, width: int, aug: AudioAugment, gen: torch.Generator | None = None
) -> torch.Tensor:
    """x: (N, 92, W0) log spectrogram with context -> (N, 92, width) augmented crops."""
    x = x.float()
    n, bins, w0 = x.shape
    # Time stretch: read rate*width source frames and resample to width.
    stretch = _bernoulli(n, aug.p, gen)
    if aug.stretch and stretch.any():
        rates = _uniform(n, *aug.stretch, gen)
        rates = torch.where(stretch, rates, torch.ones(n))
        rates = torch.clamp(rates, max=(w0 - 1) / max(width - 1, 1))
        span = rates * (width - 1)
        slack = (w0 - 1) - span
        start = slack * (torch.rand(n, generator=gen) if aug.shift else torch.full((n,), 0.5))
        if aug.shift and aug.max_shift is not None:  # the stretched read stays near the centre
            centre = slack / 2
            start = centre + (torch.rand(n, generator=gen) * 2 - 1) * min(aug.max_shift, float(w0))
            start = torch.minimum(torch.maximum(start, torch.zeros(n)), slack)
        pos = start[:, None] + torch.linspace(0, 1, width)[None, :] * span[:, None]
        grid_x = pos / (w0 - 1) * 2 - 1
        grid = torch.stack([grid_x[:, None, :].expand(n, bins, width),
                            torch.linspace(-1, 1, bins)[None, :, None].expand(n, bins, width)], dim=-1)
        x = F.grid_sample(x[:, None], grid, mode="bilinear", align_corners=True)[:, 0]
    else:
        x = crop(x, width, gen, aug.shift, aug.max_shift)
    m = torch.pow(10.0, x) - 1.0  # linear magnitude
    # Gain.
    g = torch.where(_bernoulli(n, aug.p, gen), _uniform(n, -aug.gain_db, aug.gain_db, gen), torch.zeros(n))
    m = m * torch.pow(10.0, g / 20.0)[:, None, None]
    # 7-band EQ.
    if aug.eq_bands > 0:
        use = _bernoulli(n, aug.p, gen).float()[:, None]
        gains = _uniform(n * aug.eq_bands, -aug.eq_db, aug.eq_db, gen).reshape(n, aug.eq_bands) * use
        curve = F.interpolate(gains[:, None, :], size=bins, mode="linear", align_corners=True)[:, 0]
        m = m * torch.pow(10.0, curve / 20.0)[:, :, None]
    # Noise at an SNR drawn in dB.
    use = _bernoulli(n, aug.p, gen)
    if use.any():
        snr = _uniform(n, *aug.noise_snr_db, gen)
        power = (m**2).mean(dim=(1, 2)).clamp_min(1e-8)
        noise_pow = power / torch.pow(10.0, snr / 10.0)
        noise = torch.rand(m.shape, generator=gen) * torch.sqrt(3 * noise_pow)[:, None, None]
        m = m + noise * use.float()[:, None, None]
    x = torch.log10(1.0 + m.clamp_min(0))
    # SpecAugment masks.
    if aug.time_mask > 0:
        use = _bernoulli(n, aug.p, gen)
        t0 = torch.randint(0, width, (n,), generator=gen)
        tl = torch.randint(0, aug.time_mask + 1, (n,), generator=gen) * use
        t = torch.arange(width)[None, :]
        mask = (t >= t0[:, None]) & (t < (t0 + tl)[:, None])
        x = x.masked_fill(mask[:, None, :], 0.0)
    if aug.freq_mask > 0:
        use = _bernoulli(n, aug.p, gen)
        f0 = torch.randint(0, bins, (n,), generator=gen)
        fl = torch.randint(0, aug.freq_mask + 1, (n,), generator=gen) * use
        f = torch.arange(bins)[None, :]
        mask = (f >= f0[:, None]) & (f < (f0 + fl)[:, None])
        x = x.masked_fill(mask[:, :, None], 0.0)
    return x


def augment_sheet(
    x: torch.Tensor, width: int, aug: SheetAugment, gen: torch.Generator | None = None
) -> torch.Tensor:
    """x: (N, 80, W0) uint8 (or float [0,1]) snippets with context -> (N, 80, width) float, 1 = paper."""
    x = crop(x, width, gen, aug.shift, aug.max_shift)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    n, h, w = x.shape
    ink = 1.0 - x
    use = _bernoulli(n, aug.p, gen)
    if use.any():
        ang = _uniform(n, -aug.rotate_deg, aug.rotate_deg, gen) * math.pi / 180 * use
        sc = torch.where(use, _uniform(n, *aug.scale, gen), torch.ones(n))
        tx = _uniform(n, -aug.translate_px, aug.translate_px, gen) * 2 / w * use
        ty = _uniform(n, -aug.translate_px, aug.translate_px, gen) * 2 / h * use
        cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
        theta = torch.stack([torch.stack([cos, -sin * h / w, tx], 1), torch.stack([sin * w / h, cos, ty], 1)], 1)
        grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
        ink = F.grid_sample(ink[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    if aug.blur:
        use = _bernoulli(n, aug.p * 0.5, gen).float()[:, None, None]
        k = torch.tensor([0.25, 0.5, 0.25])
        blurred = F.conv2d(F.pad(ink[:, None], (1, 1, 1, 1), mode="replicate"), (k[:, None] * k[None, :])[None, None])[:, 0]
        ink = use * blurred + (1 - use) * ink
    # Contrast / brightness.
    use = _bernoulli(n, aug.p, gen)
    contrast = torch.where(use, _uniform(n, 0.6, 1.2, gen), torch.ones(n))[:, None, None]
    bright = torch.where(use, _uniform(n, -0.1, 0.1, gen), torch.zeros(n))[:, None, None]
    ink = ink * contrast + bright
    if aug.noise > 0:
        use = _bernoulli(n, aug.p, gen).float()[:, None, None]
        ink = ink + use * aug.noise * torch.randn(ink.shape, generator=gen)
    if aug.binarise:
        use = _bernoulli(n, aug.p * 0.3, gen)[:, None, None]
        thr = _uniform(n, 0.3, 0.6, gen)[:, None, None]
        ink = torch.where(use, (ink > thr).float(), ink)
    return (1.0 - ink.clamp(0.0, 1.0))
