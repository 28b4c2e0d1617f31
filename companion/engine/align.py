"""Online alignment of the performance with every document's sequence of snippets.

Why: a snippet's nearest neighbours are a weak, noisy cue (with the shipped
model the right snippet is typically ranked ~50th of 2,000), and voting
treats every hop on its own. Music is read left to right, system after
system: a performance traces a *path* through the snippets of one score.
Accumulating similarity along the best such path (a subsequence DTW run
online, one audio embedding per hop) lets many weak cues agree; on the real
scans this took piece identification from 30-s excerpts from R@1 0.34
(votes) to 0.50 with the same embeddings (docs/benchmarks.md).

The recursion, per hop ``t`` with ``s_t`` the standardised cosine of the
newest audio embedding with every library snippet (reading order, ``i``)::

    D_t[i] = s_t[i] + decay * max( max_{k=0..max_step} D_{t-1}[i-k],   # play on (or stay)
                                   max_{j in doc(i)} D_{t-1}[j] - jump_penalty )  # repeat / jump

Paths never cross from one document into another. ``decay`` < 1 forgets old
evidence (a change of piece or a jump is picked up within ~1/(1-decay) hops);
the jump term lets a repeat or a skip continue a path at a price. Document
score: the best ``D_t`` over its snippets; position: the system of that
snippet.

Cost per hop: one ``N x 32`` matrix-vector product and a few vector maxima
over the ``N`` library snippets (about 1-2 ms for 100,000 snippets).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AlignParams:
    decay: float = 0.95
    """Weight of the path so far at each hop (0.95: about the last 10 s count)."""
    max_step: int = 2
    """Snippets a path may advance per hop (library snippets are ~1/4 of a strip height apart)."""
    jump_penalty: float = 8.0
    """Price (standardised-cosine units) of continuing a path anywhere else in the same score."""
    hub_weight: float = 0.0
    """How much of each snippet's *hubness* is taken off its cosine (0 = none; needs reference audio).

    Why: with weak cross-modal embeddings some snippets sit close to almost any
    audio ("hubs") and win paths for every piece; subtracting how close a
    snippet is to audio in general (the mean cosine with its ``hub_k`` nearest
    reference excerpts, as CSLS does for word translation, Conneau et al. 2018)
    lets the snippets that match *this* audio stand out."""
    hub_k: int = 10


_HUB_CACHE: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_HUB_LOCK = threading.Lock()  # the listening worker and a lookup worker may build engines at once


def hubness(vectors: np.ndarray, reference: np.ndarray, k: int, chunk: int = 8192) -> np.ndarray:
    """Per snippet: mean cosine with its ``k`` nearest reference audio embeddings (cached by content).

    Cost: one product with the reference per snippet, in chunks (120,000 snippets x
    1,000 references: 1.2 s on one thread), once per engine and library generation."""
    z = np.ascontiguousarray(vectors, np.float32)
    ref = np.ascontiguousarray(reference, np.float32)
    if len(z) == 0 or len(ref) == 0:
        return np.zeros(len(z), np.float32)
    key = (hashlib.blake2b(z.tobytes(), digest_size=16).hexdigest(),
           hashlib.blake2b(ref.tobytes(), digest_size=16).hexdigest(), int(k))
    with _HUB_LOCK:
        if key in _HUB_CACHE:
            _HUB_CACHE.move_to_end(key)
            return _HUB_CACHE[key]
    k = max(1, min(int(k), len(ref)))
    zt, rt = torch.from_numpy(z), torch.from_numpy(ref)
    out = np.empty(len(z), np.float32)
    for i in range(0, len(z), chunk):
        out[i : i + chunk] = torch.topk(zt[i : i + chunk] @ rt.T, k, dim=1).values.mean(dim=1).numpy()
    out.setflags(write=False)  # shared by every engine on this library
    with _HUB_LOCK:
        _HUB_CACHE[key] = out
        while len(_HUB_CACHE) > 4:
            _HUB_CACHE.popitem(last=False)
    return out


class SnippetAligner:
    """Online subsequence alignment over all documents at once (flat arrays, no Python loop over documents)."""

    def __init__(self, vectors: np.ndarray, flat_system: np.ndarray, x: np.ndarray, doc_of_system: np.ndarray,
                 n_documents: int, params: AlignParams | None = None,
                 reference: np.ndarray | None = None) -> None:
        self.params = params or AlignParams()
        if self.params.max_step < 0 or not 0.0 < self.params.decay <= 1.0:
            raise ValueError("max_step must be >= 0 and decay in (0, 1]")
        flat_system = np.asarray(flat_system, np.int64)
        keep = flat_system >= 0
        order = np.lexsort((np.asarray(x)[keep], flat_system[keep]))
        self.z = np.ascontiguousarray(np.asarray(vectors, np.float32)[keep][order])
        self._z = torch.from_numpy(self.z)  # same memory; see similarities()
        self.hub: np.ndarray | None = None
        if (self.params.hub_weight and reference is not None and len(reference) and len(self.z)
                and np.ndim(reference) == 2 and np.shape(reference)[1] == self.z.shape[1]):
            self.hub = self.params.hub_weight * hubness(self.z, reference, self.params.hub_k)
        self.system = flat_system[keep][order]
        self.n_documents = int(n_documents)
        self.doc = np.asarray(doc_of_system, np.int64)[self.system] if len(self.system) else np.zeros(0, np.int64)
        n = len(self.z)
        # where a document's snippets start (for per-document maxima) and which shifts stay inside one
        self.starts = np.flatnonzero(np.r_[True, self.doc[1:] != self.doc[:-1]]) if n else np.zeros(0, np.int64)
        # where each system's snippets start (for per-system maxima: the display's hysteresis)
        self.sys_starts = np.flatnonzero(np.r_[True, self.system[1:] != self.system[:-1]]) if n else np.zeros(0, np.int64)
        self.sys_ids = self.system[self.sys_starts]
        self.sys_doc = self.doc[self.sys_starts]
        self._same = [self.doc[k:] == self.doc[:-k] for k in range(1, self.params.max_step + 1)]
        self.reset()

    @property
    def size(self) -> int:
        return len(self.z)

    def reset(self) -> None:
        self.D: np.ndarray | None = None

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """Standardised cosine of the mean of this hop's audio embeddings with every snippet."""
        q = np.asarray(embeddings, np.float32).reshape(-1, self.z.shape[1] if self.size else 1).mean(axis=0)
        # torch, not numpy: numpy's OpenBLAS wakes a thread per core for this ~1-ms product and
        # leaves them spinning between hops (measured: 25% of a core while listening); torch
        # runs on the threads the engine allows (one, live)
        s = (self._z @ torch.from_numpy(np.ascontiguousarray(q))).numpy()
        if self.hub is not None:
            s = s - self.hub
        return (s - s.mean()) / max(float(s.std()), 1e-6)

    def update(self, embeddings: np.ndarray) -> np.ndarray:
        """Advance every path by one hop; returns the new scores ``D_t`` (reading order)."""
        if self.size == 0:
            return np.zeros(0)
        s = self.similarities(embeddings).astype(np.float64)
        if self.D is None:
            self.D = s
            return self.D
        p = self.params
        prev = self.D
        best = prev.copy()
        for k, same in enumerate(self._same, start=1):
            shifted = np.where(same, prev[:-k], -np.inf)
            np.maximum(best[k:], shifted, out=best[k:])
        doc_best = np.maximum.reduceat(prev, self.starts)
        jump = np.repeat(doc_best - p.jump_penalty, np.diff(np.r_[self.starts, len(prev)]))
        np.maximum(best, jump, out=best)
        self.D = s + p.decay * best
        return self.D

    def document_scores(self) -> np.ndarray:
        """Best path score per document (``-inf`` for documents without snippets)."""
        out = np.full(self.n_documents, -np.inf)
        if self.D is None or self.size == 0:
            return out
        out[self.doc[self.starts]] = np.maximum.reduceat(self.D, self.starts)
        return out

    def best_system(self, document: int) -> int:
        """Flat index of the system where the best path of ``document`` ends (-1 when none)."""
        if self.D is None:
            return -1
        mask = self.doc == document
        if not mask.any():
            return -1
        idx = np.flatnonzero(mask)
        return int(self.system[idx[int(np.argmax(self.D[idx]))]])

    def all_system_scores(self) -> np.ndarray:
        """Best path score ending in each system that has snippets (order of :attr:`sys_ids`)."""
        if self.D is None or self.size == 0:
            return np.full(len(self.sys_ids), -np.inf)
        return np.maximum.reduceat(self.D, self.sys_starts)

    def system_scores(self, document: int) -> tuple[np.ndarray, np.ndarray]:
        """(flat systems of ``document``, best path score ending in each), reading order."""
        rows = np.flatnonzero(self.sys_doc == document)  # contiguous: snippets are in reading order
        if self.D is None or len(rows) == 0:
            return self.sys_ids[rows], np.full(len(rows), -np.inf)
        lo = int(self.sys_starts[rows[0]])
        hi = int(self.sys_starts[rows[-1] + 1]) if rows[-1] + 1 < len(self.sys_starts) else self.size
        return self.sys_ids[rows], np.maximum.reduceat(self.D[lo:hi], self.sys_starts[rows] - lo)

    def focus(self, flat_system: int, bonus: float) -> None:
        """The user says the performance is at this system: its first snippet leads every path by ``bonus``."""
        idx = np.flatnonzero(self.system == flat_system)
        if len(idx) == 0:
            return
        top = float(self.D.max()) if self.D is not None and len(self.D) else 0.0
        base = np.full(self.size, min(top, 0.0) - bonus)
        base[idx[0]] = top + bonus
        self.D = base


