"""A picture for a person to check a piece's alignment.

Top: the page with a dot on every notehead, coloured by onset time (blue =
early, red = late), and the system boxes. A notehead that sounds more than
once (repeats are taken in the audio, see docs/corpus-format.md) keeps the
colour of its first sounding and gets one ring per further sounding, each in
the colour of that sounding's onset (and a label "x3" from three soundings
on). Bottom: the spectrogram of the time span of that page with a line at
every sounding's onset, in the same colours, and a magenta bar where the
performance jumps back to music already played (a repeat), labelled with the
time of the first sounding it returns to (a small magenta mark at the top).
Misalignment shows as colours that do not run left to right along the
systems, as rings on noteheads the score does not repeat, or as onset lines
that do not sit on note attacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from companion.errors import DataError

JUMP_COLOUR = (220, 0, 200)
CHORD_S = 0.03
"""Onsets closer than this are one chord (as in the order check)."""
JUMP_BACK_S = 0.25
"""A chord whose notes first sounded this much earlier than the previous chord's is a jump back."""


@dataclass
class Inspection:
    """What :func:`inspect_piece` drew, with where (pixels of the written image)."""

    noteheads: int = 0
    soundings: int = 0
    repeated: int = 0
    """Noteheads on the page that sound more than once."""
    spec_top: int = 0
    """Row of the image where the spectrogram starts."""
    px_per_s: float = 0.0
    heads: list[dict] = field(default_factory=list)
    """Per notehead on the page: ``x``, ``y`` and its ``onsets`` in time order."""
    jumps: list[dict] = field(default_factory=list)
    """Per jump back in the page's time span: ``time`` (s, in the audio), ``target`` (s, first sounding of
    the music it returns to), ``x`` (image column of the bar)."""
    radius: int = 0


def _colour(u: np.ndarray) -> np.ndarray:
    """Blue -> green -> red ramp for ``u`` in [0, 1]; returns uint8 RGB rows."""
    u = np.clip(u, 0, 1)[:, None]
    blue = np.array([40, 60, 230])
    green = np.array([30, 170, 60])
    red = np.array([230, 40, 40])
    rgb = np.where(u < 0.5, blue + (green - blue) * (u * 2), green + (red - green) * (u * 2 - 1))
    return rgb.astype(np.uint8)


def first_soundings(heads: np.ndarray) -> np.ndarray:
    """For each row, the onset of its notehead's first sounding."""
    if len(heads) == 0:
        return np.zeros(0, dtype=np.float64)
    notes, inverse = np.unique(heads["note"], return_inverse=True)
    first = np.full(len(notes), np.inf)
    np.minimum.at(first, inverse, heads["onset"].astype(np.float64))
    return first[inverse]


def repeat_jumps(heads: np.ndarray) -> list[tuple[float, float]]:
    """Where the performance returns to music it already played: ``(time, target)``
    pairs, ``time`` the onset of the first chord after the jump and ``target``
    the onset at which that chord's noteheads first sounded.

    The rows are read in time order as chords (onsets within 30 ms); each
    chord's place in the score is the first sounding of its noteheads (the
    median, for chords of several). Within a pass that place moves forward
    with the music; a jump back is a chord whose place lies more than 0.25 s
    before the previous chord's.
    """
    if len(heads) == 0:
        return []
    order = np.argsort(heads["onset"], kind="stable")
    t = heads["onset"][order].astype(np.float64)
    place = first_soundings(heads)[order]
    starts = np.flatnonzero(np.concatenate([[True], np.diff(t) > CHORD_S]))
    ends = np.append(starts[1:], len(t))
    chord_t = t[starts]
    chord_place = np.array([np.median(place[a:b]) for a, b in zip(starts, ends)])
    back = np.flatnonzero(np.diff(chord_place) < -JUMP_BACK_S) + 1
    return [(float(chord_t[i]), float(chord_place[i])) for i in back]


def inspect_piece(piece: Path, png: Path, page: int = 0) -> Inspection:
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

    def colour(t: float) -> tuple[int, int, int]:
        return tuple(int(v) for v in _colour(np.array([(t - t0) / span]))[0])

    for s in systems[systems["page"] == page]:
        draw.rectangle([s["x0"], s["y0"], s["x1"], s["y1"]], outline=(255, 150, 0), width=2)
    r = max(3, img.width // 250)
    info = Inspection(soundings=len(on_page), radius=r)
    for note in np.unique(on_page["note"]):
        rows = on_page[on_page["note"] == note]
        onsets = sorted(float(t) for t in rows["onset"])
        x, y = float(rows["x"][0]), float(rows["y"][0])
        info.heads.append({"x": x, "y": y, "onsets": onsets})
        # later soundings first, outermost ring first, so no ring covers another
        for k in range(len(onsets) - 1, 0, -1):
            R = r + 3 * k
            draw.ellipse([x - R, y - R, x + R, y + R], outline=colour(onsets[k]), width=2)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour(onsets[0]))
        if len(onsets) > 2:
            R = r + 3 * (len(onsets) - 1)
            draw.text((x + R + 1, y - R - 10), f"x{len(onsets)}", fill=JUMP_COLOUR)
    info.noteheads = len(info.heads)
    info.repeated = sum(len(h["onsets"]) > 1 for h in info.heads)

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
    info.px_per_s = px_per_frame * fps

    def column(t: float) -> float:
        return (t * fps - f0) * px_per_frame

    onsets = [float(t) for t in on_page["onset"]]
    for t in onsets:  # a faint full-height line at every sounding
        sdraw.line([column(t), 0, column(t), spec_img.height], fill=tuple(v // 3 + 170 for v in colour(t)), width=1)
    for t, target in repeat_jumps(heads):
        if not f0 / fps <= t <= f1 / fps:
            continue
        x = column(t)
        sdraw.line([x, 0, x, spec_img.height], fill=JUMP_COLOUR, width=3)
        label = f"repeat: back to {target:.1f} s"
        sdraw.text((x + 4, 10) if x + 4 + 6 * len(label) < spec_img.width else (x - 4 - 6 * len(label), 10),
                   label, fill=JUMP_COLOUR)
        if f0 / fps <= target <= f1 / fps:
            xt = column(target)
            sdraw.polygon([(xt - 5, 0), (xt + 5, 0), (xt, 8)], fill=JUMP_COLOUR)
        info.jumps.append({"time": t, "target": target, "x": x})
    for t in onsets:  # a short tick in full colour
        sdraw.line([column(t), 0, column(t), 8], fill=colour(t), width=2)
    out = Image.new("RGB", (img.width, img.height + spec_img.height + 10), "white")
    out.paste(img, (0, 0))
    out.paste(spec_img, (0, img.height + 10))
    info.spec_top = img.height + 10
    png.parent.mkdir(parents=True, exist_ok=True)
    out.save(png)
    return info
