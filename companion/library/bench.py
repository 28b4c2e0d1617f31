"""Library benchmarks: ``companion bench library-synthetic`` and ``companion bench library-index``.

Why synthetic embeddings for the 10,000-page figure: size on disk, memory,
query latency and approximate-vs-exact recall depend on the number and shape
of vectors, not on where they came from; generating them directly into the
catalog measures the storage and search layers at a scale (1.2 M snippet
vectors) that would take hours to render and detect on this machine. They are
not uniform noise: each system is an AR(1) walk (neighbouring snippets overlap
by 75 %) around a per-document centre, like real embeddings cluster by piece.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from companion.config import Config
from companion.library import vectors
from companion.library.catalog import Catalog
from companion.library.protocols import DocumentResult, PageRecord, SystemEmbedding, SystemRecord
from companion.library.publish import publish

SYNTHETIC_MODEL = "synthetic-embeddings"


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser(
        "library-synthetic", help="library size, memory, query latency and ANN recall at 10,000 pages")
    p.add_argument("--pages", type=int, default=10_000)
    p.add_argument("--pages-per-document", type=int, default=20)
    p.add_argument("--systems-per-page", type=int, default=6)
    p.add_argument("--snippets-per-system", type=int, default=20)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--dir", metavar="DIR", help="build the library here (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the library folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_synthetic)
    p = bench_subparsers.add_parser(
        "library-index", help="end-to-end indexing throughput on real PDFs, split by stage")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--dir", metavar="DIR", help="library folder (default: a temporary folder, deleted)")
    p.add_argument("--untrained-model", action="store_true",
                   help="time with seeded random weights of the shipped architecture (same cost as "
                   "trained weights) when no trained model is installed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_index_bench)


# -- synthetic ---------------------------------------------------------------------------------------


def synthetic_document(doc_no: int, pages: int, systems_per_page: int, per_system: int,
                       rng: np.random.Generator, dim: int = 32, pdim: int = 64) -> DocumentResult:
    centre = rng.standard_normal(dim).astype(np.float32)
    result = DocumentResult(path=f"/synthetic/doc{doc_no:05d}.pdf", sha256=f"{doc_no:064x}", size=1, mtime=0.0,
                            title=f"Synthetic {doc_no}", composer="Bench", n_pages=pages,
                            model_version=SYNTHETIC_MODEL)
    n_sys = pages * systems_per_page
    v = rng.standard_normal((n_sys, dim)).astype(np.float32)
    walk = np.empty((n_sys, per_system, dim), np.float32)
    for t in range(per_system):
        walk[:, t] = v + 0.5 * centre
        v = 0.8 * v + 0.6 * rng.standard_normal((n_sys, dim)).astype(np.float32)
    walk /= np.linalg.norm(walk, axis=2, keepdims=True)
    passages = vectors.normalise(rng.standard_normal((n_sys, pdim)).astype(np.float32))
    xs = np.arange(per_system, dtype=np.int32) * 50
    for p in range(pages):
        result.pages.append(PageRecord(p, 835, 1181, systems_per_page))
        for s in range(systems_per_page):
            y0 = 40.0 + s * 185.0
            result.systems.append(SystemRecord(page=p, box=(40.0, y0, 800.0, y0 + 170.0), n_staves=2))
    result.embeddings = [SystemEmbedding(xs, walk[i], passages[i]) for i in range(n_sys)]
    return result


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def run_synthetic(args: argparse.Namespace, cfg: Config) -> int:
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="companion-bench-lib-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        out = synthetic(base, args)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(out, indent=2) if args.json else _format(out))
    return 0


def synthetic(base: Path, args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(0)
    n_docs = max(1, args.pages // args.pages_per_document)
    t0 = time.perf_counter()
    with Catalog(base) as catalog:
        for d in range(n_docs):
            catalog.write_document(synthetic_document(d, args.pages_per_document, args.systems_per_page,
                                                      args.snippets_per_system, rng))
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        publish(catalog, base, SYNTHETIC_MODEL)
        t_publish = time.perf_counter() - t0
        info = json.loads(catalog.meta("snippets_index"))
    files = {p.name: p.stat().st_size for p in base.iterdir() if p.is_file()}
    reader = subprocess.run(
        [sys.executable, "-m", "companion.library.bench", "reader", str(base), str(args.queries)],
        capture_output=True, text=True, check=True,
    )
    measured = json.loads(reader.stdout.strip().splitlines()[-1])
    catalog_bytes = sum(v for k, v in files.items() if k.startswith("catalog"))
    return {
        "pages": n_docs * args.pages_per_document,
        "documents": n_docs,
        "systems": n_docs * args.pages_per_document * args.systems_per_page,
        "snippet_vectors": info["n"],
        "write_catalog_s": round(t_write, 1),
        "publish_s": round(t_publish, 1),
        "snippet_index": info,
        "disk_mb": {"total": round(_dir_size(base) / 1e6, 1), "catalog": round(catalog_bytes / 1e6, 1),
                    "faiss_and_ids": round((_dir_size(base) - catalog_bytes) / 1e6, 1)},
        **measured,
        "machine": machine(),
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reader_measurements(directory: Path, n_queries: int) -> dict:
    """Run in a fresh process: memory of an open library, latency, recall vs exact."""
    import resource  # POSIX only, like this measurement

    from companion.library.library import Library

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    lib = Library.open(directory)
    t_open = time.perf_counter() - t0
    rss1 = _rss_mb()
    snip = lib.snapshot.snippets
    data = snip.index.reconstruct_n(0, snip.size) if snip.info.get("kind") == "flat" else None
    if data is None:
        import faiss

        ivf = faiss.extract_index_ivf(snip.index)
        inv = ivf.invlists
        data = np.zeros((snip.size, snip.dim), np.float32)
        for lst in range(ivf.nlist):
            n = inv.list_size(lst)
            if n:
                ids = faiss.rev_swig_ptr(inv.get_ids(lst), n).copy()
                codes = faiss.rev_swig_ptr(inv.get_codes(lst), n * snip.dim * 4).copy()
                data[ids] = codes.view(np.float32).reshape(n, snip.dim)
    queries = vectors.calibration_queries(data, n_queries, seed=12345)  # not the calibration set (seed 0)
    rand = vectors.normalise(np.random.default_rng(7).standard_normal((n_queries, snip.dim)).astype(np.float32))
    lat1, lat40 = [], []
    for i in range(n_queries):
        t = time.perf_counter()
        lib.search_snippets(queries[i : i + 1], 10)
        lat1.append(time.perf_counter() - t)
    for i in range(0, min(n_queries, 4000) - 40 + 1, 40):
        t = time.perf_counter()
        lib.search_snippets(queries[i : i + 40], 10)
        lat40.append(time.perf_counter() - t)
    import faiss

    flat = faiss.IndexFlatIP(snip.dim)
    flat.add(data)
    t = time.perf_counter()
    _, exact = flat.search(queries, 10)
    exact_ms = (time.perf_counter() - t) / len(queries) * 1e3
    lat_exact = []
    for i in range(min(100, n_queries)):
        t = time.perf_counter()
        flat.search(queries[i : i + 1], 10)
        lat_exact.append(time.perf_counter() - t)
    _, exact_r = flat.search(rand, 10)
    _, approx_r = snip.search(rand, 10)
    pos_approx = snip.search(queries, 10)[1]
    return {
        "open_s": round(t_open, 2),
        "reader_rss_mb": round(rss1 - rss0, 1),
        "peak_rss_mb_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "latency_ms_1_query": {"p50": round(float(np.percentile(lat1, 50)) * 1e3, 2),
                               "p95": round(float(np.percentile(lat1, 95)) * 1e3, 2)},
        "latency_ms_40_queries": {"p50": round(float(np.percentile(lat40, 50)) * 1e3, 2),
                                  "p95": round(float(np.percentile(lat40, 95)) * 1e3, 2)},
        "exact_latency_ms_1_query": {"p50": round(float(np.percentile(lat_exact, 50)) * 1e3, 2),
                                     "p95": round(float(np.percentile(lat_exact, 95)) * 1e3, 2)},
        "exact_ms_per_query_batched": round(exact_ms, 3),
        "recall_at_10_vs_exact": round(vectors.recall_at_k(exact, pos_approx), 4),
        "recall_at_10_vs_exact_random_queries": round(vectors.recall_at_k(exact_r, approx_r), 4),
        "queries": len(queries),
    }


def machine() -> str:
    import platform

    load = f", load avg {os.getloadavg()[0]:.1f} at the end" if hasattr(os, "getloadavg") else ""
    return f"{os.cpu_count()}-core {platform.machine()}, Python {sys.version.split()[0]}{load}"


def _format(out: dict) -> str:
    return "\n".join(f"{k:32s} {json.dumps(v)}" for k, v in out.items())


# -- real PDFs -------------------------------------------------------------------------------------


def run_index_bench(args: argparse.Namespace, cfg: Config) -> int:
    from companion.commands.library import default_frontend, load_embedder
    from companion.library.indexer import IndexOptions, Indexer

    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="companion-bench-index-"))
    models_dir = cfg.models_dir
    if args.untrained_model:
        models_dir = Path(tempfile.mkdtemp(prefix="companion-bench-models-"))
        write_untrained_models(models_dir)
    cpu0 = time.process_time()
    try:
        factory = functools.partial(load_embedder, models_dir, None if args.workers == 1 else 1)
        with Indexer(base, default_frontend(cfg), factory, IndexOptions(workers=args.workers)) as ix:
            report = ix.run([Path(args.folder)])
        out = {
            "files": report.added, "errors": report.errors, "pages": report.pages,
            "seconds": round(report.seconds, 1), "pages_per_s": round(report.pages_per_s, 2),
            "stage_s": {k: round(v, 1) for k, v in report.timings.items()},
            "stage_ms_per_page": {k: round(1e3 * v / max(1, report.pages), 1) for k, v in report.timings.items()},
            "cpu_s_per_page": round(report.cpu_seconds / max(1, report.pages), 3),
            "process_cpu_s": round(time.process_time() - cpu0, 1),
            "workers": args.workers, "disk_mb": round(_dir_size(base) / 1e6, 1), "machine": machine(),
            "model": ("untrained (seeded), training recipe's architecture: " + json.dumps(training_arch("snippet"))
                      if args.untrained_model else str(models_dir)),
            "error_files": report.error_files,
        }
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
        if args.untrained_model:
            shutil.rmtree(models_dir, ignore_errors=True)
    print(json.dumps(out, indent=2) if args.json else _format(out))
    return 0


def training_arch(kind: str) -> dict:
    """The architecture the training recipe ships (companion/training/configs/<kind>.json), or {}."""
    path = Path(__file__).resolve().parent.parent / "training" / "configs" / f"{kind}.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("arch", {}))
    except (OSError, ValueError):
        return {}


def write_untrained_models(models_dir: Path, seed: int = 0) -> None:
    """Snippet and passage models of the training recipe's architecture with seeded random weights.

    Costs per snippet equal the trained model's (same layers), so indexing can be
    timed, and its wiring tested, before a trained model exists.
    """
    import torch

    from companion.models.checkpoint import build_model, save_checkpoint

    torch.manual_seed(seed)
    for kind in ("snippet", "passage"):
        model = build_model(kind, training_arch(kind)).eval()
        save_checkpoint(model, Path(models_dir) / f"{kind}.pt", recipe={"note": "untrained, for timing"})


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "reader":
    print(json.dumps(reader_measurements(Path(sys.argv[2]), int(sys.argv[3]))))
