"""The GUI's access to the library: listing, indexing, removing, opening scores.

Qt-free functions meant to run inside :mod:`companion.gui.workers` tasks
(indexing, removal) or quickly on the GUI thread (listing a catalog is a
single SQLite query). The sheet front end and the encoder are injected so
the app can start, list and show scores even when they are not installed,
and so tests can use small doubles.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from companion.config import Config
from companion.errors import CompanionError

log = logging.getLogger(__name__)

FrontendFactory = Callable[[], Any]
EmbedderFactory = Callable[[], Any]


class IndexingUnavailable(CompanionError):
    """The sheet front end or the encoder is not installed."""


@dataclass
class LibraryBackend:
    """One library directory plus what indexing needs."""

    directory: Path
    frontend_factory: FrontendFactory | None = None
    embedder_factory: EmbedderFactory | None = None
    unavailable_reason: str = ""

    @classmethod
    def default(cls, cfg: Config, directory: Path | None = None) -> "LibraryBackend":
        """The real front end and shipped encoder, when installed (imported lazily)."""
        reason = ""
        frontend_factory: FrontendFactory | None = None
        embedder_factory: EmbedderFactory | None = None
        try:
            from companion.library.frontend import SheetsFrontEnd  # type: ignore[import-not-found]

            frontend_factory = lambda: SheetsFrontEnd(cfg.sheet)  # noqa: E731
        except Exception as exc:  # ImportError, or a broken install
            reason = f"the sheet front end is not available ({exc})"
        try:
            import importlib.util

            if importlib.util.find_spec("companion.models.embedder") is None:
                raise ImportError("companion.models.embedder is missing")

            def embedder_factory() -> Any:
                from companion.models.embedder import Embedder

                return Embedder(cfg.models_dir)
        except Exception as exc:
            reason = reason or f"the encoder is not available ({exc})"
        return cls(directory or cfg.paths.library_dir, frontend_factory, embedder_factory, reason)

    @property
    def can_index(self) -> bool:
        return self.frontend_factory is not None and self.embedder_factory is not None

    @property
    def exists(self) -> bool:
        from companion.library.catalog import Catalog

        return (self.directory / Catalog.FILENAME).exists()

    # -- reading ---------------------------------------------------------------------------------
    def _catalog(self):
        from companion.library.catalog import Catalog

        return Catalog(self.directory, readonly=True)

    def documents(self) -> list[Any]:
        """Every current document (indexed, pending or failed), as catalog rows."""
        if not self.exists:
            return []
        cat = self._catalog()
        try:
            return list(cat.documents())
        finally:
            cat.close()

    def roots(self) -> list[str]:
        if not self.exists:
            return []
        cat = self._catalog()
        try:
            return list(json.loads(cat.meta("roots", "[]")))
        finally:
            cat.close()

    def systems(self, document_id: int) -> list[Any]:
        cat = self._catalog()
        try:
            return [s for _, s in cat.systems_of(document_id)]
        finally:
            cat.close()

    # -- writing (run these in workers) ---------------------------------------------------------
    def index(self, ctx: Any, folders: list[Path], retry_errors: bool = False) -> Any:
        """Index ``folders`` (none: the known ones); progress events go to ``ctx.progress``.

        Cancelling stops after the file in progress: the catalog keeps every
        finished file and the next run resumes (the indexer is crash-safe).
        """
        if not self.can_index:
            raise IndexingUnavailable(f"indexing is not possible: {self.unavailable_reason}")
        from companion.library.indexer import IndexOptions, Indexer

        def progress(ev: Any) -> None:
            ctx.progress(ev.fraction, _describe(ev), ev)
            if ev.kind in ("plan", "file"):
                # only between files: raising inside a page callback would record the file as failed
                ctx.check()

        options = IndexOptions(retry_errors=retry_errors, publish_every_s=10.0)
        frontend = self.frontend_factory()  # type: ignore[misc]
        with Indexer(self.directory, frontend, self.embedder_factory, options, progress) as indexer:  # type: ignore[arg-type]
            return indexer.run([Path(f) for f in folders])

    def remove(self, ctx: Any, paths: list[str]) -> int:
        from companion.library.indexer import Indexer

        factory = self.embedder_factory or _no_embedder
        with Indexer(self.directory, None, factory) as indexer:
            return indexer.remove(paths)


def _no_embedder() -> Any:
    raise IndexingUnavailable("the encoder is not installed")


def _describe(ev: Any) -> str:
    name = Path(ev.path).name if ev.path else ""
    if ev.kind == "plan":
        return f"{ev.files_total} files to index"
    if ev.kind == "page":
        return f"{name}: page {ev.file_pages_done} of {ev.file_pages_total}"
    if ev.kind == "file":
        what = "failed" if ev.status == "error" else ev.status
        return f"{name} {what} ({ev.files_done} of {ev.files_total})"
    if ev.kind == "publish":
        return "new documents are searchable"
    if ev.kind == "done":
        return "indexing finished"
    return ev.kind
