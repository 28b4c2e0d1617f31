"""Building the corpus: one worker call per piece, resumable, content-hashed.

Each piece is written into ``pieces/.tmp-<id>`` and renamed to ``pieces/<id>``
when complete, so a killed build leaves no half piece behind; a piece whose key
(source hash + build options) is unchanged is not rebuilt. A failing piece is
recorded in the report and never stops the build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Protocol

import numpy as np

from companion.data import store
from companion.data.sources import Source, excluded_by, read_exclude_list, reserved_reason
from companion.errors import DataError

log = logging.getLogger(__name__)

BUILDER_VERSION = 1
# Part of the key of pieces whose source has repeat signs or jump words (or, for
# LilyPond, several \score blocks) only, so that handling repeats (version 2:
# expanded, or notated order marked "not-expanded"; the movements of a LilyPond
# file played one after another instead of all at once) rebuilds exactly the
# pieces it changes.
REPEATS_VERSION = 2
_REPEAT_HINTS = re.compile(r"\\repeat|repeatCommands|:\||\|:|<repeat|<ending|dacapo|dalsegno|rptstart|rptend|D\.\s?C\.|D\.\s?S\.|"
                           r"Da\s+Capo|Dal\s+Segno|^\*>", re.MULTILINE | re.IGNORECASE)
PAGE_SIZES = {"a4": (2100, 2970), "letter": (2159, 2794), "b4": (2500, 3530)}


@dataclass(frozen=True)
class BuildOptions:
    out: Path
    seed: int = 0
    soundfonts: tuple[str, ...] = ("FluidR3_GM.sf2", "MuseScore_General.sf3", "TimGM6mb.sf2")
    held_out_soundfont: str = "TimGM6mb.sf2"
    tempo_range: tuple[float, float] = (0.8, 1.25)
    fonts: tuple[str, ...] = ("Leipzig", "Bravura", "Petaluma", "Leland", "Gootville")
    page_width_px: int = 1200
    split_fractions: tuple[float, float] = (0.8, 0.1)  # train, valid; the rest is test
    evaluation: bool = False
    keep_audio: bool = True
    max_pages: int = 40
    lilypond_timeout_s: float = 300.0

    def key_fields(self) -> dict:
        d = asdict(self)
        d.pop("out")
        d["builder_version"] = BUILDER_VERSION
        return d


@dataclass
class BuildSummary:
    built: int = 0
    skipped_unchanged: int = 0
    failed: list[dict] = field(default_factory=list)
    excluded: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    to_build: int = 0
    """Pieces this run had to build (not unchanged, not excluded)."""
    cancelled: bool = False
    """The cancel event stopped the run; finished pieces are kept and the next build resumes."""
    other_splits: int = 0
    """Pieces left out because their split was not asked for (``only_splits``)."""


class CancelEvent(Protocol):
    def is_set(self) -> bool: ...


PieceProgress = Callable[[int, int, str, bool], None]
"""``on_piece(done, total, piece_id, ok)``, called in the building process after every piece."""


class _BuildCancelled(Exception):
    """Raised inside the pool loop when the cancel event is set."""


def split_of(work: str, seed: int, fractions: tuple[float, float]) -> str:
    """Deterministic split by work: editions of one work always land together."""
    h = hashlib.sha1(f"{seed}:{work}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "valid"
    return "test"


def piece_key(src: Source, opts: BuildOptions) -> str:
    h = hashlib.sha256(src.content_hash().encode())
    h.update(json.dumps(opts.key_fields(), sort_keys=True, default=str).encode())
    if has_repeat_hints(src):
        h.update(f"repeats:{REPEATS_VERSION}".encode())
    return h.hexdigest()[:20]


def has_repeat_hints(src: Source) -> bool:
    """Whether the source (or a file it includes) may hold repeats or jumps, or is
    a LilyPond file with several scores: a cheap text test, deliberately loose (a
    false hit only costs a rebuild)."""
    from companion.data.engrave_verovio import _source_text

    texts = [_source_text(p) for p in (src.path, *src.extra_files)]
    scores = sum(len(re.findall(r"^[^%\n]*\\score\b", t, re.MULTILINE)) for t in texts)
    return any(_REPEAT_HINTS.search(t) for t in texts) or (src.kind == "lilypond" and scores > 1)


def select(sources: list[Source], opts: BuildOptions,
           exclude_list: Path | None) -> tuple[list[Source], list[dict]]:
    """Drop reserved evaluation pieces (or keep only them with ``evaluation``) and listed works."""
    patterns = read_exclude_list(exclude_list) if exclude_list else []
    keep, dropped = [], []
    for s in sources:
        reserved = reserved_reason(s)
        if opts.evaluation:
            if not reserved:
                continue
        elif reserved:
            dropped.append({"piece": s.piece_id, "source": str(s.path), "reason": reserved})
            continue
        why = excluded_by(s, patterns)
        if why:
            dropped.append({"piece": s.piece_id, "source": str(s.path), "reason": why})
            continue
        keep.append(s)
    return keep, dropped


def build(sources: list[Source], opts: BuildOptions, workers: int = 1,
          exclude_list: Path | None = None, progress: bool = True,
          on_piece: PieceProgress | None = None, cancel: CancelEvent | None = None,
          only_splits: Collection[str] | None = None) -> BuildSummary:
    """Build every selected piece into ``opts.out`` (see docs/corpus-format.md).

    ``only_splits`` builds only the pieces of those splits (the split is a pure
    function of the work and the seed, so the rest can be built later and the
    splits stay the same).

    ``cancel`` (a ``threading``/``multiprocessing`` event) stops the run within
    a fraction of a second: the pieces in flight are abandoned (their worker
    processes and engraver children are ended, their temporary folders
    removed), the report and index are written and ``summary.cancelled`` is
    set; the next build resumes with the pieces not yet built.
    """
    t0 = time.time()
    out = opts.out
    pieces_dir = out / "pieces"
    pieces_dir.mkdir(parents=True, exist_ok=True)
    store.write_corpus_marker(out, evaluation=opts.evaluation)
    for stale in pieces_dir.glob(".tmp-*"):  # left by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    selected, dropped = select(sources, opts, exclude_list)
    summary = BuildSummary(excluded=dropped)
    if cancel is not None and cancel.is_set():
        summary.cancelled = True
    todo: list[tuple[Source, str, str]] = []
    for s in selected:
        key = piece_key(s, opts)
        split = "evaluation" if opts.evaluation else split_of(s.work, opts.seed, opts.split_fractions)
        if only_splits and split not in only_splits:  # e.g. test pieces only, to measure (LilyPond is slow)
            summary.other_splits += 1
            continue
        meta = store.read_meta(pieces_dir / s.piece_id)
        if meta is not None and meta.get("key") == key:
            summary.skipped_unchanged += 1
            continue
        todo.append((s, key, split))
    # Cheap pieces first (the most pieces per hour, early feedback): verovio
    # sources before LilyPond ones (which cost ~5x the CPU each), small before large.
    todo.sort(key=lambda t: (t[0].engraver == "lilypond", _size(t[0].path), t[0].piece_id))
    summary.to_build = len(todo)
    log.info("%d pieces to build, %d unchanged, %d excluded", len(todo), summary.skipped_unchanged, len(dropped))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="piece", desc="building corpus", dynamic_ncols=True)
    # Failures of pieces retried now are forgotten until they fail again.
    retried = {t[0].piece_id for t in todo}
    failures = {f["piece"]: f for f in store.read_report(out).get("failed", []) if f["piece"] not in retried}
    previous = _interrupt_on_sigterm()
    tracker = _Tracker(len(todo), bar, on_piece)
    try:
        if not summary.cancelled:
            _run_pool(todo, opts, max(1, workers), summary, failures, tracker, cancel=cancel)
    except _BuildCancelled:
        summary.cancelled = True
    finally:
        if bar:
            bar.close()
        if summary.cancelled:
            for stale in pieces_dir.glob(".tmp-*"):  # the abandoned pieces' (their writers are ended)
                shutil.rmtree(stale, ignore_errors=True)
            log.info("build cancelled after %d of %d pieces", tracker.done, len(todo))
        summary.seconds = time.time() - t0
        store.write_report(out, list(failures.values()), dropped, summary.seconds)
        store.write_index(out, evaluation=opts.evaluation)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return summary


class _Tracker:
    """Counts finished pieces for the progress bar and the ``on_piece`` callback."""

    def __init__(self, total: int, bar: Any, on_piece: PieceProgress | None) -> None:
        self.total, self.bar, self.on_piece, self.done = total, bar, on_piece, 0

    def piece(self, piece_id: str, ok: bool, failed: int) -> None:
        self.done += 1
        if self.bar:
            self.bar.update(1)
            self.bar.set_postfix(failed=failed)
        if self.on_piece:
            self.on_piece(self.done, self.total, piece_id, ok)


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's processes now, with their engraver children (each worker leads its own process group)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        try:
            if hasattr(os, "killpg") and proc.pid:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.terminate()
        except (ProcessLookupError, PermissionError, OSError):
            proc.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.join(5.0)


def _run_pool(todo: list, opts: BuildOptions, workers: int, summary: BuildSummary,
              failures: dict, bar: "_Tracker", isolated: bool = False, cancel: CancelEvent | None = None) -> None:
    """Build ``todo`` in worker processes. A worker that dies (verovio segfaults on
    a few sources) breaks the pool: the pieces that were in flight are then run
    one at a time in a fresh process (a piece that crashes alone is failed), and
    the rest are resubmitted to a new pool."""
    pending = list(todo)
    while pending:
        order = [item[0].piece_id for item in pending]
        done: set[str] = set()
        retry: list = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=pool_context(), initializer=_worker_init) as pool:
            futs = {pool.submit(build_piece, s, key, split, opts): (s, key, split) for s, key, split in pending}
            try:
                waiting = set(futs)
                while waiting:
                    if cancel is not None and cancel.is_set():
                        raise _BuildCancelled()
                    finished, waiting = wait(waiting, timeout=0.2, return_when=FIRST_COMPLETED)
                    for fut in sorted(finished, key=lambda f: order.index(futs[f][0].piece_id)):
                        item = futs[fut]
                        try:
                            result = fut.result()
                        except BrokenProcessPool:
                            retry.append(item)
                            continue
                        except Exception as exc:  # pickling errors and the like
                            result = {"ok": False, "reason": f"worker error: {exc}"}
                        done.add(item[0].piece_id)
                        _record(result, item[0], summary, failures, bar)
            except BaseException:
                # Interrupted or cancelled: stop now rather than finish the running
                # pieces; their temporary folders are removed (here on cancel, else
                # by the next build).
                _end_workers(pool)
                raise
        if not retry:
            return
        if isolated:
            for item in retry:
                _record({"ok": False, "reason": "the engraver crashed the worker process (segfault)"},
                        item[0], summary, failures, bar)
            return
        # The pieces in flight were the first unfinished ones in submission order.
        suspects = set([pid for pid in order if pid not in done][: workers + 1])
        retry.sort(key=lambda it: order.index(it[0].piece_id))
        log.info("a worker crashed; retrying %d pieces in isolation", len(suspects))
        for item in retry:
            if item[0].piece_id in suspects:
                _run_pool([item], opts, 1, summary, failures, bar, isolated=True, cancel=cancel)
        pending = [item for item in retry if item[0].piece_id not in suspects]


def pool_context() -> Any:
    """The start method of the build's worker processes: ``forkserver`` (``spawn``
    where there is none).

    Why not ``fork`` (Linux's default): the building process may hold threads
    (verovio, FluidSynth, torch, a GUI's job runner), and a child forked in the
    middle of another thread's lock can hang for ever; a build once hung that
    way in its pool. With ``forkserver`` the workers start from a clean
    single-threaded server process and import what they need themselves, so
    whatever a worker runs (``build_piece`` and its arguments) travels by
    pickling: module-level functions and plain data only. The cancel event is
    never sent to the workers (the pool loop checks it in the building process
    and ends the workers), so a ``threading.Event`` serves as well as a
    multiprocessing one.
    """
    import multiprocessing

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _worker_init() -> None:
    """Workers die on SIGTERM (the parent's KeyboardInterrupt handler is not for them).

    Each worker leads its own process group so that ending it also ends the
    LilyPond / FluidSynth process it may be waiting for.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent
    if hasattr(os, "setpgrp"):
        os.setpgrp()


def _interrupt_on_sigterm():
    """Make ``kill PID`` behave like Ctrl-C so the index and report are written."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (lilypond, convert-ly)."""
    import resource

    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _record(result: dict, s: Source, summary: BuildSummary, failures: dict, bar: _Tracker) -> None:
    if result.get("ok"):
        summary.built += 1
        failures.pop(s.piece_id, None)
    else:
        rec = {"piece": s.piece_id, "source": str(s.path), "reason": result.get("reason", "unknown")}
        summary.failed.append(rec)
        failures[s.piece_id] = rec
        log.info("failed: %s: %s", s.piece_id, rec["reason"])
    bar.piece(s.piece_id, bool(result.get("ok")), len(summary.failed))


def visual_params(rng: np.random.Generator, opts: BuildOptions) -> dict:
    page = str(rng.choice(list(PAGE_SIZES)))
    w, h = PAGE_SIZES[page]
    return {
        "font": str(rng.choice(list(opts.fonts))),
        "scale": int(rng.integers(32, 49)),
        "page": page,
        "page_width": w,
        "page_height": h,
        "margin": int(rng.integers(40, 110)),
        "spacing_staff": int(rng.integers(8, 16)),
        "spacing_system": int(rng.integers(8, 20)),
        "spacing_linear": float(rng.uniform(0.2, 0.3)),
        "spacing_non_linear": float(rng.uniform(0.5, 0.7)),
        "header": bool(rng.random() < 0.8),
        "mnum_interval": int(rng.choice([0, 0, 1, 5])),
        "max_pages": opts.max_pages,
        "staff_size": int(rng.choice([16, 18, 20])),  # LilyPond
    }


def build_piece(src: Source, key: str, split: str, opts: BuildOptions) -> dict:
    """Engrave, perform, synthesise, align and check one piece; never raises."""
    try:
        return _build_piece(src, key, split, opts)
    except DataError as exc:
        return {"ok": False, "reason": str(exc)}
    except Exception as exc:  # anything else is a bug or an odd source: report, go on
        tb = traceback.format_exc(limit=3).strip().splitlines()
        return {"ok": False, "reason": f"{type(exc).__name__}: {exc} [{tb[-3] if len(tb) >= 3 else ''}]"}


def _build_piece(src: Source, key: str, split: str, opts: BuildOptions) -> dict:
    from companion.audio import filterbank_center_frequencies, log_spectrogram
    from companion.config import AudioConfig
    from companion.data import checks, performance, synth

    t0 = time.time()
    cpu0 = _cpu_seconds()
    seed = int.from_bytes(hashlib.sha1(f"{opts.seed}:{src.piece_id}".encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    vis = visual_params(rng, opts)
    if src.engraver == "lilypond":
        from companion.data import engrave_lilypond

        score = engrave_lilypond.engrave(src.path, vis, opts.page_width_px, timeout_s=opts.lilypond_timeout_s)
    else:
        from companion.data import engrave_verovio

        score = engrave_verovio.engrave(src.path, vis, opts.page_width_px)
    t_engrave = time.time() - t0

    fonts = synth.available_soundfonts(opts.soundfonts)
    if not fonts:
        raise DataError("none of the configured soundfonts is installed")
    held = [f for f in fonts if f.name == Path(opts.held_out_soundfont).name]
    train_fonts = [f for f in fonts if f not in held] or fonts
    soundfont = held[0] if (split in ("test", "evaluation") and held) else train_fonts[int(rng.integers(len(train_fonts)))]
    perf_params = performance.sample_params(rng, opts.tempo_range)
    perf = performance.perform(score.events, score.bar_times, perf_params)

    cfg = AudioConfig()
    pieces_dir = opts.out / "pieces"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{src.piece_id}-", dir=pieces_dir))
    try:
        performance.write_midi(perf, tmp / "performance.mid")
        audio = synth.render_performance(perf, soundfont, cfg.sample_rate, tmp / "performance.mid", tmp / "audio.wav")
        (tmp / "audio.wav").unlink(missing_ok=True)
        if float(np.abs(audio).max(initial=0.0)) < 1e-4:
            raise DataError(f"silent audio from {soundfont.name}")
        spec = log_spectrogram(audio, cfg)
        heads, systems = store.align_tables(score, perf)
        if len(heads) == 0:
            raise DataError("no notehead could be joined to a sounding note")
        result = checks.check_piece(heads, spec, filterbank_center_frequencies(cfg), cfg.fps, seed % 2**31)
        meta = {
            "piece": src.piece_id,
            "key": key,
            "split": split,
            "source": str(src.path),
            "kind": src.kind,
            "engraver": score.engraver,
            "work": src.work,
            "composer": src.composer,
            "title": src.title,
            "opus": src.opus,
            "visual": vis,
            "engraver_options": {k: v for k, v in score.params.items() if isinstance(v, (int, float, str, bool))},
            "soundfont": soundfont.name,
            "performance": asdict(perf_params),
            "sample_rate": cfg.sample_rate,
            "fps": cfg.fps,
            "duration_s": round(perf.duration, 3),
            "pages": [list(p.shape) for p in score.pages],
            "n_noteheads": int(len(np.unique(heads["note"]))),
            "n_pairs": int(len(heads)),
            "n_systems": int(len(systems)),
            "n_events": len(perf.notes),
            "repeats": score.repeats,
            "check": result,
            "seconds": {"engrave": round(t_engrave, 2), "total": round(time.time() - t0, 2),
                        "cpu": round(_cpu_seconds() - cpu0, 2)},
        }
        store.write_piece(tmp, score, heads, systems, spec, audio if opts.keep_audio else None,
                          cfg.sample_rate, meta)
        final = pieces_dir / src.piece_id
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {"ok": True, "check": result}
