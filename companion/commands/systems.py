"""``companion systems FILE.pdf`` and ``companion bench systems DIR``: the system detector.

Why a command: a person checks the detector on their own scores with ``--png``
(boxes drawn on each page), and the benchmark scores it on annotated scans.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from companion.config import Config
from companion.errors import SheetError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "systems",
        help="find the systems (lines of music) on every page of a PDF",
        description="Detect systems without annotations. Boxes are [x0, y0, x1, y1] as "
        "fractions of the page width (x and y alike).",
    )
    p.add_argument("pdf", metavar="FILE.pdf")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--png", metavar="DIR", help="write each page with its systems drawn to DIR")
    p.add_argument("--pages", metavar="A-B", help="only these pages (1-based, e.g. 3 or 2-5)")
    p.set_defaults(func=run_systems)


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser(
        "systems",
        help="precision/recall of system detection on annotated scans",
        description="For every *.pdf with a *.systems.json beside it, match detected to "
        "annotated systems (vertical IoU >= 0.5, one-to-one).",
    )
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--degrade", action="store_true",
                   help="degrade each page first (150 dpi, 2 deg rotation, blur, noise, JPEG q30; seeded)")
    p.add_argument("--seed", type=int, default=0, help="seed of the degradations")
    p.add_argument("--limit-pages", type=int, default=0, metavar="N", help="only the first N pages of each PDF")
    p.add_argument("--per-file", action="store_true", help="also print scores per PDF")
    p.set_defaults(func=run_bench)


def _page_range(spec: str | None, n: int) -> range:
    if not spec:
        return range(n)
    try:
        if "-" in spec:
            a, b = spec.split("-", 1)
            lo, hi = int(a), int(b)
        else:
            lo = hi = int(spec)
    except ValueError:
        raise SheetError(f"--pages {spec!r}: expected a page number or a range like 2-5") from None
    if lo < 1 or hi < lo:
        raise SheetError(f"--pages {spec!r}: pages count from 1")
    return range(lo - 1, min(hi, n))


def draw_systems(image: np.ndarray, systems) -> np.ndarray:
    """RGB copy of a page with system boxes (green) and staff lines (blue) drawn."""
    rgb = np.repeat(image[:, :, None], 3, axis=2).copy()
    h, w = image.shape
    for s in systems:
        x0, y0, x1, y1 = (int(round(v)) for v in s.box)
        x0, x1 = max(0, x0), min(w - 1, x1)
        y0, y1 = max(0, y0), min(h - 1, y1)
        for t in range(2):
            rgb[min(h - 1, y0 + t), x0:x1] = (0, 170, 0)
            rgb[max(0, y1 - t), x0:x1] = (0, 170, 0)
            rgb[y0:y1, min(w - 1, x0 + t)] = (0, 170, 0)
            rgb[y0:y1, max(0, x1 - t)] = (0, 170, 0)
        sx0, _, sx1, _ = (int(round(v)) for v in s.staff_box)
        for staff in s.staff_lines:
            for y in staff:
                yy = int(round(y))
                if 0 <= yy < h:
                    rgb[yy, max(0, sx0) : min(w, sx1) : 3] = (40, 40, 255)
    return rgb


def save_png(rgb: np.ndarray, path: Path) -> None:
    import pymupdf

    a = np.ascontiguousarray(rgb, dtype=np.uint8)
    pix = pymupdf.Pixmap(pymupdf.csRGB, a.shape[1], a.shape[0], a.tobytes(), False)
    pix.save(str(path))


def run_systems(args: argparse.Namespace, cfg: Config) -> int:
    from companion.sheets import detect_page, open_document

    path = Path(args.pdf)
    png_dir = Path(args.png) if args.png else None
    if png_dir is not None:
        try:
            png_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SheetError(f"cannot write to {png_dir}: {exc}") from exc
    pages = []
    with open_document(path, cfg.sheet) as doc:
        for page in _page_range(args.pages, doc.n_pages):
            entry: dict = {"page": page}
            t0 = time.perf_counter()
            try:
                image = doc.render_analysis(page)
                h, w = image.shape
                entry.update(width=w, height=h)
                systems = detect_page(image, cfg.sheet)
            except SheetError as exc:
                log.warning("%s", exc)
                entry.setdefault("width", 0)
                entry.setdefault("height", 0)
                entry.update(systems=[], n_staves=[], error=str(exc))
                pages.append(entry)
                continue
            entry["systems"] = [[round(v / w, 5) for v in s.box] for s in systems]
            entry["n_staves"] = [s.n_staves for s in systems]
            entry["seconds"] = round(time.perf_counter() - t0, 4)
            pages.append(entry)
            if png_dir is not None:
                save_png(draw_systems(image, systems), png_dir / f"{path.stem}-p{page + 1:03d}.png")
    if args.json:
        print(json.dumps({"file": str(path), "pages": pages}))
    else:
        total = sum(len(p["systems"]) for p in pages)
        print(f"{path.name}: {len(pages)} pages, {total} systems")
        for p in pages:
            if "error" in p:
                print(f"  page {p['page'] + 1}: skipped ({p['error']})")
                continue
            staves = ", ".join(str(n) for n in p["n_staves"]) or "-"
            print(f"  page {p['page'] + 1}: {len(p['systems'])} systems (staves: {staves})")
        if png_dir is not None:
            print(f"pages with boxes drawn: {png_dir}")
    return 0


def run_bench(args: argparse.Namespace, cfg: Config) -> int:
    from companion.sheets.bench import bench_folder

    folder = Path(args.dir)
    if not folder.is_dir():
        raise SheetError(f"{folder}: not a folder")
    res = bench_folder(folder, cfg.sheet, degrade=args.degrade, seed=args.seed,
                       limit_pages=args.limit_pages, verbose=args.per_file and not args.json)
    summary = res.summary()
    if args.json:
        out = {k: summary[k] for k in ("precision", "recall", "f1", "sec_per_page")}
        out.update(cpu_sec_per_page=summary["cpu_sec_per_page"], pages=summary["pages"], systems_annotated=summary["systems_annotated"],
                   systems_detected=summary["systems_detected"], degraded=bool(args.degrade))
        if args.per_file:
            out["per_file"] = res.per_file
        print(json.dumps(out))
    else:
        kind = "degraded " if args.degrade else ""
        print(f"{summary['pages']} {kind}pages, {summary['systems_annotated']} annotated systems, "
              f"{summary['systems_detected']} detected")
        print(f"precision {summary['precision']:.4f}  recall {summary['recall']:.4f}  "
              f"F1 {summary['f1']:.4f}  {summary['sec_per_page']:.3f} s/page "
              f"({summary['cpu_sec_per_page']:.3f} s CPU)")
        if args.per_file:
            for name, s in res.per_file.items():
                print(f"  {name}: P {s['precision']:.3f} R {s['recall']:.3f} ({s['pages']} pages)")
    sys.stdout.flush()
    return 0
