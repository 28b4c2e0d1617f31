"""The SQLite catalog: documents, pages, systems, embeddings and the published generation.

Why SQLite in WAL mode: every document is written in one transaction, so a
process killed at any instant (SIGKILL included) leaves either all of a
document or none of it, and readers (the GUI searching while an indexing run
goes on) keep reading a consistent snapshot while the writer commits.

Visibility: a document becomes *visible* (searchable) only when a generation
is published, i.e. when faiss files built from exactly the visible documents
have been written and the generation number is committed. Replaced or deleted
documents are *retired* first and deleted at the next publish, so readers
never see a search hit whose document is gone, nor two versions of one file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from companion.library.errors import LibraryError
from companion.library.protocols import DocumentResult, SystemEmbedding, SystemRecord

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    composer TEXT NOT NULL DEFAULT '',
    n_pages INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('indexed', 'error')),
    error TEXT NOT NULL DEFAULT '',
    visible INTEGER NOT NULL DEFAULT 0,
    retired INTEGER NOT NULL DEFAULT 0,
    indexed_at REAL NOT NULL,
    seconds REAL NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS documents_live_path ON documents(path) WHERE retired = 0;
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
CREATE TABLE IF NOT EXISTS pages (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    n_systems INTEGER NOT NULL,
    PRIMARY KEY (document_id, page)
);
CREATE TABLE IF NOT EXISTS systems (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    page INTEGER NOT NULL,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    n_staves INTEGER NOT NULL,
    staff_lines TEXT NOT NULL DEFAULT '[]',
    angle REAL NOT NULL DEFAULT 0,
    staff_box TEXT NOT NULL DEFAULT '[0, 0, 0, 0]',
    UNIQUE (document_id, seq)
);
CREATE TABLE IF NOT EXISTS embeddings (
    system_id INTEGER NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    model_version TEXT NOT NULL,
    snippet_x BLOB NOT NULL,
    snippets BLOB NOT NULL,
    snippet_dim INTEGER NOT NULL,
    passage BLOB NOT NULL,
    PRIMARY KEY (system_id, model_version)
);
"""


@dataclass(frozen=True)
class DocumentRow:
    id: int
    path: str
    sha256: str
    size: int
    mtime: float
    title: str
    composer: str
    n_pages: int
    status: str
    error: str
    visible: bool
    retired: bool
    indexed_at: float
    seconds: float
    n_systems: int = 0

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "mtime": self.mtime,
            "title": self.title,
            "composer": self.composer,
            "pages": self.n_pages,
            "systems": self.n_systems,
            "status": self.status,
            "error": self.error,
        }


_DOC_COLUMNS = (
    "d.id, d.path, d.sha256, d.size, d.mtime, d.title, d.composer, d.n_pages, d.status, d.error, "
    "d.visible, d.retired, d.indexed_at, d.seconds, "
    "(SELECT COUNT(*) FROM systems s WHERE s.document_id = d.id)"
)


def _doc(row: Sequence) -> DocumentRow:
    return DocumentRow(
        id=row[0], path=row[1], sha256=row[2], size=row[3], mtime=row[4], title=row[5],
        composer=row[6], n_pages=row[7], status=row[8], error=row[9], visible=bool(row[10]),
        retired=bool(row[11]), indexed_at=row[12], seconds=row[13], n_systems=row[14],
    )


def _system(row: Sequence) -> SystemRecord:
    lines = tuple(tuple(float(v) for v in staff) for staff in json.loads(row[5]))
    staff_box = tuple(float(v) for v in json.loads(row[9]))
    return SystemRecord(page=row[0], box=(row[1], row[2], row[3], row[4]), n_staves=row[6], staff_lines=lines,
                        angle=float(row[8]), staff_box=staff_box)  # type: ignore[arg-type]


