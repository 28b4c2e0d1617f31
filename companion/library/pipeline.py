"""Turn one PDF into pages, systems and embeddings (runs in a worker process).

Why stages are timed separately: indexing throughput is reported split into
render, detect, embed and write, so a slow stage is visible in the benchmark
and in ``companion index`` output.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from companion.errors import CompanionError
from companion.library.protocols import (
    DocumentResult,
    PageRecord,
    SheetEmbedder,
    SystemEmbedding,
    SystemRecord,
)

log = logging.getLogger(__name__)


class OpenedPdf(Protocol):
    n_pages: int
    metadata: dict[str, str]

    def render(self, page: int) -> np.ndarray:
        """Greyscale uint8 analysis image of one page (835 px wide)."""
        ...

    def close(self) -> None: ...


class SheetFrontEnd(Protocol):
    """What the indexer needs from the sheet front end (see frontend.py for the real one)."""

    def open(self, path: Path) -> OpenedPdf:
        """Raises a CompanionError subclass for encrypted, corrupt or empty files."""
        ...

    def detect(self, image: np.ndarray, page: int) -> list[SystemRecord]: ...

    def cut(self, image: np.ndarray, system: SystemRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(snippets N x 80 x 100 uint8, x positions int32, passage strip 80 x W uint8)."""
        ...


@dataclass
class Job:
    """One unit of work: index a file, or re-embed its known systems for a new model."""

    path: str
    sha256: str
    size: int
    mtime: float
    replaces: int | None = None
    """Live document id this job supersedes (changed file)."""
    reembed_document: int | None = None
    """Re-embed this document's stored systems instead of detecting them."""
    known_systems: list[SystemRecord] = field(default_factory=list)


def title_and_composer(path: Path, metadata: dict[str, Any]) -> tuple[str, str]:
    """PDF metadata when present, else the file name ('Composer - Title' or 'composer-name-title')."""
    title = str(metadata.get("title") or "").strip()
    composer = str(metadata.get("author") or metadata.get("composer") or "").strip()
    stem = path.stem
    if not title or not composer:
        parts = re.split(r"\s+[-\u2013]\s+|_-_", stem, maxsplit=1)
        if len(parts) == 2:
            guess_composer, guess_title = parts[0].strip(), parts[1].strip()
        else:
            guess_composer, guess_title = "", stem
        guess_title = re.sub(r"[_]+", " ", guess_title).strip()
        title = title or guess_title
        composer = composer or guess_composer.replace("_", " ")
    return title, composer


Progress = Callable[[int, int], None]
"""(pages done, pages in document) callback."""


def process(job: Job, frontend: SheetFrontEnd, embedder: SheetEmbedder,
            page_progress: Progress | None = None) -> DocumentResult:
    """Index (or re-embed) one document; a bad file gives ``status='error'``, never an exception."""
    result = DocumentResult(path=job.path, sha256=job.sha256, size=job.size, mtime=job.mtime,
                            model_version=embedder.model_version)
    timings = {"render": 0.0, "detect": 0.0, "embed": 0.0}
    result.timings = timings
    cpu0 = time.process_time()
    try:
        _process(job, frontend, embedder, result, timings, page_progress)
    except CompanionError as exc:
        result.status, result.error = "error", str(exc)
        result.pages, result.systems, result.embeddings = [], [], []
    except MemoryError:
        result.status, result.error = "error", "out of memory while analysing this file"
        result.pages, result.systems, result.embeddings = [], [], []
    except Exception as exc:  # one bad file never stops a batch
        log.exception("unexpected error while indexing %s", job.path)
        result.status, result.error = "error", f"unexpected error: {type(exc).__name__}: {exc}"
        result.pages, result.systems, result.embeddings = [], [], []
    result.cpu_seconds = time.process_time() - cpu0
    return result