class AlignTrace:
    """What a :class:`SnippetAligner` reported on one query, replayed through the same interface.

    Why: fitting the decision (temperature, "not sure" level, margin, thresholds)
    replays the same path recursion hundreds of times, and the recursion does not
    depend on the decision. Recording, once per query, the document scores and
    where each document's best path ends after every update, and replaying
    those, gives the engine the same numbers at a fraction of the cost (the
    recursion is ~90% of a replay on the benchmark's development library).
    """

    def __init__(self, scores: np.ndarray, systems: np.ndarray, sys_ids: np.ndarray | None = None,
                 sys_doc: np.ndarray | None = None, sys_scores: np.ndarray | None = None) -> None:
        self.scores = np.asarray(scores, np.float64)
        self.systems = np.asarray(systems, np.int64)
        if self.scores.shape != self.systems.shape or self.scores.ndim != 2:
            raise ValueError("scores and systems must both be (updates, documents)")
        # per update, the best path score ending in every system (for the display's hysteresis)
        self.sys_ids = np.zeros(0, np.int64) if sys_ids is None else np.asarray(sys_ids, np.int64)
        self.sys_doc = np.zeros(0, np.int64) if sys_doc is None else np.asarray(sys_doc, np.int64)
        self.sys_scores = (np.zeros((len(self.scores), len(self.sys_ids))) if sys_scores is None
                           else np.asarray(sys_scores, np.float64))
        if self.sys_scores.shape != (len(self.scores), len(self.sys_ids)) or len(self.sys_doc) != len(self.sys_ids):
            raise ValueError("system scores must be (updates, systems with snippets)")
        self.rewind()

    def rewind(self) -> None:
        """Back to the start of the query (before :meth:`SnippetAligner.reset` was first called)."""
        self._next = 0
        self._row = -1

    def reset(self) -> None:
        self._row = -1  # silence or a new query: no path; the next update reads the next record

    def update(self, embeddings: np.ndarray) -> np.ndarray:
        if self._next >= len(self.scores):
            raise IndexError("replayed more updates than were recorded (different evidence?)")
        self._row = self._next
        self._next += 1
        return self.scores[self._row]

    @property
    def D(self) -> np.ndarray | None:
        return None if self._row < 0 else self.scores[self._row]

    def document_scores(self) -> np.ndarray:
        if self._row < 0:
            return np.full(self.scores.shape[1], -np.inf)
        return self.scores[self._row].copy()

    def best_system(self, document: int) -> int:
        return -1 if self._row < 0 else int(self.systems[self._row, document])

    def system_scores(self, document: int) -> tuple[np.ndarray, np.ndarray]:
        mask = self.sys_doc == document
        if self._row < 0:
            return self.sys_ids[mask], np.full(int(mask.sum()), -np.inf)
        return self.sys_ids[mask], self.sys_scores[self._row, mask]


