"""What the GUI shows of an identification, and how it finds the engine.

Why an adapter: the identification engine is written in parallel. The
Listen panel and the lookup view are written against the small
:class:`Identification` record (ranked pieces with confidence, the position
with its confidence, an honest "not sure"); :func:`to_identification` reads
an engine result by duck typing. Until the engine offers its entry points,
:func:`live_engine` / :func:`lookup_engine` return the reason, and the views
say that identification is unavailable instead of showing anything invented.

Engine entry points looked for (module ``companion.engine``):

* ``create_live_consumer(cfg, library_dir)`` -> a :class:`companion.live.FrameConsumer`
  whose results convert with :func:`to_identification`;
* ``lookup_recording(cfg, library_dir, audio_path, progress=None, cancel=None)``
  -> an object with ``hops`` (a sequence of per-hop results) or itself a
  sequence of them; ``progress(fraction)`` and ``cancel`` (a threading.Event)
  are optional keyword arguments.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from companion.config import Config

LIVE_HOOK = "create_live_consumer"
LOOKUP_HOOK = "lookup_recording"


@dataclass(frozen=True)
class RankedPiece:
    document_id: int
    title: str
    confidence: float


@dataclass(frozen=True)
class Position:
    document_id: int
    page: int
    system: int
    """Index of the system in reading order within the document (the engine's ``index``)."""
    confidence: float
    page_system: int = -1
    """The system's number on its page (0-based), when the engine says it."""

    def describe(self) -> str:
        on_page = f" · system {self.page_system + 1}" if self.page_system >= 0 else f" · system #{self.system + 1}"
        return f"page {self.page + 1}{on_page}"


@dataclass(frozen=True)
class Identification:
    t: float
    """Seconds into the performance / recording."""
    pieces: tuple[RankedPiece, ...]
    position: Position | None
    sure: bool
    """False: the engine does not know (silence, unknown music, too little evidence)."""


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def to_identification(result: Any, t: float = 0.0) -> Identification:
    """Read an engine result (object or dict) into an :class:`Identification`."""
    if isinstance(result, Identification):
        return result
    raw_pieces = _get(result, "pieces", "ranked", "candidates", default=()) or ()
    pieces = []
    for p in raw_pieces:
        pieces.append(RankedPiece(
            document_id=int(_get(p, "document_id", "document", "doc", default=-1)),
            title=str(_get(p, "title", "name", default="")),
            confidence=float(_get(p, "confidence", "probability", "score", default=0.0)),
        ))
    pos = _get(result, "position", default=None)
    position = None
    if pos is not None:
        has_index = _get(pos, "index", default=None) is not None
        position = Position(
            document_id=int(_get(pos, "document_id", "document", "doc", default=-1)),
            page=int(_get(pos, "page", default=-1)),
            system=int(_get(pos, "index", "system", default=-1)),
            confidence=float(_get(pos, "confidence", "probability", default=0.0)),
            page_system=int(_get(pos, "system", default=-1)) if has_index else -1,
        )
    sure = _get(result, "sure", default=None)
    status = _get(result, "status", default=None)
    if sure is None and status is not None:
        sure = str(getattr(status, "value", status)) == "identified"
    if sure is None:
        not_sure = _get(result, "not_sure", "unknown", default=None)
        sure = (not not_sure) if not_sure is not None else position is not None
    return Identification(float(_get(result, "t", "time", default=t)), tuple(pieces), position, bool(sure))


def _engine_attr(name: str) -> tuple[Any | None, str]:
    try:
        engine = importlib.import_module("companion.engine")
    except ImportError as exc:
        return None, f"the identification engine is not installed ({exc})"
    fn = getattr(engine, name, None)
    if fn is None:
        return None, f"the identification engine does not offer this yet (companion.engine.{name} is missing)"
    return fn, ""


def live_engine(cfg: Config, library_dir: Path) -> tuple[Any | None, str]:
    """A live frame consumer, or (None, why identification is unavailable)."""
    factory, why = _engine_attr(LIVE_HOOK)
    if factory is None:
        return None, why
    return factory(cfg, library_dir), ""


def lookup_available() -> tuple[bool, str]:
    fn, why = _engine_attr(LOOKUP_HOOK)
    return fn is not None, why


def lookup_recording(cfg: Config, library_dir: Path, audio: Path, progress: Callable[[float], None] | None = None,
                     cancel: Any = None) -> list[Identification]:
    """Run the engine's recording lookup; one :class:`Identification` per hop."""
    fn, why = _engine_attr(LOOKUP_HOOK)
    if fn is None:
        from companion.errors import CompanionError

        raise CompanionError(f"recordings cannot be looked up: {why}")
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {}
    if "progress" in params and progress is not None:
        kwargs["progress"] = progress
    if "cancel" in params and cancel is not None:
        kwargs["cancel"] = cancel
    out = fn(cfg, library_dir, audio, **kwargs)
    hops = _get(out, "hops", default=None)
    if hops is None:
        hops = out if isinstance(out, (list, tuple)) else []
    return [to_identification(h, t=i * 0.5) for i, h in enumerate(hops)]


def timeline(hops: Sequence[Identification]) -> list[tuple[float, float, Position]]:
    """Merge consecutive sure hops at the same system into (start, end, position) segments."""
    out: list[tuple[float, float, Position]] = []
    for h in hops:
        if not h.sure or h.position is None:
            continue
        p = h.position
        if out and (out[-1][2].document_id, out[-1][2].system) == (p.document_id, p.system):
            start, _, first = out[-1]
            out[-1] = (start, h.t, first if first.confidence >= p.confidence else p)
        else:
            out.append((h.t, h.t, p))
    return out
