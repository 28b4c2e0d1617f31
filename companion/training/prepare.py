"""Training pairs and passages from a corpus built by ``companion data build``.

Why a separate preparation step: cutting a snippet costs a page decode, a system
detection and a resampled strip, far more than one training step of the lean
encoders. Each piece is therefore cut once into a :class:`PairSet` (and a
:class:`PassageSet` of whole systems) held in memory during training.

Why the run-time detector: the library finds systems on scanned pages with
:mod:`companion.sheets` and cuts strips from them; the training snippets are cut
the same way (the corpus page, optionally degraded to look scanned, scaled to
the 835-px analysis width, systems found by the detector and matched to the
corpus's own system boxes), so the encoders see at training time exactly the
kind of image they see at run time. A corpus system the detector misses is
skipped and counted.

Augmentations applied here (seeded per piece; different every ``seed``): the
scan-like page degradations of :func:`companion.data.augment.degrade_page` and,
on the audio, room reverb, microphone colouring and noise
(:func:`companion.data.augment.degrade_audio`) before the spectrogram is
recomputed. The cheap spectrogram- and crop-level augmentations run at every
training step (:mod:`companion.training.augment`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from threading import Event
from typing import Callable

import numpy as np

from companion.config import SheetConfig
from companion.data.store import iter_pieces
from companion.errors import CompanionError
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE
from companion.training.data import DataError, PairSet, PassageSet

ProgressFn = Callable[[int, int, str], None]
"""``progress(done, total, message)``."""


@dataclass
class PrepareOptions:
    """How pairs are cut from a corpus (stored in the output's summary)."""

    splits: tuple[str, ...] = ("train", "valid", "test")
    max_pairs: dict[str, int] = field(default_factory=lambda: {"train": 300, "valid": 120, "test": 150})
    """At most this many (notehead group, onset) pairs per piece, drawn at random."""
    page_degrade: dict[str, float] = field(default_factory=lambda: {"train": 0.6, "valid": 0.6, "test": 1.0})
    """Probability that a page is degraded to look scanned (the test split: always)."""
    audio_degrade: dict[str, float] = field(default_factory=lambda: {"train": 0.5, "valid": 0.5, "test": 0.5})
    """Probability that a piece's audio gets reverb / microphone colouring / noise."""
    sheet_ctx: int = 10
    """Extra snippet pixels (at encoder scale) kept on each side for crop jitter."""
    audio_ctx: int = 20
    """Extra spectrogram frames on each side for time shift and stretch."""
    exclude_list: str = ""
    """Works to keep out of train and valid (e.g. companion/data/real_scan_works.txt)."""
    only_passed: bool = True
    """Skip pieces whose alignment check failed."""
    seed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["splits"] = list(self.splits)
        return d


class PrepareCancelled(CompanionError):
    """The preparation was cancelled; nothing was written."""


def _piece_rng(piece: str, seed: int) -> np.random.Generator:
    h = hashlib.sha1(f"{seed}:{piece}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def _load_page(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def _to_width(img: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    from PIL import Image

    h, w = img.shape
    f = width / w
    out = Image.fromarray(img).resize((width, max(1, int(round(h * f)))), Image.BOX if f < 1 else Image.BILINEAR)
    return np.asarray(out), f


def _match(detected, y0: float, y1: float):
    """The detected system overlapping the band ``y0..y1`` most (IoU >= 0.3), or None."""
    best, best_iou = None, 0.3
    for s in detected:
        t0 = min(l[0] for l in s.staff_lines)
        t1 = max(l[-1] for l in s.staff_lines)
        inter = min(t1, y1) - max(t0, y0)
        union = max(t1, y1) - min(t0, y0)
        iou = inter / union if union > 0 else 0.0
        if iou > best_iou:
            best, best_iou = s, iou
    return best


def _cut(strip: np.ndarray, x: float, width: int) -> np.ndarray:
    """A ``160 x width`` window of ``strip`` centred on ``x`` (white beyond the ends)."""
    x0 = int(round(x)) - width // 2
    h, w = strip.shape
    out = np.full((h, width), 255, np.uint8)
    a, b = max(0, x0), min(w, x0 + width)
    if b > a:
        out[:, a - x0 : b - x0] = strip[:, a:b]
    return out


def _excerpt(spec: np.ndarray, frame: int, width: int) -> np.ndarray:
    """``(92, width)`` frames centred on ``frame`` (zeros beyond the ends; log(1 + 0) = silence)."""
    n = spec.shape[0]
    f0 = frame - width // 2
    out = np.zeros((width, spec.shape[1]), np.float32)
    a, b = max(0, f0), min(n, f0 + width)
    if b > a:
        out[a - f0 : b - f0] = spec[a:b]
    return out.T


def prepare_piece(folder: str, split: str, opts_dict: dict) -> dict:
    """Pairs and passages of one corpus piece (runs in a worker process)."""
    from companion.data.augment import degrade_audio, degrade_page
    from companion.sheets import detect_page, strip_geometry, system_strip
    from companion.sheets.snippets import _resize, passage_strip

    opts = PrepareOptions(**{**opts_dict, "splits": tuple(opts_dict["splits"])})
    cfg = SheetConfig()
    d = Path(folder)
    meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
    piece = meta["piece"]
    rng = _piece_rng(piece, opts.seed)
    fps = float(meta.get("fps", 20.0))
    heads = np.load(d / "noteheads.npy")
    systems = np.load(d / "systems.npy")
    stats = {"systems": int(len(systems)), "systems_matched": 0, "pages": 0, "pages_degraded": 0,
             "audio_degraded": 0}

    spec = None
    if rng.random() < opts.audio_degrade.get(split, 0.0) and (d / "audio.flac").exists():
        import soundfile as sf

        from companion.audio import log_spectrogram

        audio, sr = sf.read(d / "audio.flac", dtype="float32", always_2d=False)
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        spec = log_spectrogram(degrade_audio(audio, sr, rng), sample_rate=sr)
        stats["audio_degraded"] = 1
    if spec is None:
        spec = np.asarray(np.load(d / "spec.npy"), dtype=np.float32)

    strips: dict[int, np.ndarray] = {}
    geoms = {}
    for page in sorted(set(int(p) for p in systems["page"])):
        path = d / f"page_{page:03d}.png"
        if not path.exists():
            continue
        img = _load_page(path)
        stats["pages"] += 1
        m = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        if rng.random() < opts.page_degrade.get(split, 0.0):
            img, m = degrade_page(img, rng)
            stats["pages_degraded"] += 1
        img, f = _to_width(img, cfg.analysis_width)
        try:
            detected = detect_page(img, cfg)
        except CompanionError:
            continue
        for si in np.flatnonzero(systems["page"] == page):
            s = systems[si]
            # Transform the box's vertical centre line through the degradation, then scale.
            cx = (s["x0"] + s["x1"]) / 2
            ys = [m[1, 0] * cx + m[1, 1] * y + m[1, 2] for y in (s["y0"], s["y1"])]
            det = _match(detected, min(ys) * f, max(ys) * f)
            if det is None:
                continue
            strips[int(si)] = system_strip(img, det, cfg.strip_height)
            geoms[int(si)] = (strip_geometry(det, cfg.strip_height), m, f)
            stats["systems_matched"] += 1

    # One pair per (system, onset): the snippet centred on the mean x of its noteheads.
    groups: dict[tuple[int, int], list[float]] = {}
    onset_of: dict[tuple[int, int], float] = {}
    for h in heads:
        si = int(h["system"])
        if si not in geoms or not np.isfinite(h["onset"]):  # a notehead that never sounds (NaN onset)
            continue
        g, m, f = geoms[si]
        px = (m[0, 0] * h["x"] + m[0, 1] * h["y"] + m[0, 2]) * f
        key = (si, int(round(float(h["onset"]) * 100)))
        groups.setdefault(key, []).append((px - g.x0) * g.scale)
        onset_of[key] = float(h["onset"])
    keys = sorted(groups, key=lambda k: (onset_of[k], k[0]))
    cap = opts.max_pairs.get(split, 0)
    if cap and len(keys) > cap:
        pick = np.sort(rng.choice(len(keys), cap, replace=False))
        keys = [keys[i] for i in pick]
    sw = 2 * (SHEET_SHAPE[1] + 2 * opts.sheet_ctx)  # strip pixels (160-px strip = 2x encoder scale)
    aw = AUDIO_SHAPE[1] + 2 * opts.audio_ctx
    sheets = np.zeros((len(keys), SHEET_SHAPE[0], SHEET_SHAPE[1] + 2 * opts.sheet_ctx), np.uint8)
    audios = np.zeros((len(keys), AUDIO_SHAPE[0], aw), np.float16)
    onsets = np.zeros(len(keys), np.float32)
    for i, k in enumerate(keys):
        x = float(np.mean(groups[k]))
        sheets[i] = _resize(_cut(strips[k[0]], x, sw), sheets.shape[1:])
        audios[i] = _excerpt(spec, int(round(onset_of[k] * fps)), aw)
        onsets[i] = onset_of[k]

    passages = []
    for si in sorted(strips):
        s = systems[si]
        if not (np.isfinite(s["start"]) and np.isfinite(s["end"])):
            continue  # a system with no sounding note (e.g. only rests or grace notes) has no passage
        f0, f1 = int(np.floor(s["start"] * fps)), int(np.ceil(s["end"] * fps))
        f0, f1 = max(0, f0), min(len(spec), f1)
        if f1 - f0 < 20:
            continue
        passages.append((passage_strip(strips[si]), spec[f0:f1].T.astype(np.float16)))
    return {"piece": piece, "split": split, "sheet": sheets, "audio": audios, "onset": onsets,
            "passages": passages, "stats": stats, "engraver": meta.get("engraver", ""),
            "soundfont": meta.get("soundfont", "")}


def _select(corpus: Path, opts: PrepareOptions) -> list[tuple[Path, dict]]:
    from companion.data.store import _matches

    patterns: list[list[str]] = []
    if opts.exclude_list:
        from companion.data.sources import normalise

        for line in Path(opts.exclude_list).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                patterns.append(normalise(line).split())
    chosen = []
    for d, m in iter_pieces(corpus):
        split = m.get("split")
        if split not in opts.splits:
            continue
        if opts.only_passed and not m.get("check", {}).get("passed", False):
            continue
        if split in ("train", "valid") and patterns and _matches(m, patterns):
            continue
        chosen.append((d, m))
    return chosen


def prepare_pairs(corpus: Path, out: Path, opts: PrepareOptions | None = None, workers: int = 1,
                  progress: ProgressFn | None = None, cancel: Event | None = None,
                  limit: int = 0) -> dict:
    """Cut every selected corpus piece into ``out`` (a PairSet folder with ``passages/``).

    Written atomically: a cancelled or killed run leaves no half-written set
    (the arrays go to ``out.tmp`` first). Returns the summary stored in meta.json.
    """
    opts = opts or PrepareOptions()
    corpus, out = Path(corpus), Path(out)
    if not (corpus / "corpus.json").exists():
        raise DataError(f"{corpus} is not a corpus (no corpus.json): build one with `companion data build`")
    chosen = _select(corpus, opts)
    if limit:
        chosen = chosen[:limit]
    if not chosen:
        raise DataError(f"no pieces of splits {', '.join(opts.splits)} in {corpus}")
    t0 = time.monotonic()
    results: list[dict] = []
    failed: list[dict] = []
    od = opts.to_dict()

    def collect(fut, d):
        try:
            results.append(fut.result())
        except Exception as exc:  # noqa: BLE001 - one bad piece never stops the run
            failed.append({"piece": d.name, "error": f"{type(exc).__name__}: {exc}"})
        if progress:
            progress(len(results) + len(failed), len(chosen), d.name)

    if workers <= 1:
        for d, m in chosen:
            if cancel is not None and cancel.is_set():
                raise PrepareCancelled("preparation cancelled")

            class _Done:
                def __init__(self, fn):
                    self.fn = fn

                def result(self):
                    return self.fn()

            collect(_Done(lambda d=d, m=m: prepare_piece(str(d), m["split"], od)), d)
    else:
        from companion.data.build import pool_context

        # Not forked: the caller may hold threads (a GUI job runner, torch); see pool_context.
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context()) as pool:
            pending = {}
            queue = list(chosen)
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    d, m = queue.pop(0)
                    pending[pool.submit(prepare_piece, str(d), m["split"], od)] = d
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    collect(fut, pending.pop(fut))
                if cancel is not None and cancel.is_set():
                    for fut in pending:
                        fut.cancel()
                    raise PrepareCancelled("preparation cancelled")

    results.sort(key=lambda r: (opts.splits.index(r["split"]), r["piece"]))
    results = [r for r in results if len(r["onset"])]
    pieces = [r["piece"] for r in results]
    splits = {s: [r["piece"] for r in results if r["split"] == s] for s in opts.splits}
    sheet = np.concatenate([r["sheet"] for r in results])
    audio = np.concatenate([r["audio"] for r in results])
    onset = np.concatenate([r["onset"] for r in results])
    piece = np.concatenate([np.full(len(r["onset"]), i, np.int32) for i, r in enumerate(results)])
    st = {k: int(sum(r["stats"][k] for r in results)) for k in results[0]["stats"]} if results else {}
    summary = {
        "source": str(corpus),
        "pairs": int(len(piece)),
        "pieces": len(pieces),
        "per_split": {s: {"pieces": len(v), "pairs": int(np.isin(piece, [pieces.index(p) for p in v]).sum())}
                      for s, v in splits.items()},
        "engravers": sorted({r["engraver"] for r in results}),
        "soundfonts": {s: sorted({r["soundfont"] for r in results if r["split"] == s}) for s in opts.splits},
        "stats": st,
        "failed": failed,
        "options": od,
        "seconds": round(time.monotonic() - t0, 1),
    }
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    PairSet(sheet, audio, piece, onset, pieces, splits, summary).save(tmp)
    strips, specs, ppiece = [], [], []
    for i, r in enumerate(results):
        for strip, sp in r["passages"]:
            strips.append(strip)
            specs.append(sp)
            ppiece.append(i)
    if strips:
        s_off = np.concatenate([[0], np.cumsum([s.shape[1] for s in strips])]).astype(np.int64)
        a_off = np.concatenate([[0], np.cumsum([s.shape[1] for s in specs])]).astype(np.int64)
        PassageSet(np.concatenate(strips, axis=1), s_off, np.concatenate(specs, axis=1), a_off,
                   np.array(ppiece, np.int32), pieces, splits).save(tmp / "passages")
        summary["passages"] = len(ppiece)
        (tmp / "meta.json").write_text(json.dumps({**json.loads((tmp / "meta.json").read_text()),
                                                   "summary": summary}, indent=1), encoding="utf-8")
    if out.exists():
        import shutil

        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
    return summary