class Catalog:
    """One connection to ``<library>/catalog.sqlite``."""

    FILENAME = "catalog.sqlite"

    def __init__(self, directory: Path, readonly: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise LibraryError(f"no library at {self.directory} (run 'companion index FOLDER' first)")
        try:
            if readonly:
                self.conn = sqlite3.connect(
                    f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30, isolation_level=None,
                    check_same_thread=False,
                )
            else:
                self.directory.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(
                    self.path, timeout=30, isolation_level=None, check_same_thread=False
                )
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                self.conn.execute("PRAGMA journal_mode = WAL")
                # FULL: a committed document survives a power cut, not only a killed process.
                self.conn.execute("PRAGMA synchronous = FULL")
                with self.transaction():
                    for stmt in _SCHEMA.split(";"):
                        if stmt.strip():
                            self.conn.execute(stmt)
                    version = self._meta("schema_version")
                    if version is None:
                        self._set_meta("schema_version", str(SCHEMA_VERSION))
                        self._set_meta("generation", "0")
                        self._set_meta("model_version", "")
            version = self._meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"the library catalog {self.path} cannot be read: {exc}") from exc
        if version != str(SCHEMA_VERSION):
            raise LibraryError(
                f"the library at {self.directory} has format {version}, this version of "
                f"companion reads format {SCHEMA_VERSION}; re-index into a new folder"
            )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------

    @contextmanager
    def transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` for writers (take the write lock up front), plain for readers."""
        self.conn.execute("BEGIN IMMEDIATE" if immediate and not self.readonly else "BEGIN")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self, key: str, default: str = "") -> str:
        value = self._meta(key)
        return default if value is None else value

    @property
    def generation(self) -> int:
        return int(self.meta("generation", "0"))

    @property
    def model_version(self) -> str:
        """Model of the published generation ('' before the first publish)."""
        return self.meta("model_version", "")

    # -- documents ------------------------------------------------------------

    def documents(self, where: str = "d.retired = 0", params: Sequence = ()) -> list[DocumentRow]:
        rows = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents d WHERE {where} ORDER BY d.path, d.id", params
        ).fetchall()
        return [_doc(r) for r in rows]

    def live_documents(self) -> dict[str, DocumentRow]:
        """Current (not retired) documents by path."""
        return {d.path: d for d in self.documents()}

    def find_by_sha(self, sha256: str, model_version: str) -> DocumentRow | None:
        """An indexed document with this content and embeddings for ``model_version``."""
        row = self.conn.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents d WHERE d.sha256 = ? AND d.status = 'indexed' "
            "AND NOT EXISTS (SELECT 1 FROM systems s WHERE s.document_id = d.id AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.system_id = s.id AND e.model_version = ?)) "
            "ORDER BY d.retired, d.id LIMIT 1",
            (sha256, model_version),
        ).fetchone()
        return None if row is None else _doc(row)

    def systems_of(self, document_id: int) -> list[tuple[int, SystemRecord]]:
        rows = self.conn.execute(
            "SELECT page, x0, y0, x1, y1, staff_lines, n_staves, id, angle, staff_box FROM systems "
            "WHERE document_id = ? ORDER BY seq",
            (document_id,),
        ).fetchall()
        return [(r[7], _system(r)) for r in rows]

    def pages_of(self, document_id: int) -> list[tuple[int, int, int, int]]:
        """(page, width, height, n_systems) rows."""
        return self.conn.execute(
            "SELECT page, width, height, n_systems FROM pages WHERE document_id = ? ORDER BY page",
            (document_id,),
        ).fetchall()

    def embeddings_of(self, document_id: int, model_version: str) -> list[SystemEmbedding] | None:
        rows = self.conn.execute(
            "SELECT e.snippet_x, e.snippets, e.snippet_dim, e.passage FROM systems s "
            "LEFT JOIN embeddings e ON e.system_id = s.id AND e.model_version = ? "
            "WHERE s.document_id = ? ORDER BY s.seq",
            (model_version, document_id),
        ).fetchall()
        if any(r[0] is None for r in rows):
            return None
        return [_embedding(r) for r in rows]

    def documents_needing_embeddings(self, model_version: str) -> list[DocumentRow]:
        """Live indexed documents with at least one system lacking ``model_version`` embeddings."""
        return self.documents(
            "d.retired = 0 AND d.status = 'indexed' AND EXISTS (SELECT 1 FROM systems s "
            "WHERE s.document_id = d.id AND NOT EXISTS (SELECT 1 FROM embeddings e "
            "WHERE e.system_id = s.id AND e.model_version = ?))",
            (model_version,),
        )

    # -- writes (one transaction each) ---------------------------------------------

    def write_document(self, result: DocumentResult, replaces: int | None = None) -> int:
        """Insert one processed document (retiring the row it replaces) atomically."""
        with self.transaction() as c:
            if replaces is not None:
                c.execute("UPDATE documents SET retired = 1 WHERE id = ?", (replaces,))
            cur = c.execute(
                "INSERT INTO documents(path, sha256, size, mtime, title, composer, n_pages, status, "
                "error, indexed_at, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.path, result.sha256, result.size, result.mtime, result.title,
                    result.composer, result.n_pages, result.status, result.error, time.time(),
                    float(sum(result.timings.values())),
                ),
            )
            doc_id = int(cur.lastrowid)
            c.executemany(
                "INSERT INTO pages(document_id, page, width, height, n_systems) VALUES (?, ?, ?, ?, ?)",
                [(doc_id, p.number, p.width, p.height, p.n_systems) for p in result.pages],
            )
            for seq, system in enumerate(result.systems):
                cur = c.execute(
                    "INSERT INTO systems(document_id, seq, page, x0, y0, x1, y1, n_staves, staff_lines, "
                    "angle, staff_box) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc_id, seq, system.page, *map(float, system.box), system.n_staves,
                        json.dumps([list(map(float, s)) for s in system.staff_lines]),
                        float(system.angle), json.dumps([float(v) for v in system.staff_box]),
                    ),
                )
                if result.embeddings:
                    self._insert_embedding(int(cur.lastrowid), result.model_version, result.embeddings[seq])
        return doc_id

    def copy_document(self, source: DocumentRow, result: DocumentResult, model_version: str,
                      replaces: int | None = None) -> int:
        """Index a file whose content is already in the library (moved or duplicated)."""
        systems = [s for _, s in self.systems_of(source.id)]
        embeddings = self.embeddings_of(source.id, model_version)
        pages = self.pages_of(source.id)
        from companion.library.protocols import PageRecord

        result.title, result.composer, result.n_pages = source.title, source.composer, source.n_pages
        result.pages = [PageRecord(p[0], p[1], p[2], p[3]) for p in pages]
        result.systems = systems
        result.embeddings = embeddings or []
        result.model_version = model_version
        return self.write_document(result, replaces=replaces)

    def _insert_embedding(self, system_id: int, model_version: str, emb: SystemEmbedding) -> None:
        snippets = np.ascontiguousarray(emb.snippets, dtype=np.float32)
        dim = snippets.shape[1] if snippets.ndim == 2 else 0
        self.conn.execute(
            "INSERT OR REPLACE INTO embeddings(system_id, model_version, snippet_x, snippets, "
            "snippet_dim, passage) VALUES (?, ?, ?, ?, ?, ?)",
            (
                system_id, model_version,
                np.ascontiguousarray(emb.snippet_x, dtype=np.int32).tobytes(),
                snippets.tobytes(), dim,
                np.ascontiguousarray(emb.passage, dtype=np.float32).tobytes(),
            ),
        )

    def write_embeddings(self, document_id: int, model_version: str,
                         embeddings: Sequence[SystemEmbedding], seconds: float = 0.0) -> None:
        """Store a re-embedding of a document's (unchanged) systems under a new model."""
        ids = [sid for sid, _ in self.systems_of(document_id)]
        if len(ids) != len(embeddings):
            raise LibraryError("re-embedding produced a different number of systems")
        with self.transaction():
            for sid, emb in zip(ids, embeddings):
                self._insert_embedding(sid, model_version, emb)
            self.conn.execute("UPDATE documents SET seconds = seconds + ? WHERE id = ?", (seconds, document_id))

    def retire(self, document_ids: Sequence[int]) -> None:
        with self.transaction() as c:
            c.executemany("UPDATE documents SET retired = 1 WHERE id = ?", [(i,) for i in document_ids])

    # -- publishing -------------------------------------------------------------

    def publishable_embeddings(self, model_version: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Vectors and id rows of every live indexed document for one model.

        ``kind='snippets'``: rows ``(document, page, system seq, x, system id)``;
        ``kind='passages'``: rows ``(document, page, system seq, 0, system id)``.
        """
        rows = self.conn.execute(
            "SELECT s.document_id, s.page, s.seq, s.id, e.snippet_x, e.snippets, e.snippet_dim, e.passage "
            "FROM documents d JOIN systems s ON s.document_id = d.id "
            "JOIN embeddings e ON e.system_id = s.id AND e.model_version = ? "
            "WHERE d.retired = 0 AND d.status = 'indexed' ORDER BY d.id, s.seq",
            (model_version,),
        )
        vecs: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        for doc_id, page, seq, sid, bx, bs, dim, bp in rows:
            if kind == "snippets":
                xs = np.frombuffer(bx, dtype=np.int32)
                if len(xs) == 0:
                    continue
                vecs.append(np.frombuffer(bs, dtype=np.float32).reshape(len(xs), dim))
                block = np.empty((len(xs), 5), dtype=np.int64)
                block[:, 0], block[:, 1], block[:, 2], block[:, 3], block[:, 4] = doc_id, page, seq, xs, sid
                ids.append(block)
            else:
                p = np.frombuffer(bp, dtype=np.float32)
                if p.size == 0:
                    continue
                vecs.append(p[None, :])
                ids.append(np.array([[doc_id, page, seq, 0, sid]], dtype=np.int64))
        if not vecs:
            return np.zeros((0, 0), dtype=np.float32), np.zeros((0, 5), dtype=np.int64)
        return np.concatenate(vecs), np.concatenate(ids)

    def can_publish(self, model_version: str) -> bool:
        """False while visible documents still wait to be re-embedded for a new model."""
        if self.model_version == model_version:
            return True
        row = self.conn.execute(
            "SELECT 1 FROM documents d JOIN systems s ON s.document_id = d.id "
            "WHERE d.retired = 0 AND d.status = 'indexed' AND NOT EXISTS (SELECT 1 FROM embeddings e "
            "WHERE e.system_id = s.id AND e.model_version = ?) LIMIT 1",
            (model_version,),
        ).fetchone()
        return row is None

    def commit_generation(self, generation: int, model_version: str, extra: dict[str, str]) -> None:
        """Inside a transaction: make the built generation the visible state."""
        c = self.conn
        c.execute("DELETE FROM documents WHERE retired = 1")
        c.execute("UPDATE documents SET visible = (status = 'indexed')")
        c.execute("DELETE FROM embeddings WHERE model_version != ?", (model_version,))
        self._set_meta("generation", str(generation))
        self._set_meta("model_version", model_version)
        for k, v in extra.items():
            self._set_meta(k, v)

    def pending_changes(self) -> bool:
        """Anything indexed, retired or re-embedded since the last publish?"""
        row = self.conn.execute(
            "SELECT 1 FROM documents WHERE retired = 1 OR visible != (status = 'indexed') LIMIT 1"
        ).fetchone()
        return row is not None


def _embedding(row: Sequence) -> SystemEmbedding:
    xs = np.frombuffer(row[0], dtype=np.int32).copy()
    dim = int(row[2]) or 1
    snippets = np.frombuffer(row[1], dtype=np.float32).reshape(len(xs), dim).copy() if len(xs) else np.zeros((0, int(row[2])), np.float32)
    return SystemEmbedding(snippet_x=xs, snippets=snippets, passage=np.frombuffer(row[3], dtype=np.float32).copy())
