"""Whole rendered pieces for the demo and the identification benchmark.

Why here, next to the corpus builder: the demo and ``companion bench
identify`` need what a *user* has -- a scanned-looking PDF of the score and a
recording of someone playing it -- plus the ground truth of following (the
time span of every system in the recording). They are made with the corpus
builder's own tools, so there is one renderer: verovio engraving
(:mod:`companion.data.engrave_verovio`, repeats played as the time map plays
them), expressive timing (:mod:`companion.data.performance`), FluidSynth with a
held-out soundfont (:mod:`companion.data.synth`) and scan degradations
(:func:`companion.data.augment.degrade_page`).

A performance can also *jump*: play up to system ``b``, go back to system
``a < b`` and play on, as a player taking a repeat (or restarting a passage)
does. The recording is synthesised from that playing order in one go, so the
expressive timing runs through the jump and the audio has no splice.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.errors import DataError

HELD_OUT_SOUNDFONT = "TimGM6mb.sf2"
"""Queries and the demo recording are played with this soundfont; training audio of the
train/valid splits never uses it (``BuildOptions.held_out_soundfont``)."""

_REND = re.compile(r"-rend\d+$")


@dataclass
class RenderedPiece:
    title: str
    composer: str
    pdf: str
    audio: str
    systems: list[tuple[float, float, int]]
    """(start s, end s, system index in reading order) in the recording, in playing order."""
    n_pages: int
    source: str
    jump: tuple[int, int] | None = None
    """(from system b, back to system a) when a jump was added to the playing order."""

    def manifest_entry(self, in_library: bool, root: Path | None = None) -> dict:
        def rel(p: str) -> str:
            if not p or p == "." or root is None:
                return p
            return str(Path(p).resolve().relative_to(Path(root).resolve()))

        return {"title": self.title, "pdf": rel(self.pdf), "audio": rel(self.audio), "in_library": in_library,
                "systems": [list(s) for s in self.systems], "source": self.source,
                "jump": list(self.jump) if self.jump else None}


# -- score -> playing order ---------------------------------------------------------------------------


def score_path(source: str) -> Path:
    """A score file, or a music21 corpus name (``schumann_clara/polonaise_op1n1.mxl``) resolved to its file."""
    path = Path(source)
    if path.is_file():
        return path
    try:
        import music21

        found = music21.corpus.getWork(source)
    except Exception as exc:  # music21 raises its own kinds for unknown names
        raise DataError(f"score {source} is neither a file nor a music21 corpus work ({exc})") from exc
    if isinstance(found, list):
        found = found[0] if found else None
    if not found or not Path(found).is_file():
        raise DataError(f"score {source} is neither a file nor a music21 corpus work")
    return Path(found)


def system_of_events(score) -> list[int]:
    """The system (reading order) of each of ``score.events``; -1 when its notehead is unknown.

    Repeated passes carry verovio's ``-rendN`` suffix on the engraved note's id.
    """
    of = {h.note_id: h.system for h in score.noteheads}
    return [of.get(_REND.sub("", e.note_id), -1) for e in score.events]


def score_spans(score) -> list[tuple[float, float, int]]:
    """(start, end, system) in score seconds, in playing order (repeats as the time map plays them)."""
    systems = system_of_events(score)
    by_onset: dict[float, int] = {}
    for e, k in zip(score.events, systems):
        if k >= 0:
            by_onset[e.onset] = min(k, by_onset.get(e.onset, k))
    starts: list[tuple[float, int]] = []
    for t in sorted(by_onset):
        if not starts or starts[-1][1] != by_onset[t]:
            starts.append((t, by_onset[t]))
    end = max(e.offset for e in score.events)
    return [(t, starts[j + 1][0] if j + 1 < len(starts) else end, k) for j, (t, k) in enumerate(starts)]


def choose_jump(spans: list[tuple[float, float, int]], rng: np.random.Generator) -> tuple[int, int] | None:
    """A jump back (from the end of span ``b`` to the start of span ``a``) inside the first pass.

    Indices are into ``spans``; None when the piece is too short (< 4 spans).
    """
    if len(spans) < 4:
        return None
    b = int(rng.integers(1, min(len(spans) - 1, 8)))
    a = max(0, b - int(rng.integers(1, 4)))
    return b, a


def playing_order(score, jump: tuple[int, int] | None, spans: list[tuple[float, float, int]]):
    """Events (and their systems) in the order they are played, times shifted to one timeline.

    Without a jump this is the score as the time map plays it. With ``(b, a)``
    the player plays up to the end of span ``b``, goes back to the start of span
    ``a`` and plays to the end. Also returns the bar times on the new timeline.
    """
    from companion.data.engraving import NoteEvent

    systems = system_of_events(score)
    end = max(e.offset for e in score.events)
    if jump is None:
        segments = [(0.0, end + 1.0)]
    else:
        b, a = jump
        cut = spans[b][1]
        segments = [(0.0, cut), (spans[a][0], end + 1.0)]
    events: list[NoteEvent] = []
    labels: list[int] = []
    bars: list[float] = []
    shift = 0.0
    for t0, t1 in segments:
        for e, k in zip(score.events, systems):
            if t0 <= e.onset < t1:
                events.append(NoteEvent(e.note_id, e.pitch, e.onset - t0 + shift, min(e.offset, t1) - t0 + shift))
                labels.append(k)
        bars.extend(t - t0 + shift for t in score.bar_times if t0 <= t < t1)
        shift += t1 - t0
    return events, labels, bars


def performed_spans(perf, labels: list[int], score_onsets: list[float]) -> list[tuple[float, float, int]]:
    """(start, end, system) in the recording: a span starts at the earliest performed onset of its first chord."""
    first: dict[float, float] = {}
    system_at: dict[float, int] = {}
    for note, k, t in zip(perf.notes, labels, score_onsets):
        if k < 0:
            continue
        first[t] = min(note.onset, first.get(t, note.onset))
        system_at[t] = min(k, system_at.get(t, k))
    starts: list[tuple[float, int]] = []
    for t in sorted(first):
        if not starts or starts[-1][1] != system_at[t]:
            starts.append((first[t], system_at[t]))
    end = max(n.offset for n in perf.notes)
    out = []
    for j, (t, k) in enumerate(starts):
        e = starts[j + 1][0] if j + 1 < len(starts) else end
        if e > t:
            out.append((round(t, 3), round(e, 3), k))
    return out


# -- writing --------------------------------------------------------------------------------------------


def write_audio(path: Path, audio: np.ndarray, sr: int) -> None:
    """WAV/FLAC/OGG by suffix; OGG in 1-s blocks (libsndfile's Vorbis writer crashes on big writes)."""
    import soundfile as sf

    kw = {"format": "OGG", "subtype": "VORBIS"} if path.suffix.lower() == ".ogg" else {}
    with sf.SoundFile(path, "w", int(sr), 1, **kw) as f:
        for i in range(0, len(audio), int(sr)):
            f.write(np.ascontiguousarray(audio[i : i + int(sr)], dtype=np.float32))


def write_pdf(pages: list[np.ndarray], path: Path, title: str, composer: str, quality: int = 60) -> None:
    """Page images as JPEGs in an A4-wide PDF, with title and composer in the metadata (what indexing shows)."""
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


def system_boxes(score, matrices: list[np.ndarray] | None = None, pad: float = 0.01) -> list[dict]:
    """System boxes as fractions of the page width (the real scans' annotation format).

    A box spans the staff lines plus a third of the system's height above and
    below (ledger lines, slurs, dynamics). ``matrices`` (one 2x3 affine per page
    from :func:`~companion.data.augment.degrade_page`) move the boxes with a
    rotated scan.
    """
    out = []
    for b in score.systems:
        w = score.pages[b.page].shape[1]
        margin = (b.y1 - b.y0) / 3
        x0, y0, x1, y1 = b.x0, b.y0 - margin, b.x1, b.y1 + margin
        if matrices is not None:
            m = matrices[b.page]
            corners = np.array([[x0, y0, 1.0], [x1, y0, 1.0], [x0, y1, 1.0], [x1, y1, 1.0]]) @ m.T
            x0, y0 = corners.min(axis=0)
            x1, y1 = corners.max(axis=0)
        out.append({"page": int(b.page), "x0": max(0.0, x0 / w - pad), "x1": min(1.0, x1 / w + pad),
                    "y0": max(0.0, y0 / w - pad), "y1": y1 / w + pad})
    return out


def sidecar(pdf: Path) -> Path:
    """``<name>.systems.json`` next to a PDF: its system boxes (read by the benchmark's known-systems front end)."""
    return pdf.with_name(pdf.stem + ".systems.json")


# -- one piece -----------------------------------------------------------------------------------------


def render_piece(source: str, out_dir: Path, name: str, seed: int = 0, soundfont: str = HELD_OUT_SOUNDFONT,
                 title: str = "", composer: str = "", audio_format: str = "ogg", max_seconds: float | None = None,
                 pdf: bool = True, page_width_px: int = 1240, audio: bool = True, boxes: bool = False,
                 jump: bool = False, degrade_strength: float = 0.35) -> RenderedPiece:
    """Engrave, perform and synthesise one score; write ``name.pdf`` and ``name.<audio_format>``.

    ``jump``: when the score's own playing order never goes back (no repeat
    signs), add one jump back (:func:`choose_jump`) so that following a
    repeat is measured on every piece. ``boxes``: also write the sidecar with
    the system boxes of the (degraded) pages.
    """
    from companion.config import AudioConfig
    from companion.data import augment, engrave_verovio, performance, synth
    from companion.data.build import BuildOptions, visual_params

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(int.from_bytes(hashlib.sha1(f"{seed}:{name}".encode()).digest()[:8], "big"))
    vis = visual_params(rng, BuildOptions(out=out_dir, fonts=("Leipzig", "Bravura", "Leland")))
    # a printed edition's staff lines and stems, heavier than verovio's default hairlines
    vis.update(staff_line_width=0.25, stem_width=0.25)
    score = engrave_verovio.engrave(score_path(source), vis, page_width_px)
    spans = score_spans(score)
    if not spans:
        raise DataError(f"{source}: no notehead could be placed in a system")
    order = [k for _, _, k in spans]
    goes_back = any(b < a for a, b in zip(order, order[1:]))
    chosen = choose_jump(spans, rng) if jump and not goes_back else None
    meta_title = title or name
    audio_path = Path("")
    systems = spans
    if audio:
        events, labels, bars = playing_order(score, chosen, spans)
        params = performance.sample_params(rng, (0.9, 1.1))
        perf = performance.perform(events, bars, params)
        cfg = AudioConfig()
        with tempfile.TemporaryDirectory() as tmp:
            midi = Path(tmp) / "performance.mid"
            performance.write_midi(perf, midi)
            signal = synth.render_performance(perf, synth.find_soundfont(soundfont), cfg.sample_rate,
                                              midi, Path(tmp) / "performance.wav")
        systems = performed_spans(perf, labels, [e.onset for e in events])
        end = len(signal) if max_seconds is None else min(len(signal), int(max_seconds * cfg.sample_rate))
        signal = signal[:end]
        peak = float(np.abs(signal).max(initial=0.0))
        if peak < 1e-4:
            raise DataError(f"{source}: silent audio from {soundfont}")
        limit = round(end / cfg.sample_rate, 3)
        systems = [(a, min(b, limit), k) for a, b, k in systems if a < limit]
        systems = [(0.0, *systems[0][1:])] + systems[1:]  # the lead-in belongs to the first system
        systems[-1] = (systems[-1][0], limit, systems[-1][2])
        audio_path = out_dir / f"{name}.{audio_format}"
        write_audio(audio_path, signal * (0.7 / peak), cfg.sample_rate)
    pdf_path = out_dir / f"{name}.pdf"
    if pdf:
        degraded, matrices = [], []
        for p, page in enumerate(score.pages):
            img, m = augment.degrade_page(page, np.random.default_rng([seed, p, 17]), degrade_strength)
            degraded.append(img)
            matrices.append(m)
        if boxes:
            sidecar(pdf_path).write_text(json.dumps({
                "title": meta_title, "pages": len(score.pages),
                "units": "fractions of the page width, for x and y alike",
                "systems": system_boxes(score, matrices)}, indent=1), encoding="utf-8")
        write_pdf(degraded, pdf_path, meta_title, composer)
    return RenderedPiece(meta_title, composer, str(pdf_path), str(audio_path), systems, len(score.pages), source,
                         (spans[chosen[0]][2], spans[chosen[1]][2]) if chosen else None)


def write_manifest(pieces: list[tuple[RenderedPiece, bool]], path: Path) -> None:
    root = path.parent
    entries = [p.manifest_entry(in_lib, root) for p, in_lib in pieces]
    path.write_text(json.dumps({"pieces": entries}, indent=1), encoding="utf-8")


__all__ = ["HELD_OUT_SOUNDFONT", "RenderedPiece", "render_piece", "score_spans", "sidecar", "system_boxes",
           "write_manifest"]
