"""A sheet front end that takes system boxes from a sidecar file (benchmarks only).

Why: the identification benchmark should measure the *engine* where the
ground truth is known, independent of system-detection errors, and it must be
runnable before (or without) the detector. Real scans in ``shared/data/scans``
come with ``<name>.systems.json`` (boxes as fractions of the page width); the
benchmark's rendered pieces get the same sidecar from their engraving
(:func:`companion.data.pieces.system_boxes`). Everything else follows the papers' sheet
front end: pages rendered 835 px wide, systems scaled to 160-px strips,
snippets 200 px wide every 50 px downscaled to 80 x 100, passages as 80-px
high strips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from companion.config import SheetConfig
from companion.data.pieces import sidecar
from companion.errors import SheetError
from companion.library.protocols import SystemRecord


class _Opened:
    def __init__(self, doc, width: int) -> None:
        self.doc = doc
        self.width = width
        self.n_pages = doc.page_count
        self.metadata = {k: v for k, v in (doc.metadata or {}).items() if v}

    def render(self, page: int) -> np.ndarray:
        import pymupdf

        p = self.doc[page]
        zoom = self.width / p.rect.width
        pix = p.get_pixmap(colorspace=pymupdf.csGRAY, matrix=pymupdf.Matrix(zoom, zoom))
        return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width].copy()

    def close(self) -> None:
        self.doc.close()


class KnownSystemsFrontEnd:
    """``SheetFrontEnd`` with boxes from ``<pdf stem>.systems.json`` (one process: ``workers=1``)."""

    def __init__(self, cfg: SheetConfig | None = None) -> None:
        self.cfg = cfg or SheetConfig()
        self._boxes: dict[int, list[tuple[float, float, float, float]]] = {}

    def open(self, path: Path) -> _Opened:
        import pymupdf

        path = Path(path)
        meta = sidecar(path)
        if not meta.is_file():
            raise SheetError(f"no system boxes for {path.name} ({meta.name} is missing)")
        data = json.loads(meta.read_text(encoding="utf-8"))
        self._boxes = {}
        for s in data["systems"]:
            self._boxes.setdefault(int(s["page"]), []).append((s["x0"], s["y0"], s["x1"], s["y1"]))
        try:
            doc = pymupdf.open(path)
        except Exception as exc:
            raise SheetError(f"not a readable PDF: {exc}") from exc
        return _Opened(doc, self.cfg.analysis_width)

    def detect(self, image: np.ndarray, page: int) -> list[SystemRecord]:
        w = image.shape[1]
        out = []
        for x0, y0, x1, y1 in sorted(self._boxes.get(page, []), key=lambda b: b[1]):
            box = (x0 * w, max(0.0, y0 * w), x1 * w, min(float(image.shape[0]), y1 * w))
            if box[3] - box[1] > 10 and box[2] - box[0] > 50:
                out.append(SystemRecord(page=page, box=box, n_staves=2))
        return out

    def cut(self, image: np.ndarray, system: SystemRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from PIL import Image

        c = self.cfg
        x0, y0, x1, y1 = (int(round(v)) for v in system.box)
        crop = image[y0:y1, x0:x1]
        scale = c.strip_height / max(1, crop.shape[0])
        width = max(c.snippet_width, int(round(crop.shape[1] * scale)))
        strip = np.asarray(Image.fromarray(crop).resize((width, c.strip_height), Image.BILINEAR))
        xs = np.arange(0, width - c.snippet_width + 1, c.snippet_hop, dtype=np.int32)
        sh, sw = c.snippet_size
        snippets = np.stack([np.asarray(Image.fromarray(strip[:, x : x + c.snippet_width]).resize((sw, sh), Image.BILINEAR))
                             for x in xs])
        small = np.asarray(Image.fromarray(strip).resize((max(1, width * sh // c.strip_height), sh), Image.BILINEAR))
        return snippets, xs, small
