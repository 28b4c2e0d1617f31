"""``companion index`` and ``companion library list|stats|remove|export``.

The same operations are available to the GUI through :mod:`companion.library`
(``Indexer`` with a progress callback, ``Library.open``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from companion.config import Config
from companion.library.catalog import Catalog
from companion.library.errors import LibraryError
from companion.library.export import export_csv, export_json
from companion.library.indexer import IndexOptions, IndexReport, Indexer
from companion.library.library import Library
from companion.library.progress import TerminalProgress


def _library_dir(args: argparse.Namespace, cfg: Config) -> Path:
    return Path(args.library).expanduser() if getattr(args, "library", None) else cfg.paths.library_dir


def load_embedder(models_dir: Path, threads: int | None = None):  # -> companion.models.embedder.Embedder
    """The shipped encoder (imported late: torch is heavy and list/export never need it)."""
    from companion.models.embedder import Embedder

    return Embedder(models_dir, threads=threads)


def default_frontend(cfg: Config):
    from companion.library.frontend import SheetsFrontEnd

    return SheetsFrontEnd(cfg.sheet)


def _add_library_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--library", metavar="DIR", help="library directory (default: the user's library, see 'companion info')")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index", help="index folders of PDF scores into the library",
        description="Walk folders recursively and index every PDF: pages, systems, snippet and passage "
        "embeddings. Unchanged files are skipped, changed ones re-indexed, deleted ones removed; a new "
        "model re-embeds without re-detecting systems. Safe to interrupt: the next run resumes.",
    )
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="folders (or PDF files) to index; none = the folders indexed before")
    _add_library_arg(p)
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--rehash", action="store_true", help="hash every file even if size and date are unchanged")
    p.add_argument("--retry-errors", action="store_true", help="try files that failed before again")
    p.add_argument("--publish-every", type=float, default=30.0, metavar="S",
                   help="make finished files searchable at least every S seconds (default 30)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    p.set_defaults(func=run_index)

    lib = subparsers.add_parser("library", help="list, inspect, remove or export library documents")
    sub = lib.add_subparsers(dest="library_command", metavar="ACTION")
    lib.set_defaults(func=lambda args, cfg: (lib.print_help(sys.stderr), 2)[1])
    p = sub.add_parser("list", help="list documents")
    _add_library_arg(p)
    p.add_argument("--errors", action="store_true", help="only files that could not be indexed, with the reason")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_list)
    p = sub.add_parser("stats", help="counts, index type, recall, size on disk")
    _add_library_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_stats)
    p = sub.add_parser("remove", help="remove documents (files, or everything under folders) from the library")
    _add_library_arg(p)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=run_remove)
    p = sub.add_parser("export", help="export documents, pages and systems")
    _add_library_arg(p)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=run_export)


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    from companion.library import bench

    bench.register(bench_subparsers)


def _print_report(report: IndexReport, as_json: bool) -> None:
    data = {
        "added": report.added, "changed": report.changed, "unchanged": report.unchanged,
        "removed": report.removed, "reembedded": report.reembedded, "copied": report.copied,
        "errors": report.errors, "pages": report.pages, "seconds": round(report.seconds, 2),
        "pages_per_s": round(report.pages_per_s, 3), "generation": report.generation,
        "timings_s": {k: round(v, 2) for k, v in report.timings.items()},
        "cpu_s": round(report.cpu_seconds, 2),
        "error_files": [{"path": p, "error": e} for p, e in report.error_files],
    }
    if as_json:
        print(json.dumps(data, indent=2))
        return
    print(
        f"{report.added} new, {report.changed} changed, {report.unchanged} unchanged, {report.removed} removed, "
        f"{report.reembedded} re-embedded, {report.copied} reused, {report.errors} errors"
    )
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
    print(f"{report.pages} pages in {report.seconds:.1f} s ({report.pages_per_s:.2f} pages/s; {stages})")
    if report.errors:
        print("files that could not be indexed: companion library list --errors")


def run_index(args: argparse.Namespace, cfg: Config) -> int:
    if args.workers < 1:
        raise LibraryError("--workers must be at least 1")
    directory = _library_dir(args, cfg)
    options = IndexOptions(workers=args.workers, rehash=args.rehash, retry_errors=args.retry_errors,
                           publish_every_s=args.publish_every)
    progress = TerminalProgress(enabled=False if args.no_progress else None)
    threads = None if args.workers == 1 else 1
    factory = functools.partial(load_embedder, cfg.models_dir, threads)
    with Indexer(directory, default_frontend(cfg), factory, options, progress) as indexer:
        report = indexer.run([Path(f) for f in args.folders])
    _print_report(report, args.json)
    return 0


def run_list(args: argparse.Namespace, cfg: Config) -> int:
    catalog = Catalog(_library_dir(args, cfg), readonly=True)
    try:
        docs = catalog.documents()
    finally:
        catalog.close()
    if args.errors:
        docs = [d for d in docs if d.status == "error"]
    if args.json:
        print(json.dumps([d.as_dict() | {"searchable": d.visible} for d in docs], indent=2))
        return 0
    if not docs:
        print("no files with errors" if args.errors else "the library is empty")
        return 0
    for d in docs:
        if args.errors:
            print(f"{d.path}\n    {d.error}")
        else:
            mark = "" if d.visible or d.status == "error" else " (not yet searchable)"
            print(f"{d.status:7s} {d.n_pages:4d} p {d.n_systems:5d} sys  {d.composer + ' - ' if d.composer else ''}"
                  f"{d.title}  [{d.path}]{mark}")
    return 0


def run_stats(args: argparse.Namespace, cfg: Config) -> int:
    with Library.open(_library_dir(args, cfg)) as lib:
        stats = lib.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    for key, value in stats.items():
        print(f"{key:22s} {json.dumps(value) if isinstance(value, dict) else value}")
    return 0


def run_remove(args: argparse.Namespace, cfg: Config) -> int:
    directory = _library_dir(args, cfg)
    if not (directory / Catalog.FILENAME).exists():
        raise LibraryError(f"no library at {directory}")
    factory = functools.partial(load_embedder, cfg.models_dir, None)
    with Indexer(directory, None, factory) as indexer:
        n = indexer.remove(args.paths)
    print(f"removed {n} document{'s' if n != 1 else ''}")
    return 0 if n else 1


def run_export(args: argparse.Namespace, cfg: Config) -> int:
    catalog = Catalog(_library_dir(args, cfg), readonly=True)
    try:
        text = export_csv(catalog) if args.format == "csv" else export_json(catalog)
    finally:
        catalog.close()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
