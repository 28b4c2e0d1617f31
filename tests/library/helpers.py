"""Test data and test doubles for the library tests.

The library is written against two small interfaces (a sheet front end and a
sheet embedder) so its storage, incremental and crash-safety logic can be
tested quickly with deterministic doubles; the real front end and encoder are
exercised by tests/library/test_real_pipeline.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pymupdf

from companion.errors import SheetError
from companion.library.protocols import SystemRecord

PAGE_W, PAGE_H = 595, 842
ANALYSIS_W = 835


def make_score_pdf(path: Path, n_pages: int, seed: int, systems_per_page: int = 3,
                   title: str | None = None, composer: str | None = None) -> Path:
    """A vector PDF with two-stave systems and seeded 'noteheads' (so documents differ)."""
    rng = np.random.default_rng(seed)
    doc = pymupdf.open()
    for _ in range(n_pages):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        for s in range(systems_per_page):
            top = 70 + s * (700 // systems_per_page)
            for staff in range(2):
                y0 = top + staff * 60
                for line in range(5):
                    page.draw_line((50, y0 + line * 6), (545, y0 + line * 6), width=0.8)
                for _ in range(int(rng.integers(8, 20))):
                    x = float(rng.uniform(70, 530))
                    y = y0 + float(rng.integers(0, 9)) * 3
                    page.draw_circle((x, y), 2.6, fill=(0, 0, 0))
            for x in (50, 180, 310, 440, 545):  # barlines through both staves join them into a system
                page.draw_line((x, top), (x, top + 84), width=1.0)
    meta = {}
    if title:
        meta["title"] = title
    if composer:
        meta["author"] = composer
    if meta:
        doc.set_metadata(meta)
    doc.save(path)
    doc.close()
    return path


def make_text_pdf(path: Path) -> Path:
    doc = pymupdf.open()
    page = doc.new_page(width=PAGE_W, height=PAGE_H)
    page.insert_text((72, 100), "Invoice no. 42 - this is not sheet music", fontsize=14)
    doc.save(path)
    return path


def make_encrypted_pdf(path: Path) -> Path:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret")
    path.write_bytes(doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="u"))
    return path


def make_corrupt_pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.7\n" + bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)))
    return path


# -- test doubles ----------------------------------------------------------------------------------


class _Opened:
    def __init__(self, doc: "pymupdf.Document") -> None:
        self.doc = doc
        self.n_pages = doc.page_count
        self.metadata = {k: v for k, v in (doc.metadata or {}).items() if v}

    def render(self, page: int) -> np.ndarray:
        p = self.doc[page]
        zoom = ANALYSIS_W / p.rect.width
        pix = p.get_pixmap(colorspace=pymupdf.csGRAY, matrix=pymupdf.Matrix(zoom, zoom))
        return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width].copy()

    def close(self) -> None:
        self.doc.close()


class ProjectionFrontEnd:
    """Renders with pymupdf; finds 5-line staves by row projection; pairs them into systems."""

    def __init__(self) -> None:
        self.detect_calls = 0

    def open(self, path: Path) -> _Opened:
        try:
            doc = pymupdf.open(path)
        except Exception as exc:
            raise SheetError(f"not a readable PDF: {exc}") from exc
        if doc.needs_pass:
            doc.close()
            raise SheetError("the PDF is encrypted (password protected)")
        return _Opened(doc)

    def detect(self, image: np.ndarray, page: int) -> list[SystemRecord]:
        self.detect_calls += 1
        dark = (image < 128).mean(axis=1)
        rows = np.flatnonzero(dark > 0.5)
        lines: list[float] = []
        for r in rows:
            if lines and r - lines[-1] <= 2:
                continue
            lines.append(float(r))
        staves = [lines[i : i + 5] for i in range(0, len(lines) - 4, 5)]
        systems = []
        for i in range(0, len(staves) - 1, 2):
            a, b = staves[i], staves[i + 1]
            pad = 20.0
            box = (60.0, max(0.0, a[0] - pad), 775.0, min(float(image.shape[0]), b[-1] + pad))
            systems.append(SystemRecord(page=page, box=box, n_staves=2, staff_lines=(tuple(a), tuple(b))))
        return systems

    def cut(self, image: np.ndarray, system: SystemRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = (int(round(v)) for v in system.box)
        crop = image[y0:y1, x0:x1]
        scale = 160 / crop.shape[0]
        width = max(200, int(crop.shape[1] * scale))
        ry = (np.arange(160) / scale).astype(int).clip(0, crop.shape[0] - 1)
        rx = (np.arange(width) / scale).astype(int).clip(0, crop.shape[1] - 1)
        strip = crop[ry][:, rx]
        xs = np.arange(0, width - 200 + 1, 50, dtype=np.int32)
        snippets = np.stack([strip[::2, x : x + 200 : 2] for x in xs])
        return snippets, xs, strip[::2, ::2]


class HashEmbedder:
    """A deterministic random projection of downsampled snippets; ``version`` changes the weights."""

    def __init__(self, version: str = "test-1", dim: int = 32, passage_dim: int = 64) -> None:
        self.model_version = version
        seed = int(hashlib.sha256(version.encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng(seed)
        self.w = rng.standard_normal((20 * 25, dim)).astype(np.float32)
        self.wp = rng.standard_normal((20, passage_dim)).astype(np.float32)
        self.passage = True

    def _features(self, x: np.ndarray) -> np.ndarray:
        x = 1.0 - np.asarray(x, np.float32) / 255.0
        n, h, w = x.shape
        return x.reshape(n, 20, h // 20, 25, w // 25).mean(axis=(2, 4)).reshape(n, -1)

    def embed_sheet_snippets(self, snippets: np.ndarray) -> np.ndarray:
        z = self._features(snippets) @ self.w
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)

    def embed_sheet_passages(self, strips: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for s in strips:
            prof = 1.0 - np.asarray(s, np.float32).mean(axis=1) / 255.0  # 80 rows
            out.append(prof.reshape(20, 4).mean(axis=1) @ self.wp)
        z = np.stack(out)
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)


def hash_embedder_v1() -> HashEmbedder:
    return HashEmbedder("test-1")


def hash_embedder_v2() -> HashEmbedder:
    return HashEmbedder("test-2")
