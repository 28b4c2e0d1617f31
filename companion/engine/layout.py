"""What the engine needs from a library, and the flat system layout it follows.

Why a Protocol: the engine searches whatever holds the embeddings -- the
persistent :class:`companion.library.Library`, or :class:`ArrayLibrary`, an
in-memory library built from arrays (tests, benchmarks of the compute per hop
on synthetic libraries). Both answer the same four questions: which
documents, which systems (page of each), nearest snippets, nearest passages.

Systems are addressed by a *flat* index: documents in the library's order,
systems in reading order within a document. The follower HMM works on flat
indices; :class:`Layout` maps them back to (document, page, system on page).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from companion.library import vectors
from companion.library.protocols import SystemRecord


@runtime_checkable
class SearchableLibrary(Protocol):
    """The read side of a library as the engine uses it (``Library`` satisfies it)."""

    @property
    def generation(self) -> int: ...

    @property
    def model_version(self) -> str: ...

    @property
    def documents(self) -> Sequence: ...
    """Rows with ``id``, ``path``, ``title`` and ``composer``."""

    def systems_of(self, document_id: int) -> Sequence[SystemRecord]: ...

    def search_snippets(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]: ...

    def search_passages(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]: ...

    def flat_system_index(self, hits: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    path: str
    title: str
    composer: str = ""


class Layout:
    """Documents and the flat system index of one library generation."""

    def __init__(self, documents: Sequence[DocumentInfo], system_pages: Sequence[Sequence[int]],
                 generation: int = 0) -> None:
        if len(documents) != len(system_pages):
            raise ValueError("one page list per document is needed")
        self.documents = tuple(documents)
        self.generation = generation
        self.doc_sizes = np.array([len(p) for p in system_pages], dtype=np.int64)
        self.n_systems = int(self.doc_sizes.sum())
        self.doc_start = np.concatenate([[0], np.cumsum(self.doc_sizes)[:-1]]).astype(np.int64)
        self.doc_of = np.repeat(np.arange(len(self.documents)), self.doc_sizes)
        pages = [int(p) for ps in system_pages for p in ps]
        self.page_of = np.asarray(pages, dtype=np.int64)
        on_page = np.zeros(self.n_systems, dtype=np.int64)
        for d, ps in enumerate(system_pages):
            seen: dict[int, int] = {}
            for j, p in enumerate(ps):
                on_page[self.doc_start[d] + j] = seen.get(int(p), 0)
                seen[int(p)] = seen.get(int(p), 0) + 1
        self.on_page = on_page
        self._doc_index = {doc.id: i for i, doc in enumerate(self.documents)}

    @classmethod
    def from_library(cls, library: SearchableLibrary) -> "Layout":
        docs = [DocumentInfo(int(d.id), str(d.path), str(d.title or ""), str(getattr(d, "composer", "") or ""))
                for d in library.documents]
        pages = [[s.page for s in library.systems_of(d.id)] for d in docs]
        return cls(docs, pages, int(library.generation))

    def doc_index(self, document_id: int) -> int:
        return self._doc_index[document_id]

    def flat(self, doc_index: int, system: int) -> int:
        """Flat index of system ``system`` (reading order) of the ``doc_index``-th document."""
        return int(self.doc_start[doc_index]) + system

    def locate(self, flat: int) -> tuple[int, int, int]:
        """(document index, page, system on that page) of a flat system index."""
        return int(self.doc_of[flat]), int(self.page_of[flat]), int(self.on_page[flat])

    def flat_of_page_system(self, doc_index: int, page: int, on_page: int) -> int | None:
        lo = int(self.doc_start[doc_index])
        hi = lo + int(self.doc_sizes[doc_index])
        hit = np.flatnonzero((self.page_of[lo:hi] == page) & (self.on_page[lo:hi] == on_page))
        return lo + int(hit[0]) if len(hit) else None


class ArrayLibrary:
    """An in-memory library from embeddings (same search semantics as ``Library``).

    ``snippets[d][j]`` is the ``n x 32`` array of snippet embeddings of system
    ``j`` of document ``d``; ``passages[d]`` the ``n_systems x 64`` passage
    embeddings (or None). Cosine search with the library's faiss code.
    """

    def __init__(self, documents: Sequence[DocumentInfo], system_pages: Sequence[Sequence[int]],
                 snippets: Sequence[Sequence[np.ndarray]], passages: Sequence[np.ndarray] | None = None,
                 model_version: str = "array", exact_max: int = vectors.EXACT_MAX_VECTORS) -> None:
        self.layout = Layout(documents, system_pages, generation=1)
        self._model_version = model_version
        self._systems = {
            doc.id: tuple(SystemRecord(page=int(p), box=(0.0, 0.0, 0.0, 0.0), n_staves=2) for p in pages)
            for doc, pages in zip(documents, system_pages)
        }
        rows, vecs = [], []
        for d, doc in enumerate(documents):
            if len(snippets[d]) != len(system_pages[d]):
                raise ValueError(f"document {doc.id}: snippets for {len(snippets[d])} systems, "
                                 f"pages for {len(system_pages[d])}")
            for j, snip in enumerate(snippets[d]):
                snip = np.asarray(snip, np.float32)
                for i in range(len(snip)):
                    rows.append((doc.id, int(system_pages[d][j]), j, 50 * i, 0))
                vecs.append(snip)
        data = np.concatenate(vecs) if vecs else np.zeros((0, 32), np.float32)
        self._snippets = vectors.build_index(data, np.asarray(rows, np.int64).reshape(-1, 5), exact_max=exact_max)
        if passages is not None:
            prow = [(doc.id, int(p), j, 0, 0) for doc, pages in zip(documents, system_pages)
                    for j, p in enumerate(pages)]
            pdata = np.concatenate([np.asarray(p, np.float32) for p in passages])
            self._passages = vectors.build_index(pdata, np.asarray(prow, np.int64).reshape(-1, 5),
                                                 exact_max=exact_max)
        else:
            self._passages = vectors.build_index(np.zeros((0, 0), np.float32), np.zeros((0, 5), np.int64))

    @property
    def generation(self) -> int:
        return 1

    @property
    def model_version(self) -> str:
        return self._model_version

    @property
    def documents(self) -> tuple[DocumentInfo, ...]:
        return self.layout.documents

    def systems_of(self, document_id: int) -> tuple[SystemRecord, ...]:
        return self._systems[document_id]

    @staticmethod
    def _search(index: vectors.VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, pos = index.search(queries, k)
        hits = np.full(pos.shape + (4,), -1, dtype=np.int64)
        ok = pos >= 0
        hits[ok] = index.ids[pos[ok]][:, :4]
        return scores, hits

    def search_snippets(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        return self._search(self._snippets, queries, k)

    def search_passages(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        return self._search(self._passages, queries, k)

    def snippet_table(self) -> tuple[np.ndarray, np.ndarray]:
        """All snippet embeddings and their hit rows (document, page, system, x)."""
        return self._snippets.vectors(), self._snippets.ids[:, :4].copy()

    def flat_system_index(self, hits: np.ndarray) -> np.ndarray:
        out = np.full(hits.shape[:-1], -1, dtype=np.int64)
        for d, doc in enumerate(self.layout.documents):
            mask = hits[..., 0] == doc.id
            out[mask] = self.layout.doc_start[d] + hits[..., 2][mask]
        return out

    @property
    def has_passages(self) -> bool:
        return self._passages.size > 0