def _process(job: Job, frontend: SheetFrontEnd, embedder: SheetEmbedder, result: DocumentResult,
             timings: dict[str, float], page_progress: Progress | None) -> None:
    if job.reembed_document is not None:
        try:
            st = os.stat(job.path)
        except OSError as exc:
            raise CompanionError(f"the file is gone since it was indexed ({exc.strerror})") from exc
        if (st.st_size, st.st_mtime) != (job.size, job.mtime):
            raise CompanionError("the file changed since it was indexed; index its folder again")
    t = time.perf_counter()
    doc = frontend.open(Path(job.path))
    timings["render"] += time.perf_counter() - t
    try:
        result.n_pages = doc.n_pages
        result.title, result.composer = title_and_composer(Path(job.path), doc.metadata or {})
        if doc.n_pages == 0:
            raise CompanionError("the PDF has no pages")
        by_page: dict[int, list[SystemRecord]] = {}
        for s in job.known_systems:
            by_page.setdefault(s.page, []).append(s)
        pages_to_render = range(doc.n_pages) if job.reembed_document is None else sorted(by_page)
        snippets: list[np.ndarray] = []
        xs: list[np.ndarray] = []
        strips: list[np.ndarray] = []
        page_notes: list[str] = []
        for i, page in enumerate(pages_to_render):
            t = time.perf_counter()
            try:
                image = doc.render(page)
            except CompanionError as exc:
                page_notes.append(f"page {page + 1}: {exc}")
                result.pages.append(PageRecord(page, 0, 0, 0))
                continue
            finally:
                timings["render"] += time.perf_counter() - t
            t = time.perf_counter()
            if job.reembed_document is None:
                try:
                    systems = frontend.detect(image, page)
                except CompanionError as exc:
                    page_notes.append(f"page {page + 1}: {exc}")
                    systems = []
            else:
                systems = by_page.get(page, [])
            timings["detect"] += time.perf_counter() - t
            t = time.perf_counter()
            for system in systems:
                snip, x, strip = frontend.cut(image, system)
                snippets.append(snip)
                xs.append(np.asarray(x, dtype=np.int32))
                strips.append(strip)
                result.systems.append(system)
            timings["embed"] += time.perf_counter() - t
            h, w = image.shape[:2]
            result.pages.append(PageRecord(page, int(w), int(h), len(systems)))
            if page_progress is not None:
                page_progress(i + 1, len(pages_to_render))
        if not result.systems:
            why = f" ({'; '.join(page_notes[:3])})" if page_notes else ""
            raise CompanionError(
                f"no staff systems found on any of its {doc.n_pages} pages: not sheet music, "
                f"blank or unreadable pages{why}"
            )
        if page_notes:
            result.error = "; ".join(page_notes)
        t = time.perf_counter()
        result.embeddings = embed_systems(embedder, snippets, xs, strips)
        timings["embed"] += time.perf_counter() - t
    finally:
        doc.close()


def embed_systems(embedder: SheetEmbedder, snippets: Sequence[np.ndarray], xs: Sequence[np.ndarray],
                  strips: Sequence[np.ndarray]) -> list[SystemEmbedding]:
    """Embed all snippets of a document in one batch, and one passage per system."""
    counts = [len(s) for s in snippets]
    nonempty = [s for s in snippets if len(s)]
    if nonempty:
        flat = embedder.embed_sheet_snippets(np.concatenate(nonempty))
    else:
        flat = np.zeros((0, 0), np.float32)
    flat = np.asarray(flat, dtype=np.float32)
    dim = flat.shape[1] if flat.ndim == 2 and len(flat) else 0
    if has_passage_model(embedder) and strips:
        passages = np.asarray(embedder.embed_sheet_passages(list(strips)), dtype=np.float32)
    else:
        passages = np.zeros((len(strips), 0), np.float32)
    out: list[SystemEmbedding] = []
    start = 0
    for i, n in enumerate(counts):
        out.append(SystemEmbedding(snippet_x=xs[i], snippets=flat[start : start + n].reshape(n, dim),
                                   passage=passages[i]))
        start += n
    return out


def has_passage_model(embedder: SheetEmbedder) -> bool:
    """The shipped Embedder has ``passage = None`` when models/passage.pt is absent."""
    return getattr(embedder, "passage", True) is not None
