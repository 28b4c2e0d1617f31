"""What the library needs from an encoder, and the records it stores.

Why a Protocol: the library must work with any encoder (a freshly trained
one, a newer release, a test double in the test-suite) as long as it embeds
sheet snippets and passages and names its version; re-embedding on a model
change is keyed on that version string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class SheetEmbedder(Protocol):
    """The sheet side of a cross-modal encoder."""

    @property
    def model_version(self) -> str:
        """Identifies the weights; a different string means 're-embed the library'."""
        ...

    def embed_sheet_snippets(self, snippets: np.ndarray) -> np.ndarray:
        """``N x 80 x 100`` uint8 snippets (white = 255) -> ``N x D`` float32 embeddings."""
        ...

    def embed_sheet_passages(self, passages: Sequence[np.ndarray]) -> np.ndarray:
        """A list of ``n_i x 80 x 100`` snippet sequences (one per system) -> ``P x E``."""
        ...


@dataclass(frozen=True)
class SystemRecord:
    """A detected system as stored: page, box in analysis pixels, staff lines."""

    page: int
    box: tuple[float, float, float, float]
    """``x0, y0, x1, y1`` in pixels of the 835-px-wide analysis image."""
    n_staves: int
    staff_lines: tuple[tuple[float, ...], ...] = ()
    """Per staff, the y positions (analysis pixels) of its lines."""
    angle: float = 0.0
    """Page skew in degrees as the detector measured it (strips are cut deskewed)."""
    staff_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """Tight box from the first to the last staff line (analysis pixels)."""


@dataclass
class SystemEmbedding:
    """Embeddings of one system under one model."""

    snippet_x: np.ndarray
    """int32, x position (strip pixels) of each snippet's left edge."""
    snippets: np.ndarray
    """float32 ``n x D``."""
    passage: np.ndarray
    """float32 ``E``."""


@dataclass
class PageRecord:
    number: int
    width: int
    height: int
    n_systems: int


@dataclass
class DocumentResult:
    """Everything one PDF produced, written to the catalog in one transaction."""

    path: str
    sha256: str
    size: int
    mtime: float
    title: str = ""
    composer: str = ""
    n_pages: int = 0
    status: str = "indexed"
    error: str = ""
    pages: list[PageRecord] = field(default_factory=list)
    systems: list[SystemRecord] = field(default_factory=list)
    embeddings: list[SystemEmbedding] = field(default_factory=list)
    model_version: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage: render, detect, embed (write is added by the indexer)."""
    cpu_seconds: float = 0.0
    """CPU time of the process for this document (all threads): a load-independent cost."""
