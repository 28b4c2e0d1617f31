"""Incremental, resumable, crash-safe indexing of folders of PDFs.

How a run goes: take the writer lock; scan the folders and compare every PDF
with the catalog (size and mtime, then sha256) to find new, changed, unchanged
and deleted files, and documents that still need embeddings from the current
model; process the work (in this process or in ``workers`` processes), writing
each finished document in one SQLite transaction; every ``publish_every_s``
seconds and at the end, build the faiss indices from the catalog and publish
them as a new generation.

Why this is crash-safe: the catalog only ever holds whole documents (one
transaction each), index files are written under a new generation's name and
become current only when the generation number is committed, and whatever a
killed run left half done (uncommitted transactions, temp files, files of an
unpublished generation) is discarded or redone by the next run.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from companion.library import vectors
from companion.library.catalog import Catalog
from companion.library.errors import LibraryError
from companion.library.lock import WriterLock
from companion.library.pipeline import Job, SheetFrontEnd, process
from companion.library.progress import ProgressCallback, ProgressEvent
from companion.library.publish import publish
from companion.library.protocols import DocumentResult, SheetEmbedder
from companion.library.scan import find_pdfs, is_under, sha256_file

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], SheetEmbedder]
"""Builds the embedder (in each worker process); must be picklable for ``workers > 1``."""


@dataclass(frozen=True)
class IndexOptions:
    workers: int = 1
    """Worker processes for render/detect/embed; 1 = in this process."""
    rehash: bool = False
    """Hash every file, even when size and modification time are unchanged."""
    retry_errors: bool = False
    """Try files that failed before again although they did not change."""
    publish_every_s: float = 30.0
    """Make finished documents searchable at least this often during a run."""
    exact_max: int = vectors.EXACT_MAX_VECTORS
    """Above this many vectors, indices are approximate (IVF, recall >= 0.95)."""


@dataclass
class IndexReport:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    reembedded: int = 0
    copied: int = 0
    errors: int = 0
    pages: int = 0
    seconds: float = 0.0
    generation: int = 0
    timings: dict[str, float] = field(default_factory=lambda: {"render": 0.0, "detect": 0.0, "embed": 0.0, "write": 0.0})
    error_files: list[tuple[str, str]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    """CPU time spent on render/detect/embed (all processes and threads)."""

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0


# -- worker process state ------------------------------------------------------------------------

_worker: dict = {}


def _exit_with_parent(parent: int) -> None:
    """A killed indexer must not leave its workers behind (they would hold its pipes open)."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def _init_worker(parent: int, frontend: SheetFrontEnd, embedder_factory: EmbedderFactory, threads: int) -> None:
    # ``parent`` comes from the indexer: a worker that finished starting after its
    # parent died sees a different ppid at once and exits.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _worker["frontend"] = frontend
    _worker["embedder"] = embedder_factory()
    if "torch" in sys.modules:  # share the cores between workers instead of oversubscribing
        sys.modules["torch"].set_num_threads(max(1, threads))


def _run_job(job: Job) -> DocumentResult:
    return process(job, _worker["frontend"], _worker["embedder"])


# -- the indexer ---------------------------------------------------------------------------------


