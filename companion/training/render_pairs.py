"""Stop-gap aligned pair builder: Humdrum kern -> (sheet snippet, audio excerpt) pairs.

Why it is here: the project's corpus builder (``companion/data``) had not landed
when the encoders needed data. This builds the same kind of pairs the papers use
(MSMD-style) directly from symbolic scores, with verovio for engraving, note
positions and onset times, and FluidSynth for audio:

1. verovio engraves the score on A4 pages (835 px wide once rasterised with
   pymupdf) and gives every notehead's position and system, and a time map
   (onset in ms per note id) consistent with its MIDI export;
2. each system becomes a 160-px strip centred on its staves, downscaled by 2
   (80 px high); a pair's sheet snippet is the 100-px window centred on the
   notehead x (with context for jitter);
3. the MIDI is rendered with a SoundFont, analysed with
   :func:`companion.audio.log_spectrogram`; the audio excerpt is the 42-frame
   window centred on the note's onset frame (with context).

One pair per (system, onset) — chord notes share an onset; the snippet is
centred on their mean x. Systems also give passages (strip + the audio from the
system's first to last onset).

Needs the Debian package ``fluidsynth`` and a SoundFont (``fluid-soundfont-gm``,
``timgm6mb-soundfont``).
"""

from __future__ import annotations

import base64
import datetime as _dt
import time
import logging
import re
import subprocess
import tempfile
from dataclasses import dataclass
from concurrent.futures.process import BrokenProcessPool
from itertools import zip_longest
from pathlib import Path

import numpy as np
from PIL import Image

from companion.errors import CompanionError
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE

log = logging.getLogger(__name__)

PAGE_PX = 835
STRIP_PX = 160
_NOTE_RE = re.compile(r'<g id="([^"]+)" class="note[^"]*">\s*<g class="notehead">\s*<use [^>]*?transform="translate\((-?\d+), (-?\d+)\)')
_LINE_RE = re.compile(r'<path d="M(-?\d+) (-?\d+) L(-?\d+) (-?\d+)" stroke-width="\d+"')
_VIEWBOX_RE = re.compile(r'class="definition-scale"[^>]*viewBox="0 0 (\d+) (\d+)"')
_MARGIN_RE = re.compile(r'class="page-margin" transform="translate\((-?\d+), (-?\d+)\)"')


@dataclass
class RenderedPiece:
    name: str
    strips: list[np.ndarray]  # uint8 (80, W) per system
    events: list[tuple[int, float, float]]  # (system index, x at 80-px scale, onset seconds)
    spectrogram: np.ndarray  # (92, frames)


def _system_geometry(svg: str) -> tuple[float, list[tuple[float, float, list[tuple[str, float, float]]]]]:
    """Per system: staff top/bottom (svg units incl. margin) and its noteheads (id, x, y)."""
    vb = _VIEWBOX_RE.search(svg)
    if not vb:
        raise CompanionError("verovio SVG without a viewBox")
    width_units = float(vb.group(1))
    m = _MARGIN_RE.search(svg)
    mx, my = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
    chunks = svg.split('class="system"')[1:]
    systems = []
    for chunk in chunks:
        ys = [int(y1) + my for x1, y1, x2, y2 in _LINE_RE.findall(chunk) if y1 == y2 and abs(int(x2) - int(x1)) > 1500]
        if not ys:
            continue
        notes = [(nid, float(x) + mx, float(y) + my) for nid, x, y in _NOTE_RE.findall(chunk)]
        systems.append((min(ys), max(ys), notes))
    return width_units, systems


