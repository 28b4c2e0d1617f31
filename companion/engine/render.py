"""Rendered pieces for the demo and the identification benchmark: PDF + performance + system times.

Why here and not only in the corpus builder: the engine's demo and benchmark
need, per piece, a *scanned-looking PDF* (what a user indexes), a *recording
with expressive timing* in a held-out soundfont (what a user plays), and the
time span of every system in that recording (the ground truth of following).
The corpus builder (``companion.data``) makes training pairs; this module
makes whole pieces end to end with the same tools (verovio engraving, its
MIDI and note time map, FluidSynth).

Pipeline per piece: score (MusicXML/kern/MEI file or music21 corpus name) ->
verovio pages (SVG) -> systems and the notes on each (from the SVG) -> note
onsets (verovio time map) -> a smooth random tempo curve, onset jitter and
velocity changes applied to the MIDI (expressive timing) and to the onsets ->
FluidSynth -> audio; SVG -> raster (cairosvg) -> slight rotation, blur, paper
noise, JPEG -> PDF pages (scanned look).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from companion.errors import CompanionError

log = logging.getLogger(__name__)

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts"))
HELD_OUT_SOUNDFONT = "TimGM6mb.sf2"
"""Queries and the demo recording are played with this soundfont; training audio uses another
(FluidR3_GM), so the benchmark hears a piano the encoders never heard."""


class RenderError(CompanionError):
    """A score could not be engraved, synthesised or written."""


@dataclass
class RenderedPiece:
    title: str
    composer: str
    pdf: str
    audio: str
    systems: list[tuple[float, float, int]]
    """(start s, end s, system index in reading order) in the recording."""
    n_pages: int
    source: str

    def manifest_entry(self, in_library: bool, root: Path | None = None) -> dict:
        def rel(p: str) -> str:
            if not p or p == "." or root is None:
                return p
            return str(Path(p).resolve().relative_to(Path(root).resolve()))

        return {"title": self.title, "pdf": rel(self.pdf), "audio": rel(self.audio), "in_library": in_library,
                "systems": [list(s) for s in self.systems], "source": self.source}


# -- score loading and engraving -------------------------------------------------------------------


def load_score_data(source: str) -> str:
    """The score as a string verovio reads (MusicXML via music21 for .mxl and corpus names)."""
    path = Path(source)
    if path.suffix.lower() in (".krn", ".mei", ".xml", ".musicxml") and path.is_file():
        return path.read_text(encoding="utf-8", errors="replace")
    try:
        import music21
        from music21.musicxml.m21ToXml import GeneralObjectExporter

        score = music21.converter.parse(path) if path.is_file() else music21.corpus.parse(source)
        return GeneralObjectExporter(score).parse().decode("utf-8")
    except Exception as exc:  # music21 raises many kinds
        raise RenderError(f"cannot read the score {source}: {exc}") from exc


def _toolkit(data: str, seed: int):
    import verovio

    tk = verovio.toolkit()
    tk.setOptions({"pageWidth": 2100, "pageHeight": 2970, "scale": 40 + seed % 8, "footer": "none",
                   "breaks": "auto", "adjustPageHeight": False, "pageMarginTop": 80, "pageMarginBottom": 80,
                   # printed scores have heavier staff lines and stems than verovio's default; thin
                   # lines vanish when a page is scanned at ~150 dpi
                   "staffLineWidth": 0.25, "stemWidth": 0.25})
    if not tk.loadData(data):
        raise RenderError("verovio could not read the score")
    return tk


def systems_of_pages(svgs: list[str]) -> list[tuple[int, list[str]]]:
    """(page, note ids) of every system in reading order, from verovio's SVG."""
    out = []
    for page, svg in enumerate(svgs):
        root = ET.fromstring(svg)
        for g in root.iter("{http://www.w3.org/2000/svg}g"):
            if "system" in (g.get("class") or "").split():
                ids = [n.get("id") for n in g.iter("{http://www.w3.org/2000/svg}g")
                       if "note" in (n.get("class") or "").split()]
                out.append((page, [i for i in ids if i]))
    return out


def system_sequence(timemap: list[dict], systems: list[tuple[int, list[str]]], duration: float
                    ) -> list[tuple[float, float, int]]:
    """(start, end, system) in score seconds, in playing order -- repeats included.

    Verovio's time map plays repeats; notes of a repeated pass carry the id of
    the engraved note plus a ``-rendN`` suffix, which maps them back to their
    system.
    """
    import re

    system_of = {nid: k for k, (_, ids) in enumerate(systems) for nid in ids}
    strip = re.compile(r"-rend\d+$")
    seq: list[tuple[float, int]] = []
    for entry in sorted(timemap, key=lambda e: e["tstamp"]):
        hits = [system_of.get(strip.sub("", nid)) for nid in entry.get("on", [])]
        hits = [h for h in hits if h is not None]
        if not hits:
            continue
        k = min(hits)
        if not seq or seq[-1][1] != k:
            seq.append((entry["tstamp"] / 1000.0, k))
    out = []
    for j, (t, k) in enumerate(seq):
        end = seq[j + 1][0] if j + 1 < len(seq) else duration
        if end > t:
            out.append((t, end, k))
    return out