class Indexer:
    """Writes one library directory; holds its writer lock while open."""

    def __init__(self, directory: Path, frontend: SheetFrontEnd | None, embedder_factory: EmbedderFactory,
                 options: IndexOptions | None = None, progress: ProgressCallback | None = None) -> None:
        self.directory = Path(directory)
        self.frontend = frontend
        self.embedder_factory = embedder_factory
        self.options = options or IndexOptions()
        self.progress = progress or (lambda ev: None)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.lock = WriterLock(self.directory)
        self.lock.acquire()
        try:
            self.catalog = Catalog(self.directory)
            current = self.catalog.generation
            vectors.clean_generations(self.directory, keep={current, current - 1})
        except BaseException:
            self.lock.release()
            raise
        self._embedder: SheetEmbedder | None = None
        self._model_version: str | None = None

    def close(self) -> None:
        self.catalog.close()
        self.lock.release()

    def __enter__(self) -> "Indexer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- embedder (loaded lazily: remove/export never need it) ---------------------------

    @property
    def embedder(self) -> SheetEmbedder:
        if self._embedder is None:
            self._embedder = self.embedder_factory()
            self._model_version = self._embedder.model_version
        return self._embedder

    @property
    def model_version(self) -> str:
        if self._model_version is None:
            _ = self.embedder
        assert self._model_version is not None
        return self._model_version

    # -- roots -------------------------------------------------------------------------------

    def roots(self) -> list[str]:
        return list(json.loads(self.catalog.meta("roots", "[]")))

    def _remember_roots(self, roots: Sequence[str]) -> None:
        merged = sorted(set(self.roots()) | set(roots))
        with self.catalog.transaction():
            self.catalog._set_meta("roots", json.dumps(merged))

    # -- planning ----------------------------------------------------------------------------

    def plan(self, folders: Sequence[Path], report: IndexReport) -> list[Job]:
        """Compare the folders with the catalog; retire deleted files; return the work to do."""
        opts = self.options
        given = [Path(f).expanduser() for f in folders]
        for f in given:
            if not f.exists():
                raise LibraryError(f"folder not found: {f}")
        if given:
            roots = [str(f.resolve()) for f in given]
            self._remember_roots(roots)
        else:
            roots = []
            for r in self.roots():
                if Path(r).exists():
                    roots.append(r)
                else:
                    log.warning("library folder %s is missing (unmounted?); its documents are kept", r)
            if not self.roots():
                raise LibraryError("no folders given and the library remembers none: companion index FOLDER")
        live = self.catalog.live_documents()
        model = self.model_version
        seen: set[str] = set()
        jobs: list[Job] = []
        for root in roots:
            for pdf in find_pdfs(Path(root)):
                path = str(pdf.resolve()) if not pdf.is_symlink() else str(pdf.absolute())
                if path in seen:
                    continue
                seen.add(path)
                try:
                    st = pdf.stat()
                except OSError as exc:
                    log.warning("cannot read %s: %s", path, exc)
                    continue
                doc = live.get(path)
                if doc is not None and not opts.rehash and doc.size == st.st_size and doc.mtime == st.st_mtime:
                    if doc.status == "error" and opts.retry_errors:
                        jobs.append(Job(path, doc.sha256, st.st_size, st.st_mtime, replaces=doc.id))
                    else:
                        report.unchanged += 1
                    continue
                try:
                    sha = sha256_file(pdf)
                except OSError as exc:
                    log.warning("cannot read %s: %s", path, exc)
                    continue
                if doc is not None and doc.sha256 == sha:
                    if doc.status == "error" and opts.retry_errors:
                        jobs.append(Job(path, sha, st.st_size, st.st_mtime, replaces=doc.id))
                        continue
                    with self.catalog.transaction() as c:  # touched, not changed
                        c.execute("UPDATE documents SET mtime = ?, size = ? WHERE id = ?", (st.st_mtime, st.st_size, doc.id))
                    report.unchanged += 1
                    continue
                if doc is None:
                    report.added += 1
                else:
                    report.changed += 1
                jobs.append(Job(path, sha, st.st_size, st.st_mtime, replaces=None if doc is None else doc.id))
        gone = [d.id for p, d in live.items() if p not in seen and any(is_under(p, r) for r in roots)]
        if gone:
            self.catalog.retire(gone)
            report.removed += len(gone)
        replaced = {j.replaces for j in jobs if j.replaces is not None}
        for doc in self.catalog.documents_needing_embeddings(model):
            if doc.id in replaced:
                continue
            systems = [s for _, s in self.catalog.systems_of(doc.id)]
            jobs.append(Job(doc.path, doc.sha256, doc.size, doc.mtime, reembed_document=doc.id, known_systems=systems))
        return jobs

    # -- running ---------------------------------------------------------------------------------

    def run(self, folders: Sequence[Path]) -> IndexReport:
        report = IndexReport()
        start = time.perf_counter()
        jobs = self.plan(folders, report)
        bytes_total = sum(j.size for j in jobs)
        state = {"files_done": 0, "bytes_done": 0, "pages_done": 0, "t_work": time.perf_counter()}

        def event(kind: str, **kw: object) -> ProgressEvent:
            elapsed = time.perf_counter() - start
            work = time.perf_counter() - state["t_work"]
            eta = None
            if state["bytes_done"] > 0:
                eta = work / state["bytes_done"] * max(0, bytes_total - state["bytes_done"])
            return ProgressEvent(kind=kind, files_done=state["files_done"], files_total=len(jobs),
                                 bytes_done=state["bytes_done"], bytes_total=bytes_total,
                                 pages_done=state["pages_done"], elapsed_s=elapsed, eta_s=eta,
                                 generation=self.catalog.generation, **kw)  # type: ignore[arg-type]

        self.progress(event("plan"))
        last_publish = time.perf_counter()
        publish_cost = 0.0

        def finished(job: Job, result: DocumentResult, stored: bool = False) -> None:
            nonlocal last_publish, publish_cost
            t = time.perf_counter()
            if not stored:
                self._store(job, result, report)
            report.timings["write"] += time.perf_counter() - t
            for k in ("render", "detect", "embed"):
                report.timings[k] += result.timings.get(k, 0.0)
            report.cpu_seconds += result.cpu_seconds
            state["files_done"] += 1
            state["bytes_done"] += job.size
            if job.reembed_document is None:
                state["pages_done"] += result.n_pages
                report.pages += result.n_pages if result.status == "indexed" else 0
            shown = "re-embedded" if job.reembed_document is not None and result.status == "indexed" else result.status
            self.progress(event("file", path=job.path, status=shown, error=result.error))
            interval = max(self.options.publish_every_s, 4 * publish_cost)
            if time.perf_counter() - last_publish >= interval:
                t = time.perf_counter()
                if self.publish():
                    self.progress(event("publish"))
                publish_cost = time.perf_counter() - t
                report.timings["write"] += publish_cost
                last_publish = time.perf_counter()

        try:
            todo = [j for j in jobs if not self._try_copy(j, report, finished)]
            if self.options.workers <= 1 or len(todo) <= 1:
                for job in todo:
                    def page_cb(done: int, total: int, job: Job = job) -> None:
                        self.progress(event("page", path=job.path, file_pages_done=done, file_pages_total=total))

                    if self.frontend is None:
                        raise LibraryError("indexing needs a sheet front end")
                    finished(job, process(job, self.frontend, self.embedder, page_cb))
            else:
                self._run_pool(todo, finished)
        except (Exception, KeyboardInterrupt):
            # cancelled (GUI, Ctrl-C) or failed: what was finished becomes searchable now
            try:
                self.publish()
            except Exception:  # pragma: no cover - the original error matters more
                log.exception("publishing after an interrupted run failed")
            raise
        t = time.perf_counter()
        if self.publish():
            self.progress(event("publish"))
        report.timings["write"] += time.perf_counter() - t
        report.generation = self.catalog.generation
        report.seconds = time.perf_counter() - start
        self.progress(event("done"))
        return report

    def _try_copy(self, job: Job, report: IndexReport, finished: Callable[..., None]) -> bool:
        """Moved or duplicated file: reuse the stored systems and embeddings."""
        if job.reembed_document is not None:
            return False
        source = self.catalog.find_by_sha(job.sha256, self.model_version)
        if source is None:
            return False
        result = DocumentResult(path=job.path, sha256=job.sha256, size=job.size, mtime=job.mtime)
        t = time.perf_counter()
        self.catalog.copy_document(source, result, self.model_version, replaces=job.replaces)
        result.timings = {"write": time.perf_counter() - t}
        report.copied += 1
        finished(job, result, stored=True)
        return True

    def _run_pool(self, jobs: list[Job], finished: Callable[[Job, DocumentResult], None]) -> None:
        """Process jobs in worker processes; a file that crashes a worker is isolated and recorded."""
        n = self.options.workers
        threads = max(1, (os.cpu_count() or 1) // n)
        ctx = multiprocessing.get_context("spawn")
        queue: deque[tuple[Job, int]] = deque((j, 0) for j in jobs)

        def new_pool() -> cf.ProcessPoolExecutor:
            return cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker,
                                          initargs=(os.getpid(), self.frontend, self.embedder_factory, threads))

        pool = new_pool()
        in_flight: dict[cf.Future, tuple[Job, int]] = {}
        try:
            while queue or in_flight:
                while queue and len(in_flight) < 2 * n:
                    job, crashes = queue[0]
                    if crashes and in_flight:
                        break  # a suspect runs alone
                    queue.popleft()
                    in_flight[pool.submit(_run_job, job)] = (job, crashes)
                    if crashes:
                        break
                done, _ = cf.wait(list(in_flight), timeout=1.0, return_when=cf.FIRST_COMPLETED)
                broken = False
                for fut in done:
                    job, crashes = in_flight.pop(fut)
                    try:
                        result = fut.result()
                    except cf.process.BrokenProcessPool:
                        broken = True
                        if crashes >= 1:
                            result = DocumentResult(job.path, job.sha256, job.size, job.mtime, status="error",
                                                    error="this file crashed the PDF renderer")
                            finished(job, result)
                        else:
                            queue.appendleft((job, crashes + 1))
                        continue
                    finished(job, result)
                if broken:
                    for fut, (job, crashes) in in_flight.items():
                        queue.appendleft((job, crashes + 1))
                    in_flight.clear()
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = new_pool()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _store(self, job: Job, result: DocumentResult, report: IndexReport) -> None:
        if result.status == "error":
            report.errors += 1
            report.error_files.append((job.path, result.error))
        if job.reembed_document is not None:
            if result.status == "indexed" and len(result.embeddings) == len(job.known_systems):
                self.catalog.write_embeddings(job.reembed_document, result.model_version, result.embeddings,
                                              seconds=sum(result.timings.values()))
                report.reembedded += 1
                return
            # the file vanished or broke since it was indexed: record that instead, with an
            # impossible size and no hash so that the next run that sees the file indexes it anew
            if result.status == "indexed":
                result.status, result.error = "error", "re-embedding found a different set of systems"
                report.errors += 1
            result.pages, result.systems, result.embeddings = [], [], []
            result.size, result.sha256 = -1, ""
            self.catalog.write_document(result, replaces=job.reembed_document)
            return
        self.catalog.write_document(result, replaces=job.replaces)

    # -- publishing ------------------------------------------------------------------------------

    def publish(self, force: bool = False) -> bool:
        """Build the indices from the catalog and make them the current generation."""
        return publish(self.catalog, self.directory, self.model_version, force=force,
                       exact_max=self.options.exact_max)

    def remove(self, paths: Sequence[str]) -> int:
        """Forget documents at these paths (files, or everything under folders); publish."""
        targets = [str(Path(p).expanduser().absolute()) for p in paths]
        live = self.catalog.live_documents()
        ids = [d.id for p, d in live.items() if any(is_under(p, t) for t in targets)]
        if ids:
            self.catalog.retire(ids)
        roots = [r for r in self.roots() if not any(is_under(r, t) for t in targets)]
        with self.catalog.transaction():
            self.catalog._set_meta("roots", json.dumps(roots))
        if ids:
            self._publish_without_embedder()
        return len(ids)

    def _publish_without_embedder(self) -> None:
        """Removal keeps the published model: rebuild without loading any encoder."""
        if self._model_version is None:
            self._model_version = self.catalog.model_version
        if self._model_version:  # never published yet: the next index run publishes
            self.publish()
