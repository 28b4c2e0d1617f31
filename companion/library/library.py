"""Reading a library: consistent snapshots for search while an indexer writes.

Why snapshots: the identification engine and the GUI search while an indexing
run goes on. A snapshot is taken in one SQLite read transaction (documents and
systems of the published generation) plus the faiss files of that generation,
so search hits always point at documents and systems of the same state.
:meth:`Library.refresh` (called by every search) swaps in a new snapshot when
the published generation number changed.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from companion.library import vectors
from companion.library.catalog import Catalog, DocumentRow
from companion.library.errors import LibraryError
from companion.library.protocols import SystemRecord

HIT_COLUMNS = ("document", "page", "system", "x")
"""Columns of a search hit: document id, page (0-based), system index in reading order
within the document, snippet x (strip pixels; 0 for passages). -1 where no hit."""


@dataclass(frozen=True)
class Snapshot:
    generation: int
    model_version: str
    documents: tuple[DocumentRow, ...]
    systems: dict[int, tuple[SystemRecord, ...]]
    snippets: vectors.VectorIndex
    passages: vectors.VectorIndex
    system_offset: dict[int, int]
    """Flat index of each document's first system, in ``documents`` order."""


class Library:
    """A library directory opened for searching (and, via the indexer, for writing)."""

    def __init__(self, directory: Path, readonly: bool = True) -> None:
        self.directory = Path(directory)
        self.catalog = Catalog(self.directory, readonly=readonly)
        self._lock = threading.RLock()
        """One SQLite connection serves every thread (GUI, engine): transactions must not interleave."""
        self._snapshot = self._load()

    @classmethod
    def open(cls, directory: Path | str, readonly: bool = True) -> "Library":
        return cls(Path(directory), readonly=readonly)

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- snapshots -----------------------------------------------------------------------------

    def _load(self) -> Snapshot:
        for attempt in range(20):
            with self._lock, self.catalog.transaction(immediate=False):
                generation = self.catalog.generation
                model = self.catalog.model_version
                docs = tuple(self.catalog.documents("d.visible = 1"))
                systems = {d.id: tuple(s for _, s in self.catalog.systems_of(d.id)) for d in docs}
            try:
                if generation == 0:
                    empty = vectors.build_index(np.zeros((0, 0), np.float32), np.zeros((0, 5), np.int64))
                    snip, pas = empty, empty
                else:
                    snip = vectors.load_index(self.directory, "snippets", generation)
                    pas = vectors.load_index(self.directory, "passages", generation)
            except FileNotFoundError:
                time.sleep(0.05 * (attempt + 1))  # two publishes happened meanwhile: take the newest
                continue
            offsets: dict[int, int] = {}
            total = 0
            for d in docs:
                offsets[d.id] = total
                total += len(systems[d.id])
            return Snapshot(generation, model, docs, systems, snip, pas, offsets)
        raise LibraryError(f"the index files of the library {self.directory} are missing or damaged; "
                           "run 'companion index' to rebuild them")

    def refresh(self) -> bool:
        """Switch to the newest published generation; True if it changed."""
        with self._lock:
            if self.catalog.generation == self._snapshot.generation:
                return False
            self._snapshot = self._load()
            return True

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def generation(self) -> int:
        return self._snapshot.generation

    @property
    def model_version(self) -> str:
        return self._snapshot.model_version

    # -- queries ---------------------------------------------------------------------------------

    @property
    def documents(self) -> tuple[DocumentRow, ...]:
        """Searchable documents of the current snapshot (ordered by path)."""
        return self._snapshot.documents

    def document(self, document_id: int) -> DocumentRow:
        for d in self._snapshot.documents:
            if d.id == document_id:
                return d
        raise LibraryError(f"no document {document_id} in the library")

    def systems_of(self, document_id: int) -> tuple[SystemRecord, ...]:
        """The document's systems in reading order (page, then top to bottom)."""
        try:
            return self._snapshot.systems[document_id]
        except KeyError:
            raise LibraryError(f"no document {document_id} in the library") from None

    def doc_sizes(self) -> list[int]:
        """Systems per document in ``documents`` order (what the follower HMM needs)."""
        s = self._snapshot
        return [len(s.systems[d.id]) for d in s.documents]

    def flat_system_index(self, hits: np.ndarray) -> np.ndarray:
        """Map hit rows (document, page, system, x) to flat system indices (``-1`` for no hit)."""
        offsets = self._snapshot.system_offset
        doc = hits[..., 0]
        out = np.full(doc.shape, -1, dtype=np.int64)
        for d, off in offsets.items():
            mask = doc == d
            out[mask] = off + hits[..., 2][mask]
        return out

    def _search(self, index: vectors.VectorIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, pos = index.search(queries, k)
        hits = np.full(pos.shape + (4,), -1, dtype=np.int64)
        ok = pos >= 0
        hits[ok] = index.ids[pos[ok]][:, :4]
        return scores, hits

    def search_snippets(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Nearest sheet snippets: cosine scores ``N x k`` and hits ``N x k x 4`` (see HIT_COLUMNS)."""
        self.refresh()
        return self._search(self._snapshot.snippets, queries, k)

    def snippet_table(self) -> tuple[np.ndarray, np.ndarray]:
        """All snippet embeddings of the current snapshot and their hit rows (``N x 4``, HIT_COLUMNS)."""
        snippets = self._snapshot.snippets
        return snippets.vectors(), snippets.ids[:, :4].copy()

    def search_passages(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Nearest systems by passage embedding: scores ``N x k``, hits ``N x k x 4`` (x = 0)."""
        self.refresh()
        return self._search(self._snapshot.passages, queries, k)

    # -- information -------------------------------------------------------------------------------

    def stats(self) -> dict:
        """Counts, index kinds and sizes of the live catalog and the published snapshot."""
        cat = self.catalog
        with self._lock, cat.transaction(immediate=False):
            live = cat.documents()
            n_pages = sum(d.n_pages for d in live if d.status == "indexed")
            n_systems = sum(d.n_systems for d in live if d.status == "indexed")
            info = {k: json.loads(cat.meta(f"{k}_index", "{}") or "{}") for k in ("snippets", "passages")}
        disk = sum(p.stat().st_size for p in self.directory.iterdir() if p.is_file())
        s = self._snapshot
        return {
            "library": str(self.directory),
            "generation": s.generation,
            "model_version": s.model_version,
            "documents": len(live),
            "indexed": sum(d.status == "indexed" for d in live),
            "errors": sum(d.status == "error" for d in live),
            "searchable_documents": len(s.documents),
            "pages": n_pages,
            "systems": n_systems,
            "snippet_vectors": s.snippets.size,
            "passage_vectors": s.passages.size,
            "snippet_index": info["snippets"],
            "passage_index": info["passages"],
            "disk_bytes": disk,
        }