# -- expressive timing -------------------------------------------------------------------------------


def tempo_warp(duration: float, seed: int, depth: float = 0.15, ritardando: float = 0.25
               ) -> Callable[[np.ndarray], np.ndarray]:
    """Score seconds -> performance seconds under a smooth random tempo curve.

    Local tempo factor r(t) = exp(depth * smooth noise) with a slowing down over
    the last 4 s; performance time is the integral of 1 / r.
    """
    rng = np.random.default_rng(seed)
    step = 0.01
    t = np.arange(0.0, duration + 10.0, step)
    knots = np.arange(0.0, duration + 14.0, 4.0)
    noise = np.interp(t, knots, rng.standard_normal(len(knots)))
    r = np.exp(depth * noise)
    rit = np.clip((t - (duration - 4.0)) / 4.0, 0.0, 1.0)
    r = r * (1.0 - ritardando * rit)
    perf = np.concatenate([[0.0], np.cumsum(step / r)[:-1]])

    def warp(x: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(x, dtype=np.float64), t, perf)

    return warp


def _notes_from_midi(midi_bytes: bytes) -> list[tuple[float, float, int, int, int]]:
    """(onset s, offset s, pitch, velocity, channel) from verovio's MIDI."""
    import mido

    mid = mido.MidiFile(file=io.BytesIO(midi_bytes))
    now = 0.0
    open_notes: dict[tuple[int, int], list[tuple[float, int]]] = {}
    notes = []
    for msg in mid:
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((now, msg.velocity))
        elif msg.type in ("note_off", "note_on"):
            stack = open_notes.get((msg.channel, msg.note))
            if stack:
                on, vel = stack.pop(0)
                notes.append((on, max(now, on + 0.03), msg.note, vel, msg.channel))
    return sorted(notes)


