"""Unlabelled sheet snippets from real scans, for SimCLR pre-training of the sheet encoder.

Pages are rendered greyscale at the analysis width (835 px); each annotated
system box (``<work>.systems.json``, fractions of the page width) or, for a
PDF without that file (a user's own scans), each system found by the sheets
module's detector is scaled to an 80-px strip (the 160-px strip downscaled by
2) and cut into windows of 100 px + context, hop 25 px (= 200 px / 50 px at
strip scale). Detected systems are cut exactly as the library cuts them
(deskewed :func:`companion.sheets.system_strip`). The annotated boxes are used
for pre-training only; the app itself always uses the system detector.
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


def snippets_from_detected(pdf: Path, ctx: int = 10, hop: int = 25) -> tuple[np.ndarray, int]:
    """Snippets of every system the detector finds in ``pdf`` (no annotation needed); (snippets, systems)."""
    from companion.errors import SheetError
    from companion.sheets import detect_page, open_document, system_strip

    out: list[np.ndarray] = []
    n_systems = 0
    with open_document(pdf) as doc:
        for page in range(doc.n_pages):
            try:
                image = doc.render_analysis(page)
                systems = detect_page(image)
            except SheetError as exc:  # one unreadable or too slow page is skipped, not the scan
                log.warning("%s page %d skipped: %s", pdf.name, page + 1, exc)
                continue
            for system in systems:
                strip = system_strip(image, system, 2 * SHEET_SHAPE[0])
                strip80 = np.asarray(Image.fromarray(strip).resize((max(1, strip.shape[1] // 2), SHEET_SHAPE[0]),
                                                                   Image.BILINEAR))
                out.append(strip_windows(strip80, SHEET_SHAPE[1] + 2 * ctx, hop))
                n_systems += 1
    empty = np.zeros((0, SHEET_SHAPE[0], SHEET_SHAPE[1] + 2 * ctx), np.uint8)
    return (np.concatenate(out) if out else empty), n_systems


def prepare_scan_snippets(scans_dir: Path, out_dir: Path, exclude: Iterable[str] = ("chopin",), ctx: int = 10) -> dict:
    """Write ``sheet.npy`` + ``meta.json`` of unlabelled snippets from every scan not excluded.

    Every PDF in ``scans_dir`` is used: with its annotated system boxes when a
    ``<work>.systems.json`` lies beside it, else with the systems the detector
    finds. A PDF that cannot be read is skipped and listed in the summary.
    ``exclude`` drops works whose name contains one of the words (the default
    keeps the Chopin scans used for evaluation out of pre-training).
    """
    from companion.errors import SheetError

    scans_dir, out_dir = Path(scans_dir), Path(out_dir)
    if not scans_dir.is_dir():
        raise CompanionError(f"scans folder not found: {scans_dir}")
    excl = [e.lower() for e in exclude]
    chunks, works, annotated, detected, skipped = [], [], [], [], []
    pdfs = sorted(p for p in scans_dir.iterdir() if p.is_file() and p.suffix.lower() == ".pdf")
    for pdf in pdfs:
        work = pdf.stem
        if any(e in work.lower() for e in excl):
            continue
        js = scans_dir / f"{work}.systems.json"
        try:
            if js.is_file():
                boxes = json.loads(js.read_text(encoding="utf-8"))
                if isinstance(boxes, dict):
                    boxes = boxes.get("systems", [])
                snips = snippets_from_scan(pdf, boxes, ctx)
                annotated.append(work)
            else:
                snips, n_systems = snippets_from_detected(pdf, ctx)
                detected.append({"work": work, "systems": n_systems})
        except (CompanionError, SheetError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s skipped: %s", pdf.name, exc)
            skipped.append({"work": work, "reason": str(exc)})
            continue
        log.info("%s: %d snippets", work, len(snips))
        if len(snips):
            chunks.append(snips)
            works.append(work)
    if not chunks:
        why = "; ".join(f"{s['work']}: {s['reason']}" for s in skipped[:3])
        raise CompanionError(f"no usable scans in {scans_dir}" + (f" ({why})" if why else
                                                                   " (no PDF with systems found)"))
    sheet = np.concatenate(chunks)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "sheet.npy", sheet)
    summary = {"source": "scans: annotated system boxes where given, else systems found by the detector",
               "works": works, "annotated": annotated, "detected": detected, "skipped": skipped,
               "excluded": list(exclude), "snippets": int(len(sheet))}
    (out_dir / "meta.json").write_text(json.dumps({"version": 1, "summary": summary}, indent=1), encoding="utf-8")
    return summary
