"""Scoring the system detector against annotated scans (``*.systems.json``).

Why vertical IoU: the annotations are loose bands around each system, so a
detection counts as correct when its vertical extent overlaps one annotated band
with IoU >= 0.5 (one-to-one); horizontal extent does not decide which line is
being played.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from companion.config import SheetConfig
from companion.errors import SheetError
from companion.sheets.degrade import DPI150_WIDTH, degrade_page
from companion.sheets.detect import DetectOptions, detect_systems
from companion.sheets.document import open_bytes, open_document

log = logging.getLogger(__name__)


def vertical_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match(pred: list[tuple[float, float]], truth: list[tuple[float, float]], thr: float = 0.5) -> int:
    """Number of one-to-one matches with vertical IoU >= ``thr`` (greedy, best pairs first)."""
    pairs = []
    for i, p in enumerate(pred):
        for j, t in enumerate(truth):
            iou = vertical_iou(p, t)
            if iou >= thr:
                pairs.append((iou, i, j))
    pairs.sort(reverse=True)
    used_p, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    return len(used_p)


@dataclass
class BenchResult:
    tp: int = 0
    n_pred: int = 0
    n_true: int = 0
    pages: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """Process CPU time (render + detect): a load-independent view of the cost."""
    per_file: dict[str, dict] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.n_true if self.n_true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self) -> dict:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "sec_per_page": round(self.seconds / max(self.pages, 1), 4),
            "cpu_sec_per_page": round(self.cpu_seconds / max(self.pages, 1), 4),
            "pages": self.pages,
            "systems_annotated": self.n_true,
            "systems_detected": self.n_pred,
        }


def load_annotations(path: Path) -> dict[int, list[tuple[float, float, float, float]]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[int, list[tuple[float, float, float, float]]] = {}
    for s in data["systems"]:
        out.setdefault(int(s["page"]), []).append((s["x0"], s["y0"], s["x1"], s["y1"]))
    return out


def annotated_pdfs(folder: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for pdf in sorted(folder.glob("*.pdf")):
        ann = pdf.with_name(pdf.stem + ".systems.json")
        if ann.exists():
            pairs.append((pdf, ann))
    return pairs


def bench_folder(folder: Path, cfg: SheetConfig, degrade: bool = False, seed: int = 0,
                 limit_pages: int = 0, verbose: bool = False) -> BenchResult:
    """Detect systems on every annotated PDF in ``folder`` and score them.

    Time counted per page is render + (degradation excluded) + detection.
    """
    pairs = annotated_pdfs(folder)
    if not pairs:
        raise SheetError(f"no *.pdf with a *.systems.json beside it in {folder}")
    res = BenchResult()
    for pdf, ann in pairs:
        truth = load_annotations(ann)
        doc = open_document(pdf, cfg)
        file_res = BenchResult()
        n = doc.n_pages if not limit_pages else min(doc.n_pages, limit_pages)
        for page in range(n):
            if degrade:
                rng = np.random.default_rng([seed, zlib.crc32(pdf.name.encode()) & 0xFFFF, page])
                pdf_bytes, rot = degrade_page(doc.render_width(page, DPI150_WIDTH), rng)
                t0, c0 = time.perf_counter(), time.process_time()
                with open_bytes(pdf_bytes, cfg) as ddoc:
                    img = ddoc.render_analysis(0)
                w = img.shape[1]
                gt = [rot.transform_band(b, w) for b in truth.get(page, [])]
            else:
                t0, c0 = time.perf_counter(), time.process_time()
                img = doc.render_analysis(page)
                w = img.shape[1]
                gt = [(b[1] * w, b[3] * w) for b in truth.get(page, [])]
            spent = time.perf_counter() - t0
            cpu = time.process_time() - c0
            t1, c1 = time.perf_counter(), time.process_time()
            opts = DetectOptions(deadline=time.monotonic() + cfg.page_time_limit_s)
            try:
                systems = detect_systems(img, opts)
            except SheetError as exc:
                log.warning("%s page %d: %s", pdf.name, page, exc)
                systems = []
            spent += time.perf_counter() - t1
            cpu += time.process_time() - c1
            pred = [(s.box[1], s.box[3]) for s in systems]
            tp = match(pred, gt)
            for r in (res, file_res):
                r.tp += tp
                r.n_pred += len(pred)
                r.n_true += len(gt)
                r.pages += 1
                r.seconds += spent
                r.cpu_seconds += cpu
            if verbose and (tp != len(pred) or tp != len(gt)):
                print(f"  {pdf.name} page {page}: detected {len(pred)}, annotated {len(gt)}, matched {tp}")
        doc.close()
        res.per_file[pdf.name] = file_res.summary()
    return res
