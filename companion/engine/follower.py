"""Online HMM over the systems of every piece in the library.

Why an HMM: per-hop similarity scores are noisy; a performance moves forward
through the systems of one piece, with occasional repeats, jumps and changes
of piece. Forward filtering with those transitions turns noisy evidence into a
stable position, and a dedicated "unknown" state lets the engine say honestly
that the music is not (or not yet) recognised.

States: one per (document, system in reading order) plus one ``unknown`` state.
Every hop the engine gives one score per system (higher = more similar, e.g. a
cosine similarity or a vote share) and the follower updates the posterior in
O(number of systems).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FollowerParams:
    """Transition and observation model; defaults are tuned on rendered pieces."""

    p_stay: float = 0.80
    """Stay on the same system for the next hop (a system lasts several hops)."""
    p_next: float = 0.17
    """Move on to the next system of the same piece."""
    p_jump: float = 0.02
    """Jump to any other system of the same piece (repeats, da capo, skips)."""
    p_switch: float = 0.01
    """Start another piece, or stop playing (to any state of another piece or unknown)."""
    temperature: float = 0.15
    """Observation sharpness: likelihood = exp(score / temperature)."""
    unknown_score: float = 0.35
    """The score that the unknown state 'explains' every hop; systems must beat it."""
    unknown_stay: float = 0.9
    """Probability to stay unknown (otherwise enter a uniformly chosen system)."""


class SystemFollower:
    """Forward filtering over systems grouped into documents.

    ``doc_sizes[i]`` is the number of systems of document ``i``; systems are
    addressed by a flat index in document order, reading order within a document.
    """

    def __init__(self, doc_sizes: list[int] | np.ndarray, params: FollowerParams | None = None) -> None:
        self.params = params or FollowerParams()
        sizes = np.asarray(doc_sizes, dtype=np.int64)
        if sizes.ndim != 1 or (sizes < 0).any():
            raise ValueError("doc_sizes must be a 1-d list of non-negative counts")
        self.doc_sizes = sizes
        self.n_systems = int(sizes.sum())
        self.doc_of = np.repeat(np.arange(len(sizes)), sizes)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.doc_start = starts
        # last system of each document: "next" from there is not possible
        self._is_last = np.zeros(self.n_systems, dtype=bool)
        nonempty = sizes > 0
        self._is_last[(starts + sizes - 1)[nonempty]] = True
        self.reset()

    def reset(self) -> None:
        """Forget the performance: everything unknown."""
        self.posterior = np.zeros(self.n_systems + 1)
        self.posterior[-1] = 1.0

    # ------------------------------------------------------------------
    def _predict(self) -> np.ndarray:
        p = self.params
        alpha = self.posterior[:-1]
        unknown = self.posterior[-1]
        n = self.n_systems
        out = np.zeros(n + 1)
        if n == 0:
            out[-1] = 1.0
            return out
        # stay, and next within the same document (at the last system "next" stays)
        stay = alpha * p.p_stay
        nxt = alpha * p.p_next
        out[:-1] += stay
        out[1:n] += np.where(self._is_last[:-1], 0.0, nxt[:-1])
        out[:-1] += np.where(self._is_last, nxt, 0.0)
        # jumps within the document, spread uniformly over its systems
        doc_mass = np.bincount(self.doc_of, weights=alpha, minlength=len(self.doc_sizes))
        sizes = np.maximum(self.doc_sizes, 1)
        out[:-1] += (p.p_jump * doc_mass / sizes)[self.doc_of]
        # switch to anything else (another piece, or stop playing)
        total_sys = alpha.sum()
        switch_mass = p.p_switch * total_sys
        out[:-1] += switch_mass / (n + 1)
        out[-1] += switch_mass / (n + 1)
        # leave the unknown state
        out[-1] += unknown * p.unknown_stay
        out[:-1] += unknown * (1.0 - p.unknown_stay) / n
        return out

    def update(self, scores: np.ndarray, active: bool = True) -> np.ndarray:
        """Advance one hop with per-system ``scores`` and return the posterior.

        ``active=False`` (silence, room noise) lets only the unknown state
        explain the hop, so the follower decays towards "not sure" instead of
        drifting on noise.
        """
        prior = self._predict()
        p = self.params
        if not active:
            lik = np.full(self.n_systems + 1, 1e-3)
            lik[-1] = 1.0
        else:
            s = np.asarray(scores, dtype=np.float64)
            if s.shape != (self.n_systems,):
                raise ValueError(f"expected {self.n_systems} scores, got {s.shape}")
            logits = np.concatenate([s, [p.unknown_score]]) / p.temperature
            logits -= logits.max()
            lik = np.exp(logits)
        post = prior * lik
        total = post.sum()
        self.posterior = post / total if total > 0 else np.eye(1, self.n_systems + 1, self.n_systems)[0]
        return self.posterior

    # ------------------------------------------------------------------
    def document_probabilities(self) -> np.ndarray:
        """Posterior mass of each document (the unknown mass is ``1 - sum``)."""
        return np.bincount(self.doc_of, weights=self.posterior[:-1], minlength=len(self.doc_sizes))

    @property
    def unknown_probability(self) -> float:
        return float(self.posterior[-1])

    def best_system(self) -> tuple[int, int, float] | None:
        """(document, system within the document, probability) of the MAP system."""
        if self.n_systems == 0:
            return None
        flat = int(np.argmax(self.posterior[:-1]))
        doc = int(self.doc_of[flat])
        return doc, flat - int(self.doc_start[doc]), float(self.posterior[flat])

    def jump_to(self, document: int, system: int, weight: float = 0.9) -> None:
        """Move belief to a system the user clicked (the follower respects the user)."""
        flat = int(self.doc_start[document]) + system
        if not (0 <= system < self.doc_sizes[document]):
            raise IndexError("no such system")
        self.posterior *= 1.0 - weight
        self.posterior[flat] += weight
