"""What the engine publishes every hop (plain, immutable, thread-safe to hand over)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    LISTENING = "listening"
    """Not enough audio yet for a first decision."""
    SILENT = "silent"
    """Nothing is being played."""
    UNSURE = "unsure"
    """Music, but not (or not yet) recognised: not in the library, or not sure."""
    IDENTIFIED = "identified"
    """A piece is recognised with enough confidence; ``position`` says where."""


@dataclass(frozen=True)
class PieceConfidence:
    document_id: int
    path: str
    title: str
    confidence: float
    """Calibrated probability that this piece is being played (0..1)."""


@dataclass(frozen=True)
class Position:
    document_id: int
    path: str
    title: str
    page: int
    """0-based page of the system."""
    system: int
    """0-based system on that page (top to bottom)."""
    index: int
    """0-based system in reading order within the document."""
    confidence: float
    """Probability of this system given the piece."""


@dataclass(frozen=True)
class EngineUpdate:
    """One hop's conclusion."""

    t: float
    """Stream time (s) of the newest frame this update is based on."""
    status: Status
    pieces: tuple[PieceConfidence, ...] = field(default_factory=tuple)
    """Best pieces first (at most a handful)."""
    position: Position | None = None
    """The highlighted system, when ``status`` is IDENTIFIED."""
    unknown: float = 1.0
    """Probability of 'not in the library / not sure'."""

    @property
    def piece(self) -> str | None:
        """Title of the identified piece (what a terminal or status bar shows)."""
        return self.position.title if self.position is not None else None

    @property
    def system(self) -> str | None:
        p = self.position
        return None if p is None else f"page {p.page + 1}, system {p.system + 1}"

    def as_dict(self) -> dict:
        p = self.position
        return {
            "t": round(self.t, 3),
            "status": self.status.value,
            "unknown": round(self.unknown, 4),
            "pieces": [{"document": x.path, "title": x.title, "score": round(x.confidence, 4)}
                       for x in self.pieces],
            "position": None if p is None else {
                "document": p.path, "page": p.page, "system": p.system, "confidence": round(p.confidence, 4)},
        }