class AlignRecorder:
    """Wraps a live :class:`SnippetAligner` and records an :class:`AlignTrace` of its updates."""

    def __init__(self, aligner: SnippetAligner) -> None:
        self.aligner = aligner
        self._scores: list[np.ndarray] = []
        self._systems: list[np.ndarray] = []
        self._sys_scores: list[np.ndarray] = []

    def reset(self) -> None:
        self.aligner.reset()

    def update(self, embeddings: np.ndarray) -> np.ndarray:
        out = self.aligner.update(embeddings)
        self._scores.append(self.aligner.document_scores())
        self._systems.append(self.best_systems())
        self._sys_scores.append(self.aligner.all_system_scores())
        return out

    def best_systems(self) -> np.ndarray:
        """Per document, the system where its best path ends (first best snippet, as ``best_system``)."""
        a = self.aligner
        out = np.full(a.n_documents, -1, np.int64)
        if a.D is None or a.size == 0:
            return out
        lengths = np.diff(np.r_[a.starts, a.size])
        top = np.repeat(np.maximum.reduceat(a.D, a.starts), lengths)
        hit = np.flatnonzero(a.D == top)
        docs, first = np.unique(a.doc[hit], return_index=True)
        out[docs] = a.system[hit[first]]
        return out

    @property
    def D(self) -> np.ndarray | None:
        return self.aligner.D

    def document_scores(self) -> np.ndarray:
        return self.aligner.document_scores()

    def best_system(self, document: int) -> int:
        return self.aligner.best_system(document)

    def system_scores(self, document: int) -> tuple[np.ndarray, np.ndarray]:
        return self.aligner.system_scores(document)

    def focus(self, flat_system: int, bonus: float) -> None:
        self.aligner.focus(flat_system, bonus)

    def trace(self) -> AlignTrace:
        n = self.aligner.n_documents
        a = self.aligner
        return AlignTrace(np.array(self._scores).reshape(-1, n), np.array(self._systems).reshape(-1, n),
                          a.sys_ids, a.sys_doc, np.array(self._sys_scores, np.float64).reshape(-1, len(a.sys_ids)))
