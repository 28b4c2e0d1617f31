"""A recording in, the ranked pieces and a timeline of (time, document, page, system) out.

The recording is streamed through the same :class:`~companion.engine.engine.Engine`
path as live audio (hop by hop), so ``companion identify`` shows exactly what
``companion listen`` would have shown for that recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from companion.audio import load_audio, log_spectrogram
from companion.config import AudioConfig, Config
from companion.engine.engine import Engine, summarise
from companion.engine.results import EngineUpdate, Status
from companion.errors import AudioError, CompanionError


def timeline(updates: list[EngineUpdate]) -> list[dict[str, Any]]:
    """Entries where the highlighted system changes (``document: null`` = not identified / not sure)."""
    out: list[dict[str, Any]] = []
    last: tuple | None = None
    for u in updates:
        p = u.position if u.status is Status.IDENTIFIED else None
        key = None if p is None else (p.path, p.page, p.system)
        if key == last:
            continue
        if key is None and last is None:
            continue
        last = key
        if p is None:
            out.append({"t": round(u.t, 2), "document": None, "page": None, "system": None,
                        "confidence": round(float(u.unknown), 3)})
        else:
            conf = u.pieces[0].confidence if u.pieces else 0.0
            out.append({"t": round(u.t, 2), "document": p.path, "page": p.page, "system": p.system,
                        "confidence": round(float(conf * p.confidence), 3)})
    return out


def identify_spectrogram(engine: Engine, spec: np.ndarray, t0: float = 0.0, max_pieces: int = 10) -> dict[str, Any]:
    """Run the engine over a spectrogram and build the JSON answer."""
    updates = engine.run(spec, t0=t0)
    ranked = summarise(updates, engine.layout)[:max_pieces]
    docs = engine.layout.documents
    pieces = [{"document": docs[i].path, "title": docs[i].title, "score": round(score, 4)}
              for i, score in ranked if score >= 0.005]
    return {"pieces": pieces, "timeline": timeline(updates)}


def load_excerpt(path: Path, start: float = 0.0, duration: float | None = None,
                 cfg: AudioConfig | None = None) -> np.ndarray:
    """The log spectrogram of ``duration`` seconds of a recording from ``start``."""
    cfg = cfg or AudioConfig()
    if start < 0:
        raise CompanionError(f"--start must be >= 0 seconds, got {start}")
    if duration is not None and duration <= 0:
        raise CompanionError(f"--duration must be > 0 seconds, got {duration}")
    signal = load_audio(path, sample_rate=cfg.sample_rate)
    total = len(signal) / cfg.sample_rate
    if start >= total:
        raise AudioError(f"{path} is {total:.1f} s long; --start {start:g} s is past its end")
    a = int(round(start * cfg.sample_rate))
    b = len(signal) if duration is None else min(len(signal), a + int(round(duration * cfg.sample_rate)))
    return log_spectrogram(signal[a:b], sample_rate=cfg.sample_rate, cfg=cfg)


def identify_file(engine: Engine, path: Path, start: float = 0.0, duration: float | None = None,
                  cfg: AudioConfig | None = None) -> dict[str, Any]:
    spec = load_excerpt(Path(path), start, duration, cfg)
    result = identify_spectrogram(engine, spec, t0=start)
    result["recording"] = str(path)
    result["seconds"] = round(len(spec) / (cfg or AudioConfig()).fps, 2)
    return result


def format_text(result: dict[str, Any]) -> str:
    """The human-readable form of :func:`identify_file`'s answer."""
    lines = []
    if result["pieces"]:
        lines.append("Pieces (best first):")
        for i, p in enumerate(result["pieces"], 1):
            lines.append(f"  {i}. {p['title'] or Path(p['document']).stem}  score {p['score']:.2f}  ({p['document']})")
    else:
        lines.append("No piece of the library was recognised.")
    if result["timeline"]:
        lines.append("Timeline:")
        for e in result["timeline"]:
            if e["document"] is None:
                lines.append(f"  {e['t']:7.1f} s  not sure / not in the library")
            else:
                lines.append(f"  {e['t']:7.1f} s  {Path(e['document']).name}  page {e['page'] + 1}, "
                             f"system {e['system'] + 1}  (confidence {e['confidence']:.2f})")
    return "\n".join(lines)


@dataclass
class Lookup:
    """A dropped recording looked up: every hop's update and the JSON-style summary."""

    hops: list[EngineUpdate]
    result: dict[str, Any]
    cancelled: bool = False


def run_with_progress(engine: Engine, spec: np.ndarray, t0: float = 0.0,
                      progress: Callable[[float], None] | None = None, cancel: Any = None) -> tuple[list[EngineUpdate], bool]:
    """:meth:`Engine.run` with a progress callback (fraction done) and a cancel event."""
    engine.reset()
    out: list[EngineUpdate] = []
    hop = engine.params.hop_frames
    n = len(spec)
    for i in range(0, n, hop):
        if cancel is not None and cancel.is_set():
            return out, True
        out.extend(engine.push(spec[i : i + hop], t0 + i / 20.0))
        if progress is not None and (i // hop) % 20 == 0:
            progress(min(1.0, (i + hop) / max(n, 1)))
    if progress is not None:
        progress(1.0)
    return out, False


def lookup_recording(cfg: Config, library_dir: Path, audio_path: Path,
                     progress: Callable[[float], None] | None = None, cancel: Any = None) -> Lookup:
    """The GUI's recording lookup (hook ``companion.engine.lookup_recording``)."""
    from companion.engine.session import open_engine

    engine = open_engine(cfg, Path(library_dir), threads=1)
    spec = load_excerpt(Path(audio_path), cfg=cfg.audio)
    updates, cancelled = run_with_progress(engine, spec, progress=progress, cancel=cancel)
    ranked = summarise(updates, engine.layout)[:10]
    docs = engine.layout.documents
    result = {"pieces": [{"document": docs[i].path, "title": docs[i].title, "score": round(s, 4)}
                         for i, s in ranked if s >= 0.005],
              "timeline": timeline(updates)}
    return Lookup(updates, result, cancelled)
