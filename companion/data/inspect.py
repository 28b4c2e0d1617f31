"""A picture for a person to check a piece's alignment.

Top: the page with a dot on every notehead, coloured by onset time (blue =
early, red = late) and system boxes. Bottom: the spectrogram of the time span
of that page with a line at every onset, in the same colours. Misalignment
shows as colours that do not run left to right along the systems, or as
onset lines that do not sit on note attacks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from companion.errors import DataError


def _colour(u: np.ndarray) -> np.ndarray:
    """Blue -> green -> red ramp for ``u`` in [0, 1]; returns uint8 RGB rows."""
    u = np.clip(u, 0, 1)[:, None]
    blue = np.array([40, 60, 230])
    green = np.array([30, 170, 60])
    red = np.array([230, 40, 40])
    rgb = np.where(u < 0.5, blue + (green - blue) * (u * 2), green + (red - green) * (u * 2 - 1))
    return rgb.astype(np.uint8)


def inspect_piece(piece: Path, png: Path, page: int = 0) -> None:
    from PIL import Image, ImageDraw

    meta_path = piece / "meta.json"
    if not meta_path.exists():
        raise DataError(f"{piece} is not a built piece (no meta.json)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    page_file = piece / f"page_{page:03d}.png"
    if not page_file.exists():
        raise DataError(f"{piece.name} has {len(meta.get('pages', []))} pages; page {page} does not exist")
    heads = np.load(piece / "noteheads.npy")
    systems = np.load(piece / "systems.npy")
    spec = np.load(piece / "spec.npy").astype(np.float32)
    fps = float(meta.get("fps", 20.0))

    img = Image.open(page_file).convert("RGB")
    draw = ImageDraw.Draw(img)
    on_page = heads[heads["page"] == page]
    if len(on_page) == 0:
        raise DataError(f"no aligned noteheads on page {page}")
    t0, t1 = float(on_page["onset"].min()), float(on_page["onset"].max())
    span = max(t1 - t0, 1e-3)
    colours = _colour((on_page["onset"] - t0) / span)
    for s in systems[systems["page"] == page]:
        draw.rectangle([s["x0"], s["y0"], s["x1"], s["y1"]], outline=(255, 150, 0), width=2)
    r = max(3, img.width // 250)
    for h, c in zip(on_page, colours):
        draw.ellipse([h["x"] - r, h["y"] - r, h["x"] + r, h["y"] + r], fill=tuple(int(v) for v in c))

    # Spectrogram of the page's time span, scaled to the page width.
    f0 = max(int((t0 - 0.5) * fps), 0)
    f1 = min(int((t1 + 1.0) * fps) + 1, len(spec))
    part = spec[f0:f1]
    if len(part) == 0:
        raise DataError("the spectrogram does not cover this page's onsets")
    norm = part / max(float(part.max()), 1e-6)
    grey = (255 - np.clip(norm * 255, 0, 255)).astype(np.uint8).T[::-1]  # low bands at the bottom
    band_px = 3
    spec_img = Image.fromarray(grey).resize((img.width, grey.shape[0] * band_px), Image.NEAREST).convert("RGB")
    sdraw = ImageDraw.Draw(spec_img)
    px_per_frame = img.width / len(part)
    for h, c in zip(on_page, colours):
        x = (float(h["onset"]) * fps - f0) * px_per_frame
        # a short tick at the pitch's height and a faint full-height line
        sdraw.line([x, 0, x, spec_img.height], fill=tuple(int(v) for v in (c // 3 + 170)), width=1)
    for h, c in zip(on_page, colours):
        x = (float(h["onset"]) * fps - f0) * px_per_frame
        sdraw.line([x, 0, x, 8], fill=tuple(int(v) for v in c), width=2)
    out = Image.new("RGB", (img.width, img.height + spec_img.height + 10), "white")
    out.paste(img, (0, 0))
    out.paste(spec_img, (0, img.height + 10))
    png.parent.mkdir(parents=True, exist_ok=True)
    out.save(png)