def perform_midi(notes, warp, seed: int, path: Path, program: int = 0) -> float:
    """Write the expressive performance as a type-0 MIDI file; returns its duration."""
    import mido

    rng = np.random.default_rng(seed + 1)
    tpb, tempo = 480, 500000  # 960 ticks per second
    events = []
    for on, off, pitch, vel, _ in notes:
        a = float(warp(on)) + float(rng.normal(0.0, 0.012))
        b = float(warp(off))
        v = int(np.clip(vel * np.exp(rng.normal(0.0, 0.15)) * 0.9, 20, 120))
        events.append((max(0.0, a), 1, pitch, v))
        events.append((max(a + 0.03, b), 0, pitch, 0))
    events.sort(key=lambda e: (e[0], e[1]))
    mid = mido.MidiFile(type=0, ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    last = 0
    for t, kind, pitch, v in events:
        tick = int(round(t * 960))
        msg = "note_on" if kind else "note_off"
        track.append(mido.Message(msg, note=pitch, velocity=v, channel=0, time=tick - last))
        last = tick
    mid.save(path)
    return events[-1][0] if events else 0.0


def find_soundfont(name: str) -> Path:
    for d in SOUNDFONT_DIRS:
        if (d / name).is_file():
            return d / name
    raise RenderError(f"soundfont {name} not found in {', '.join(map(str, SOUNDFONT_DIRS))} "
                      "(install fluid-soundfont-gm / timgm6mb-soundfont)")


def synthesise(midi: Path, soundfont: Path, wav: Path, sample_rate: int = 22050) -> None:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RenderError("fluidsynth is not installed (apt-get install fluidsynth)")
    proc = subprocess.run([exe, "-ni", "-g", "0.6", "-r", str(sample_rate), "-F", str(wav), str(soundfont), str(midi)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not wav.is_file():
        raise RenderError(f"fluidsynth failed: {proc.stderr.strip()[-300:]}")


# -- scanned look --------------------------------------------------------------------------------------


def raster(svg: str, width: int = 1240) -> np.ndarray:
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=width, background_color="white")
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def degrade(page: np.ndarray, seed: int) -> np.ndarray:
    """A scanned look: slight rotation and shift, blur, uneven paper, noise, lower contrast."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = page.astype(np.float32) / 255.0
    x = 1.0 - ndimage.rotate(1.0 - x, float(rng.uniform(-0.8, 0.8)), reshape=False, order=1, mode="constant")
    x = ndimage.shift(x, (rng.uniform(-8, 8), rng.uniform(-8, 8)), order=1, mode="nearest")
    x = ndimage.gaussian_filter(x, float(rng.uniform(0.5, 0.9)))
    h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w]
    shade = 0.93 + 0.05 * np.sin(xx / w * np.pi * rng.uniform(0.5, 1.5) + rng.uniform(0, 6)) \
        * np.cos(yy / h * np.pi * rng.uniform(0.5, 1.5))
    ink = 0.08 + 0.06 * rng.random()
    x = ink + (shade - ink) * x
    x += rng.normal(0.0, 0.035, x.shape)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def write_pdf(pages: list[np.ndarray], path: Path, title: str, composer: str, quality: int = 60) -> None:
    import pymupdf
    from PIL import Image

    doc = pymupdf.open()
    for img in pages:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        page = doc.new_page(width=595, height=595 * img.shape[0] / img.shape[1])
        page.insert_image(page.rect, stream=buf.getvalue())
    doc.set_metadata({"title": title, "author": composer, "producer": "companion (rendered, scanned look)"})
    doc.save(path, garbage=3, deflate=True)
    doc.close()


def _synthesise_performance(notes, warp, seed: int, soundfont: str, spans, audio_path: Path,
                            max_seconds: float | None) -> list[tuple[float, float, int]]:
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        midi = Path(tmp) / "performance.mid"
        perform_midi(notes, warp, seed, midi)
        wav = Path(tmp) / "performance.wav"
        synthesise(midi, find_soundfont(soundfont), wav)
        audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    tail = spans[-1][1] + 2.0
    end = min(len(audio), int(sr * (tail if max_seconds is None else min(tail, max_seconds))))
    audio = audio[:end]
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    if peak > 0:
        audio = audio * (0.7 / peak)
    write_audio(audio_path, audio, sr)
    limit = len(audio) / sr
    return [(a, min(b, round(limit, 3)), k) for a, b, k in spans if a < limit]


def write_audio(path: Path, audio: np.ndarray, sr: int) -> None:
    """WAV/FLAC/OGG by suffix; OGG in 1-s blocks (libsndfile's Vorbis writer crashes on big writes)."""
    import soundfile as sf

    kw = {"format": "OGG", "subtype": "VORBIS"} if path.suffix.lower() == ".ogg" else {}
    with sf.SoundFile(path, "w", int(sr), 1, **kw) as f:
        for i in range(0, len(audio), int(sr)):
            f.write(np.ascontiguousarray(audio[i : i + int(sr)], dtype=np.float32))


# -- one piece -----------------------------------------------------------------------------------------


def render_piece(source: str, out_dir: Path, name: str, seed: int = 0, soundfont: str = HELD_OUT_SOUNDFONT,
                 title: str = "", composer: str = "", audio_format: str = "ogg", max_seconds: float | None = None,
                 pdf: bool = True, raster_width: int = 1240, audio: bool = True,
                 boxes: bool = False) -> RenderedPiece:
    """Engrave, perform and synthesise one score; write ``name.pdf`` and ``name.<audio_format>``.

    ``boxes``: also write ``name.systems.json`` (system boxes found on the clean
    engraving, the format of the real scans' annotations) for benchmarks.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tk = _toolkit(load_score_data(source), seed)
    svgs = [tk.renderToSVG(p) for p in range(1, tk.getPageCount() + 1)]
    systems = systems_of_pages(svgs)
    if not systems:
        raise RenderError(f"{source}: verovio engraved no systems")
    notes = _notes_from_midi(base64.b64decode(tk.renderToMIDI()))
    if not notes:
        raise RenderError(f"{source}: the score has no notes")
    duration = max(n[1] for n in notes)
    warp = tempo_warp(duration, seed)
    spans = [(round(float(warp(a)), 3), round(float(warp(b)), 3), k)
             for a, b, k in system_sequence(tk.renderToTimemap(), systems, duration)]
    audio_path = out_dir / f"{name}.{audio_format}"
    if audio:
        spans = _synthesise_performance(notes, warp, seed, soundfont, spans, audio_path, max_seconds)
    else:
        audio_path = Path("")
    meta_title = title or name
    meta_composer = composer
    pdf_path = out_dir / f"{name}.pdf"
    if pdf:
        clean = [raster(svg, raster_width) for svg in svgs]
        if boxes:
            from companion.engine.known_systems import boxes_from_svg, sidecar

            found = boxes_from_svg(svgs)
            if len(found) != len(systems):
                raise RenderError(f"{source}: {len(found)} system boxes for {len(systems)} systems")
            sidecar(pdf_path).write_text(json.dumps({"title": meta_title, "pages": len(svgs),
                                                     "units": "fractions of the page width, for x and y alike",
                                                     "systems": found}, indent=1), encoding="utf-8")
        pages = [degrade(img, seed * 100 + p) for p, img in enumerate(clean)]
        write_pdf(pages, pdf_path, meta_title, meta_composer)
    return RenderedPiece(meta_title, meta_composer, str(pdf_path), str(audio_path), spans, len(svgs), source)


def write_manifest(pieces: list[tuple[RenderedPiece, bool]], path: Path) -> None:
    root = path.parent
    entries = [p.manifest_entry(in_lib, root) for p, in_lib in pieces]
    path.write_text(json.dumps({"pieces": entries}, indent=1), encoding="utf-8")


__all__ = ["RenderedPiece", "asdict", "degrade", "render_piece", "tempo_warp", "write_manifest"]