def rasterise_svg(svg: str, width: int = PAGE_PX) -> np.ndarray:
    """Greyscale page image, ``width`` px wide (cairosvg: MuPDF mis-draws verovio's glyph <use>s)."""
    import io

    import cairosvg

    png = cairosvg.svg2png(bytestring=svg.encode("utf-8"), output_width=width, background_color="white")
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def render_piece(kern: Path, soundfont: Path, workdir: Path, scale: int = 40, margin: float = 0.3,
                 max_pages: int = 0) -> RenderedPiece:
    """Engrave, rasterise and synthesise one kern file.

    Each system's band is its staves' extent plus ``margin`` x that extent above and
    below, scaled to the 160-px strip height (then downscaled by 2), as the sheets
    module scales detected systems.
    """
    import verovio

    from companion.audio import log_spectrogram

    tk = verovio.toolkit()
    tk.setOptions({"pageWidth": 2100, "pageHeight": 2970, "scale": scale, "header": "none", "footer": "none",
                   "adjustPageHeight": False})
    if not tk.loadFile(str(kern)):
        raise CompanionError(f"verovio cannot read {kern}")
    onsets: dict[str, float] = {}
    for entry in tk.renderToTimemap({"includeMeasures": False}):
        for nid in entry.get("on", []):
            onsets.setdefault(nid, entry["tstamp"] / 1000.0)
    strips: list[np.ndarray] = []
    events: list[tuple[int, float, float]] = []
    n_pages = tk.getPageCount()
    if max_pages > 0:  # bounded cost per piece; the audio is still the whole piece
        n_pages = min(n_pages, max_pages)
    for page_no in range(1, n_pages + 1):
        svg = tk.renderToSVG(page_no)
        width_units, systems = _system_geometry(svg)
        img = rasterise_svg(svg)
        px = PAGE_PX / width_units
        for top, bottom, notes in systems:
            span = (bottom - top) * px
            y0 = int(round(top * px - margin * span))
            y1 = int(round(bottom * px + margin * span))
            band = np.full((y1 - y0, img.shape[1]), 255, np.uint8)
            src0, src1 = max(0, y0), min(img.shape[0], y1)
            if src1 <= src0 or y1 - y0 < 10:
                continue
            band[src0 - y0 : src1 - y0] = img[src0:src1]
            k = (STRIP_PX // 2) / band.shape[0]  # to the 80-px snippet scale
            strip = np.asarray(Image.fromarray(band).resize((max(1, int(round(band.shape[1] * k))), STRIP_PX // 2),
                                                            Image.BILINEAR))
            sys_idx = len(strips)
            strips.append(strip)
            for nid, x, _y in notes:
                if nid in onsets:
                    events.append((sys_idx, x * px * k, onsets[nid]))
    if not events:
        raise CompanionError(f"{kern.name}: no noteheads with onsets found")
    midi = workdir / (kern.stem + ".mid")
    wav = workdir / (kern.stem + ".wav")
    midi.write_bytes(base64.b64decode(tk.renderToMIDI()))
    proc = subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.7", "-r", "22050", "-F", str(wav), str(soundfont), str(midi)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not wav.is_file():
        raise CompanionError(f"fluidsynth failed on {kern.name}: {proc.stderr.strip()[:200]}")
    spec = log_spectrogram(str(wav)).T.astype(np.float32)  # (92, frames)
    wav.unlink(missing_ok=True)
    midi.unlink(missing_ok=True)
    return RenderedPiece(kern.stem, strips, events, spec)


def pairs_from_piece(rp: RenderedPiece, sheet_ctx: int = 10, audio_ctx: int = 20, fps: float = 20.0):
    """(sheet (n, 80, 100+2c) uint8, audio (n, 92, 42+2c) float16, onset (n,)) for one piece."""
    groups: dict[tuple[int, int], list[float]] = {}
    for s, x, t in rp.events:
        groups.setdefault((s, int(round(t * 1000))), []).append(x)
    sw = SHEET_SHAPE[1] + 2 * sheet_ctx
    aw = AUDIO_SHAPE[1] + 2 * audio_ctx
    spec = rp.spectrogram
    padded_spec = np.pad(spec, ((0, 0), (aw, aw)))
    sheets, audios, onsets = [], [], []
    padded_strips = [np.pad(st, ((0, 0), (sw, sw)), constant_values=255) for st in rp.strips]
    for (s, t_ms), xs in sorted(groups.items(), key=lambda kv: kv[0][1]):
        x = int(round(float(np.mean(xs))))
        f = int(round(t_ms / 1000.0 * fps))
        if f >= spec.shape[1]:
            continue
        st = padded_strips[s]
        x0 = x + sw - sw // 2
        sheets.append(st[:, x0 : x0 + sw])
        a0 = f + aw - aw // 2
        audios.append(padded_spec[:, a0 : a0 + aw])
        onsets.append(t_ms / 1000.0)
    if not sheets:
        return None
    return np.stack(sheets), np.stack(audios).astype(np.float16), np.asarray(onsets, np.float32)


def passages_from_piece(rp: RenderedPiece, fps: float = 20.0, margin_frames: int = 10):
    """Per system: (strip (80, W) uint8, spectrogram (92, T) float16) from first to last onset."""
    by_sys: dict[int, list[float]] = {}
    for s, _x, t in rp.events:
        by_sys.setdefault(s, []).append(t)
    out = []
    for s, ts in sorted(by_sys.items()):
        f0 = max(0, int(min(ts) * fps) - margin_frames // 2)
        f1 = min(rp.spectrogram.shape[1], int(max(ts) * fps) + margin_frames)
        if f1 - f0 < 20:
            continue
        out.append((rp.strips[s], rp.spectrogram[:, f0:f1].astype(np.float16)))
    return out


SCAN_OPUS = frozenset({10, 15, 17, 24, 25, 27, 28, 34, 41, 48, 50, 55, 56, 62, 63, 64, 66, 67, 68, 69, 70, 71, 72})
"""Opus numbers of the Chopin works in shared/data/scans: the real-scan evaluation library.
They never enter training; their kern renders (held-out SoundFont) form the test split."""
_SKIP_PARTS = ("violin", "violoncello", "primo", "secondo")
_SKIP_OPUS = frozenset({3, 8, 65, 74})  # chamber music and songs: not solo piano


def chopin_pieces(kern_dir: Path) -> dict[str, Path]:
    """One kern file (the first edition listed) per piece, keyed ``op<NNN>[-<no>]``."""
    pieces: dict[str, Path] = {}
    for path in sorted(Path(kern_dir).glob("*.krn")):
        name = path.stem
        if any(p in name for p in _SKIP_PARTS):
            continue
        tokens = name.split("-")
        m = re.match(r"(\d+)", tokens[0])
        if not m:
            key = tokens[0]
        else:
            opus = int(m.group(1))
            if opus in _SKIP_OPUS:
                continue
            number = next((t for t in reversed(tokens) if re.fullmatch(r"\d{3}", t)), "")
            if number in ("", f"{opus:03d}"):  # single-piece works: one key for every edition
                number = "001"
            key = f"op{opus:03d}-{number}"
        pieces.setdefault(key, path)
    return pieces


def piece_opus(key: str) -> int | None:
    m = re.match(r"op(\d+)", key)
    return int(m.group(1)) if m else None


DEGRADE = dict(p=1.0, shift=False, noise_snr_db=(10.0, 20.0), gain_db=6.0, eq_db=4.0, stretch=(), time_mask=0,
               freq_mask=0)


def _new_pool():
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("forkserver")
    # Children fork from a server that already imported the heavy modules (seconds per piece).
    ctx.set_forkserver_preload(["torch", "verovio", "cairosvg", "companion.audio", "companion.training.augment",
                                "companion.training.render_pairs"])
    return ProcessPoolExecutor(max_workers=1, mp_context=ctx, max_tasks_per_child=1)


def _render_to_cache(kern: Path, soundfont: Path, path: Path, max_pages: int, degrade: bool, seed: int,
                     spec_out: Path | None) -> None:
    """Child-process job: render one piece and store its pairs and passages in ``path`` (.npz)."""
    import torch

    from companion.training.augment import AudioAugment, augment_audio

    with tempfile.TemporaryDirectory() as tmp:
        rp = render_piece(kern, soundfont, Path(tmp), max_pages=max_pages)
    if degrade:
        spec = torch.from_numpy(rp.spectrogram[None])
        gen = torch.Generator().manual_seed(seed)
        rp.spectrogram = augment_audio(spec, spec.shape[2], AudioAugment(**DEGRADE), gen)[0].numpy()
    if spec_out is not None:  # whole-piece audio, for excerpt queries (piece identification)
        spec_out.parent.mkdir(parents=True, exist_ok=True)
        np.save(spec_out, rp.spectrogram.astype(np.float16))
    got = pairs_from_piece(rp)
    if got is None:
        raise CompanionError(f"{kern.name}: no pairs")
    s, a, o = got
    passages = passages_from_piece(rp)
    strips = [p[0] for p in passages]
    specs = [p[1] for p in passages]
    tmp_path = path.with_suffix(".tmp.npz")
    np.savez(tmp_path, sheet=s, audio=a, onset=o,
             strip_flat=np.concatenate(strips, axis=1) if strips else np.zeros((80, 0), np.uint8),
             strip_w=np.asarray([x.shape[1] for x in strips], np.int64),
             spec_flat=np.concatenate(specs, axis=1) if specs else np.zeros((92, 0), np.float16),
             spec_t=np.asarray([x.shape[1] for x in specs], np.int64))
    tmp_path.replace(path)


def _collect(path: Path, index: int, sheets, audios, onsets, piece_ids, p_strips, p_specs, p_piece) -> int:
    with np.load(path) as z:
        sheets.append(z["sheet"])
        audios.append(z["audio"])
        onsets.append(z["onset"])
        piece_ids.append(np.full(len(z["sheet"]), index, np.int32))
        s_off = np.concatenate([[0], np.cumsum(z["strip_w"])])
        a_off = np.concatenate([[0], np.cumsum(z["spec_t"])])
        for k in range(len(z["strip_w"])):
            p_strips.append(z["strip_flat"][:, s_off[k] : s_off[k + 1]])
            p_specs.append(z["spec_flat"][:, a_off[k] : a_off[k + 1]])
            p_piece.append(index)
        return len(z["sheet"])


def build_pairs(
    pieces: dict[str, Path],
    soundfont: Path,
    out_dir: Path,
    splits: dict[str, list[str]],
    degrade_splits: tuple[str, ...] = (),
    seed: int = 0,
    save_spectrograms: bool = False,
    max_pages: int = 0,
    deadline: float = 0.0,
) -> dict:
    """Render ``pieces`` and write a PairSet (``out_dir``) and a PassageSet (``out_dir/passages``).

    Splits named in ``degrade_splits`` get fixed-seed degradations on their audio
    (noise 10–20 dB SNR, gain, EQ; no masks or stretch) — the "degraded renders".
    """
    from companion.training.data import PairSet, PassageSet

    out_dir = Path(out_dir)
    names = list(pieces)
    split_of = {p: s for s, ps in splits.items() for p in ps}
    sheets, audios, piece_ids, onsets = [], [], [], []
    p_strips, p_specs, p_piece = [], [], []
    failed = []
    cache = out_dir / "pieces"
    cache.mkdir(parents=True, exist_ok=True)
    pool = _new_pool()
    try:
        for i, name in enumerate(names):
            if deadline and time.time() > deadline:
                log.warning("deadline reached: %d of %d pieces left unrendered", len(names) - i, len(names))
                failed.extend(n for n in names[i:] if not (cache / f"{n}.npz").is_file())
                for n in names[i:]:  # pieces cached by an earlier run still count
                    if (cache / f"{n}.npz").is_file():
                        _collect(cache / f"{n}.npz", names.index(n), sheets, audios, onsets, piece_ids,
                                 p_strips, p_specs, p_piece)
                break
            path = cache / f"{name}.npz"
            if not path.is_file():
                degrade_this = split_of.get(name) in degrade_splits
                spec_out = (out_dir / "spectrograms" / f"{name}.npy") if save_spectrograms else None
                try:
                    # A child process per piece: verovio can segfault on odd scores.
                    pool.submit(_render_to_cache, pieces[name], soundfont, path, max_pages, degrade_this,
                                seed + i, spec_out).result(timeout=900)
                except BrokenProcessPool:
                    log.warning("%s: renderer crashed; skipped", name)
                    pool = _new_pool()
                except Exception as exc:  # noqa: BLE001 - one bad score must not stop the corpus
                    log.warning("%s: skipped (%s: %s)", name, type(exc).__name__, exc)
            if not path.is_file():
                failed.append(name)
                continue
            n = _collect(path, i, sheets, audios, onsets, piece_ids, p_strips, p_specs, p_piece)
            log.info("[%d/%d] %s: %d pairs", i + 1, len(names), name, n)
    finally:
        pool.shutdown(cancel_futures=True)
    if not sheets:
        raise CompanionError("no piece could be rendered")
    summary = {
        "source": "Chopin first editions (kern, CC BY 4.0, The Fryderyk Chopin Institute), engraved with verovio, "
                  f"synthesised with FluidSynth ({Path(soundfont).name})",
        "builder": "companion.training.render_pairs (stop-gap until companion/data lands)",
        "pieces": len(names) - len(failed),
        "failed": failed,
        "degraded_splits": list(degrade_splits),
        "max_pages": max_pages,
        "soundfont": Path(soundfont).name,
    }
    pairs = PairSet(np.concatenate(sheets), np.concatenate(audios), np.concatenate(piece_ids),
                    np.concatenate(onsets), names, {k: [p for p in v if p not in failed] for k, v in splits.items()},
                    {**summary, "pairs": int(sum(len(s) for s in sheets))})
    pairs.save(out_dir)
    s_off = np.concatenate([[0], np.cumsum([s.shape[1] for s in p_strips])]).astype(np.int64)
    a_off = np.concatenate([[0], np.cumsum([s.shape[1] for s in p_specs])]).astype(np.int64)
    PassageSet(np.concatenate(p_strips, axis=1), s_off, np.concatenate(p_specs, axis=1), a_off,
               np.asarray(p_piece, np.int32), names, pairs.splits).save(out_dir / "passages")
    return pairs.summary


def merge_pairsets(parts: list[Path], out_dir: Path) -> dict:
    """Concatenate PairSets (and their passages) written by shards into one folder."""
    from companion.training.data import PairSet, PassageSet

    sets = [PairSet.load(p) for p in parts]
    pieces: list[str] = []
    piece_arrays = []
    for ps in sets:
        piece_arrays.append(ps.piece + len(pieces))
        pieces += ps.pieces
    splits: dict[str, list[str]] = {}
    for ps in sets:
        for k, v in ps.splits.items():
            splits.setdefault(k, []).extend(v)
    summary = dict(sets[0].summary)
    summary["pieces"] = sum(int(ps.summary.get("pieces", 0)) for ps in sets)
    summary["failed"] = sum((list(ps.summary.get("failed", [])) for ps in sets), [])
    summary["pairs"] = int(sum(len(ps) for ps in sets))
    merged = PairSet(np.concatenate([ps.sheet for ps in sets]), np.concatenate([ps.audio for ps in sets]),
                     np.concatenate(piece_arrays), np.concatenate([ps.onset for ps in sets]), pieces, splits, summary)
    merged.save(out_dir)
    psets = [PassageSet.load(Path(p) / "passages") for p in parts]
    s_flat, a_flat, s_off, a_off, pp = [], [], [0], [0], []
    base = 0
    for ps in psets:
        s_flat.append(ps.sheet_flat)
        a_flat.append(ps.audio_flat)
        s_off += (ps.sheet_off[1:] + s_off[-1]).tolist()
        a_off += (ps.audio_off[1:] + a_off[-1]).tolist()
        pp.append(ps.piece + base)
        base += len(ps.pieces)
    PassageSet(np.concatenate(s_flat, axis=1), np.asarray(s_off, np.int64), np.concatenate(a_flat, axis=1),
               np.asarray(a_off, np.int64), np.concatenate(pp), pieces, splits).save(Path(out_dir) / "passages")
    return summary


def main(argv: list[str] | None = None) -> int:
    """``python -m companion.training.render_pairs KERN_DIR OUT_DIR --part train|test``."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kern_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--part", choices=("train", "test"), required=True,
                    help="train: works not in the scans (FluidR3, train/valid split); "
                         "test: the scan works (held-out TimGM6mb SoundFont, degraded)")
    ap.add_argument("--soundfont", type=Path)
    ap.add_argument("--valid-pieces", type=int, default=10)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--deadline", default="", help="HH:MM (UTC): start no new piece after this time, save what is done")
    ap.add_argument("--shard", default="0/1", help="i/n: render every n-th piece starting at i (merge with merge_pairsets)")
    ap.add_argument("--max-pages", type=int, default=3, help="engrave at most this many pages per piece (0 = all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    pieces = chopin_pieces(args.kern_dir)
    if args.part == "train":
        pieces = {k: v for k, v in pieces.items() if piece_opus(k) not in SCAN_OPUS}
        sf = args.soundfont or Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    else:
        pieces = {k: v for k, v in pieces.items() if piece_opus(k) in SCAN_OPUS}
        sf = args.soundfont or Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
    if args.limit:
        pieces = dict(list(pieces.items())[: args.limit])
    deadline = 0.0
    if args.deadline:
        hh, mm = (int(v) for v in args.deadline.split(":"))
        now = _dt.datetime.now(_dt.timezone.utc)
        deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    # Order: short files first (more pieces per hour), and for the test part round-robin over
    # the scanned works so that any prefix covers every work.
    ordered = sorted(pieces, key=lambda k: pieces[k].stat().st_size)
    if args.part == "test":
        from companion.evaluation.scans import scan_work_for

        by_work: dict[str, list[str]] = {}
        for k in ordered:
            by_work.setdefault(scan_work_for(k) or "other", []).append(k)
        ordered = [k for group in zip_longest(*by_work.values()) for k in group if k is not None]
    pieces = {k: pieces[k] for k in ordered}
    names = list(pieces)
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    if args.part == "train":
        rng = np.random.default_rng(0)
        early = names[: max(args.valid_pieces, len(names) // 2)]  # rendered before any deadline
        valid = sorted(rng.choice(early, size=min(args.valid_pieces, len(names) // 5), replace=False).tolist())
        names = names[shard::n_shards]
        pieces = {k: pieces[k] for k in names}
        splits = {"train": [n for n in names if n not in valid], "valid": [n for n in valid if n in names]}
        print(build_pairs(pieces, sf, args.out_dir, splits, max_pages=args.max_pages, deadline=deadline))
    else:
        names = names[shard::n_shards]
        pieces = {k: pieces[k] for k in names}
        print(build_pairs(pieces, sf, args.out_dir, {"test": names}, degrade_splits=("test",),
                          save_spectrograms=True, max_pages=args.max_pages, deadline=deadline))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
