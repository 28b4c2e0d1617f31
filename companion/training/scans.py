"""Unlabelled sheet snippets from real scans, for SimCLR pre-training of the sheet encoder.

Pages are rendered greyscale at the analysis width (835 px); each annotated
system box (``<work>.systems.json``, fractions of the page width) or each
system found by the sheets module is scaled to an 80-px strip (the 160-px
strip downscaled by 2) and cut into windows of 100 px + context, hop 25 px
(= 200 px / 50 px at strip scale). The annotated boxes are used for
pre-training only; the app itself always uses the system detector.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from companion.errors import CompanionError
from companion.models.encoders import SHEET_SHAPE

log = logging.getLogger(__name__)
ANALYSIS_WIDTH = 835


def render_page_grey(doc, page_no: int, width: int = ANALYSIS_WIDTH) -> np.ndarray:
    import pymupdf as fitz

    page = doc[page_no]
    zoom = width / page.rect.width
    pix = page.get_pixmap(matrix=fitz.Matrix(zoom, zoom), colorspace=fitz.csGRAY, alpha=False)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width, pix.n)[:, :, 0].copy()


def strip_windows(strip80: np.ndarray, width: int, hop: int) -> np.ndarray:
    """Cut an 80-px high strip into (n, 80, width) windows (paper-padded if short)."""
    h, w = strip80.shape
    if w < width:
        strip80 = np.pad(strip80, ((0, 0), (0, width - w)), constant_values=255)
        w = width
    starts = range(0, w - width + 1, hop)
    return np.stack([strip80[:, s : s + width] for s in starts])


def scale_strip(band: np.ndarray, height: int = SHEET_SHAPE[0]) -> np.ndarray:
    h, w = band.shape
    new_w = max(1, int(round(w * height / h)))
    return np.asarray(Image.fromarray(band).resize((new_w, height), Image.BILINEAR))


def snippets_from_scan(pdf: Path, boxes: list[dict], ctx: int = 10, hop: int = 25) -> np.ndarray:
    import pymupdf as fitz

    try:
        doc = fitz.open(pdf)
    except Exception as exc:
        raise CompanionError(f"cannot open {pdf}: {exc}") from exc
    out = []
    pages: dict[int, np.ndarray] = {}
    for b in boxes:
        p = int(b["page"])
        if p not in pages:
            pages = {p: render_page_grey(doc, p)}
        img = pages[p]
        x0, x1 = int(b["x0"] * ANALYSIS_WIDTH), int(b["x1"] * ANALYSIS_WIDTH)
        y0, y1 = int(b["y0"] * ANALYSIS_WIDTH), int(b["y1"] * ANALYSIS_WIDTH)
        band = img[max(0, y0) : min(img.shape[0], y1), max(0, x0) : min(img.shape[1], x1)]
        if band.shape[0] < 20 or band.shape[1] < 50:
            continue
        out.append(strip_windows(scale_strip(band), SHEET_SHAPE[1] + 2 * ctx, hop))
    doc.close()
    return np.concatenate(out) if out else np.zeros((0, SHEET_SHAPE[0], SHEET_SHAPE[1] + 2 * ctx), np.uint8)


def prepare_scan_snippets(scans_dir: Path, out_dir: Path, exclude: Iterable[str] = ("chopin",), ctx: int = 10) -> dict:
    """Write ``sheet.npy`` + ``meta.json`` of unlabelled snippets from every scan not excluded."""
    scans_dir, out_dir = Path(scans_dir), Path(out_dir)
    excl = [e.lower() for e in exclude]
    chunks, works = [], []
    for js in sorted(scans_dir.glob("*.systems.json")):
        work = js.name[: -len(".systems.json")]
        if any(e in work.lower() for e in excl):
            continue
        pdf = scans_dir / f"{work}.pdf"
        if not pdf.is_file():
            continue
        boxes = json.loads(js.read_text(encoding="utf-8"))
        if isinstance(boxes, dict):
            boxes = boxes.get("systems", [])
        snips = snippets_from_scan(pdf, boxes, ctx)
        log.info("%s: %d snippets", work, len(snips))
        chunks.append(snips)
        works.append(work)
    if not chunks:
        raise CompanionError(f"no usable scans in {scans_dir}")
    sheet = np.concatenate(chunks)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "sheet.npy", sheet)
    summary = {"source": "real scans (IMSLP via DiNoScore), annotated system boxes", "works": works,
               "excluded": list(exclude), "snippets": int(len(sheet))}
    (out_dir / "meta.json").write_text(json.dumps({"version": 1, "summary": summary}, indent=1), encoding="utf-8")
    return summary
