"""The GUI's access to the library: listing, indexing, removing, opening scores.

Qt-free functions meant to run inside :mod:`companion.gui.workers` tasks
(indexing, removal) or quickly on the GUI thread (listing a catalog is a
single SQLite query). The sheet front end and the encoder are injected so
the app can start, list and show scores even when they are not installed,
and so tests can use small doubles.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import multiprocessing
import queue
import threading
import time
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
        """The real front end and shipped encoder, when installed (imported lazily, in the child)."""
        reason = ""
        frontend_factory: FrontendFactory | None = None
        embedder_factory: EmbedderFactory | None = None
        if _has_module("companion.library.frontend"):
            frontend_factory = functools.partial(sheets_frontend, cfg.sheet)
        else:
            reason = "the sheet front end (companion.library.frontend) is not installed yet"
        if _has_module("companion.models.embedder"):
            embedder_factory = functools.partial(shipped_embedder, cfg.models_dir)
        else:
            reason = reason or "the encoder (companion.models.embedder) is not installed yet"
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
        """Index ``folders`` (none: the known ones) in the indexing process; progress goes to ``ctx.progress``.

        Why another process: rendering and analysing pages hold Python's GIL
        for long stretches (a scanned page: ~0.5 s), which would freeze the
        GUI thread if indexing ran in one of its threads. Cancelling stops
        after the file in progress (or ends the process if it does not stop
        within ``CANCEL_GRACE_S``): the catalog keeps every finished file and
        the next run resumes (the indexer is crash-safe).
        """
        if not self.can_index:
            raise IndexingUnavailable(f"indexing is not possible: {self.unavailable_reason}")
        return INDEX_WORKER.run(ctx, self.directory, self.frontend_factory, self.embedder_factory,
                                [str(f) for f in folders], retry_errors)

    def remove(self, ctx: Any, paths: list[str]) -> int:
        """Forget the documents under ``paths`` and republish (in the indexing process: rebuilding a
        large index takes long and holds the GIL)."""
        return INDEX_WORKER.run(ctx, self.directory, self.embedder_factory or _no_embedder, list(paths),
                                job=remove_job)


CANCEL_GRACE_S = 15.0
"""After Cancel, the child may finish its current file this long before it is ended."""


class _ChildCancelled(Exception):
    pass


def index_job(directory: Path, frontend_factory: FrontendFactory, embedder_factory: EmbedderFactory,
              folders: list[str], retry_errors: bool, send: Callable[[tuple], None], cancel: Any) -> None:
    """One indexing run, reported through ``send`` (Qt-free: runs in the indexing process)."""
    from companion.library.indexer import IndexOptions, Indexer

    def progress(ev: Any) -> None:
        send(("progress", ev))
        if cancel.is_set() and ev.kind in ("plan", "file"):
            # only between files: raising inside a page callback would record the file as failed
            raise _ChildCancelled()

    try:
        options = IndexOptions(retry_errors=retry_errors, publish_every_s=10.0)
        with Indexer(Path(directory), frontend_factory(), embedder_factory, options, progress) as indexer:
            report = indexer.run([Path(f) for f in folders])
        send(("done", report))
    except _ChildCancelled:
        send(("cancelled",))
    except CompanionError as exc:
        send(("error", str(exc), True))
    except Exception as exc:  # report it; the process lives on for the next run
        log.exception("indexing failed")
        send(("error", f"{type(exc).__name__}: {exc}", False))


def remove_job(directory: Path, embedder_factory: EmbedderFactory, paths: list[str],
               send: Callable[[tuple], None], cancel: Any) -> None:
    """Remove documents and republish (runs in the indexing process)."""
    from companion.library.indexer import Indexer

    try:
        with Indexer(Path(directory), None, embedder_factory) as indexer:
            send(("done", indexer.remove(paths)))
    except CompanionError as exc:
        send(("error", str(exc), True))
    except Exception as exc:
        log.exception("removing documents failed")
        send(("error", f"{type(exc).__name__}: {exc}", False))


def _worker_main(jobs: Any, messages: Any, cancel: Any) -> None:
    """The indexing process: run jobs until told to stop (None)."""
    while True:
        job = jobs.get()
        if job is None:
            return
        job_id, fn, args = job
        fn(*args, send=lambda msg, job_id=job_id: messages.put((job_id, msg)), cancel=cancel)


class IndexWorker:
    """One long-lived indexing process shared by the app (started on first use).

    Starting a process costs seconds (numpy, faiss, the encoder); keeping one
    makes every later run start at once. Runs are serialised; a process that
    died or had to be ended is replaced on the next run.
    """

    def __init__(self) -> None:
        self._proc: Any = None
        self._jobs: Any = None
        self._messages: Any = None
        self._cancel: Any = None
        self._lock = threading.Lock()
        self._next_id = 0

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        mp = multiprocessing.get_context("spawn")
        self._jobs, self._messages, self._cancel = mp.Queue(), mp.Queue(), mp.Event()
        self._proc = mp.Process(target=_worker_main, args=(self._jobs, self._messages, self._cancel),
                                name="companion-index", daemon=True)
        self._proc.start()

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(2.0)
        self._proc = None

    def run(self, ctx: Any, *args: Any, job: Callable[..., None] | None = None) -> Any:
        """Run ``job(*args, send=..., cancel=...)`` (default: :func:`index_job`) in the process."""
        from companion.gui.workers import Cancelled

        with self._lock:
            self._ensure()
            self._cancel.clear()
            self._next_id += 1
            job_id = self._next_id
            self._jobs.put((job_id, job or index_job, args))
            cancel_at: float | None = None
            while True:
                if ctx.cancelled and cancel_at is None:
                    self._cancel.set()
                    cancel_at = time.monotonic()
                if cancel_at is not None and time.monotonic() - cancel_at > CANCEL_GRACE_S:
                    self._kill()  # crash-safe: finished files stay, the next run resumes
                    raise Cancelled()
                try:
                    got_id, msg = self._messages.get(timeout=0.1)
                except queue.Empty:
                    if not self._proc.is_alive():
                        code = self._proc.exitcode
                        self._proc = None
                        raise CompanionError(f"indexing stopped unexpectedly (exit code {code}); finished files "
                                             "are kept and the next run resumes") from None
                    continue
                if got_id != job_id:
                    continue  # left over from a run that was abandoned
                kind = msg[0]
                if kind == "progress":
                    ev = msg[1]
                    ctx.progress(ev.fraction, _describe(ev), ev)
                elif kind == "done":
                    return msg[1]
                elif kind == "cancelled":
                    raise Cancelled()
                elif kind == "error":
                    if msg[2]:
                        raise CompanionError(msg[1])
                    raise RuntimeError(msg[1])

    def stop(self) -> None:
        """End the process (at exit)."""
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                self._jobs.put(None)
                self._proc.join(3.0)
            self._kill()


INDEX_WORKER = IndexWorker()


def sheets_frontend(sheet_cfg: Any) -> Any:
    from companion.library.frontend import SheetsFrontEnd  # type: ignore[import-not-found]

    return SheetsFrontEnd(sheet_cfg)


def shipped_embedder(models_dir: Path) -> Any:
    from companion.models.embedder import Embedder

    return Embedder(models_dir)


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


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
