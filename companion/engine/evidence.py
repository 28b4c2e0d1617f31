"""Per-hop evidence: audio embeddings searched in the library, turned into scores.

Two sources, each usable on its own (the benchmark measures them separately):

* **snippet votes** (Dorfer et al., TISMIR 2018): each ~2-s audio excerpt is
  embedded (32-d) and its ``k`` (25) nearest sheet snippets vote for their
  system and document;
* **passage match** (Carvalho & Widmer, ISMIR 2023): the last few seconds of
  audio are embedded by the GRU passage encoder (64-d) and compared with the
  passage embedding of every system.

Why scores relative to chance / to the k-th neighbour: cosine levels differ
between models and vote shares between library sizes; the follower needs
evidence that is ~0 for "nothing special" whatever the model or library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from companion.engine.layout import Layout, SearchableLibrary


@runtime_checkable
class AudioEncoder(Protocol):
    """The audio side of the encoders (``companion.models.embedder.Embedder`` satisfies it)."""

    model_version: str

    def embed_audio_excerpts(self, excerpts: np.ndarray) -> np.ndarray:
        """``N x 92 x 42`` log-spectrogram excerpts -> ``N x 32`` unit vectors."""
        ...

    def embed_audio_passages(self, spectrograms: Sequence[np.ndarray]) -> np.ndarray:
        """Spectrograms ``(frames, 92)`` -> ``N x 64`` unit vectors (needs a passage model)."""
        ...


def has_passage_encoder(encoder: AudioEncoder) -> bool:
    """The shipped Embedder sets ``passage = None`` when no passage model is installed."""
    return getattr(encoder, "passage", True) is not None and hasattr(encoder, "embed_audio_passages")


def library_has_passages(library: SearchableLibrary) -> bool:
    flag = getattr(library, "has_passages", None)
    if isinstance(flag, bool):
        return flag
    snap = getattr(library, "snapshot", None)
    return bool(snap is not None and snap.passages.size > 0)


@dataclass
class HopEvidence:
    """What one hop's audio says, in flat-system terms (dense arrays over all systems)."""

    system_votes: np.ndarray
    """Share of this hop's snippet votes that went to each system (sums to <= 1)."""
    doc_votes: np.ndarray
    """Share of this hop's votes per document."""
    snippet_sim: np.ndarray | None = None
    """Best snippet cosine per system (see :func:`snippet_votes`), or None."""
    passage: np.ndarray | None = None
    """Passage cosine per system (the k-th best outside the top k), or None."""
    top_passage: int = -1
    """Flat index of the best passage match (-1 when there is none)."""
    n_votes: int = 0
    embeddings: np.ndarray | None = None
    """This hop's audio excerpt embeddings (the alignment method scores them against every snippet)."""
    extra: dict = field(default_factory=dict)


def snippet_votes(library: SearchableLibrary, layout: Layout, embeddings: np.ndarray,
                  k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The ``k`` nearest snippets of each excerpt embedding vote for their system and document.

    Returns (system vote share, document vote share, system similarity, votes cast).
    System similarity is, averaged over the excerpts, the best cosine of a snippet
    of that system among the hits, or the k-th best cosine when none of its
    snippets is among them: an absolute level, so that music that is not in
    the library (everything far) can be told from music that is (something near).
    """
    n_sys = layout.n_systems
    sys_votes = np.zeros(n_sys)
    doc_votes = np.zeros(len(layout.documents))
    sim = np.zeros(n_sys)
    if len(embeddings) == 0 or n_sys == 0:
        return sys_votes, doc_votes, sim, 0
    scores, hits = library.search_snippets(embeddings, k=k)
    flat_all = library.flat_system_index(hits)
    for q in range(len(embeddings)):
        f, s = flat_all[q], scores[q].astype(np.float64)
        ok = (f >= 0) & (f < n_sys) & np.isfinite(s)
        if not ok.any():
            continue
        f, s = f[ok], s[ok]
        row = np.full(n_sys, float(s.min()))
        np.maximum.at(row, f, s)
        sim += row
    sim /= len(embeddings)
    flat = flat_all.ravel()
    flat = flat[(flat >= 0) & (flat < n_sys)]
    if len(flat) == 0:
        return sys_votes, doc_votes, sim, 0
    total = float(len(embeddings) * k)
    sys_votes = np.bincount(flat, minlength=n_sys) / total
    doc_votes = np.bincount(layout.doc_of[flat], minlength=len(layout.documents)) / total
    return sys_votes, doc_votes, sim, int(len(flat))


def passage_evidence(library: SearchableLibrary, layout: Layout, embedding: np.ndarray,
                     k: int) -> tuple[np.ndarray, int]:
    """Cosine of the passage embedding with each system (the k-th best outside the top k)."""
    n_sys = layout.n_systems
    out = np.zeros(n_sys)
    if n_sys == 0:
        return out, -1
    k = max(1, min(k, n_sys))
    scores, hits = library.search_passages(embedding[None, :], k=k)
    flat = library.flat_system_index(hits)[0]
    s = scores[0].astype(np.float64)
    ok = (flat >= 0) & np.isfinite(s)
    if not ok.any():
        return out, -1
    out[:] = float(s[ok].min())
    out[flat[ok]] = s[ok]
    return out, int(flat[ok][0])
