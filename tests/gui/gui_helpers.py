"""Test data and doubles for the GUI tests: score PDFs, a tiny sheet front end and encoder,
tone recordings and a tone-following engine double, a sound system with no microphone.

The doubles are deliberately simple but real: the front end finds staves by
row projection on the rendered page, and the engine double identifies a
system from the dominant frequency band of the live spectrogram frames, so
the tests drive the true audio -> spectrogram -> result -> highlight path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pymupdf
import soundfile as sf

from companion.errors import SheetError
from companion.library.protocols import SystemRecord

PAGE_W, PAGE_H = 595, 842
ANALYSIS_W = 835


def make_score_pdf(path: Path, n_pages: int, seed: int, systems_per_page: int = 3,
                   title: str | None = None, composer: str | None = None) -> Path:
    """A vector PDF with two-stave systems and seeded noteheads (documents differ)."""
    rng = np.random.default_rng(seed)
    doc = pymupdf.open()
    for number in range(n_pages):
        page = doc.new_page(width=PAGE_W, height=PAGE_H)
        if title:
            page.insert_text((60, 40), f"{title}   — page {number + 1}", fontsize=12)
        lines = page.new_shape()  # one shape per page: drawing item by item is very slow in pymupdf
        heads = page.new_shape()
        for s in range(systems_per_page):
            top = 80 + s * (700 // systems_per_page)
            for staff in range(2):
                y0 = top + staff * 60
                for line in range(5):
                    lines.draw_line((50, y0 + line * 6), (545, y0 + line * 6))
                lines.draw_line((50, y0), (50, y0 + 24))
                lines.draw_line((545, y0), (545, y0 + 24))
                for _ in range(int(rng.integers(10, 22))):
                    x = float(rng.uniform(70, 530))
                    y = y0 + float(rng.integers(0, 9)) * 3
                    heads.draw_circle((x, y), 2.6)
                    lines.draw_line((x + 2.5, y), (x + 2.5, y - 18))
        lines.finish(width=0.8, color=(0, 0, 0))
        lines.commit()
        heads.finish(fill=(0, 0, 0), color=(0, 0, 0), width=0.1)
        heads.commit()
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


def make_corrupt_pdf(path: Path) -> Path:
    path.write_bytes(b"%PDF-1.7\n" + bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)))
    return path


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
            box = (60.0, max(0.0, a[0] - 20.0), 775.0, min(float(image.shape[0]), b[-1] + 20.0))
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
    """A deterministic random projection of downsampled snippets."""

    def __init__(self, version: str = "gui-test-1", dim: int = 16) -> None:
        self.model_version = version
        seed = int(hashlib.sha256(version.encode()).hexdigest()[:8], 16)
        self.w = np.random.default_rng(seed).standard_normal((20 * 25, dim)).astype(np.float32)

    def embed_sheet_snippets(self, snippets: np.ndarray) -> np.ndarray:
        x = 1.0 - np.asarray(snippets, np.float32) / 255.0
        n = len(x)
        z = x.reshape(n, 20, 4, 25, 4).mean(axis=(2, 4)).reshape(n, -1) @ self.w
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)

    def embed_sheet_passages(self, strips: Sequence[np.ndarray]) -> np.ndarray:
        return np.zeros((len(strips), 0), np.float32)


def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


# -- audio ----------------------------------------------------------------------------------------

TONES_HZ = (220.0, 330.0, 440.0, 587.0, 784.0, 1047.0)
"""One tone per system of the test piece (system i <-> TONES_HZ[i])."""


def write_tones(path: Path, seconds_per_tone: float = 1.0, sr: int = 22050, tones: Sequence[float] = TONES_HZ,
                lead_in_s: float = 1.5) -> Path:
    """Quiet room noise for ``lead_in_s`` (the silence gate learns the floor), then one pulsed tone per system."""
    t = np.arange(int(sr * seconds_per_tone)) / sr
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    parts = [0.001 * np.random.default_rng(0).standard_normal(int(sr * lead_in_s))]
    for f in tones:
        # a decaying "note" repeated 4 times a second: the silence gate sees music, not a steady hum
        pulse = np.exp(-((t * 4) % 1.0) * 2.0)
        parts.append(0.4 * np.sin(2 * np.pi * f * t) * env * pulse)
    sf.write(path, np.concatenate(parts).astype(np.float32), sr)
    return path


@dataclass
class ToneResult:
    t: float
    status: str
    pieces: tuple
    position: Any


@dataclass
class _Piece:
    document_id: int
    title: str
    confidence: float


@dataclass
class _Pos:
    document_id: int
    page: int
    system: int
    index: int
    confidence: float


class ToneEngine:
    """Engine double: system i is "recognised" when the frames' strongest band is TONES_HZ[i]'s band."""

    def __init__(self, document_id: int, title: str, system_pages: list[int], fps: float = 20.0,
                 others: Sequence[tuple[int, str, float]] = ()) -> None:
        from companion.audio import filterbank_center_frequencies

        centres = np.asarray(filterbank_center_frequencies())
        self.bands = [int(np.argmin(np.abs(centres - f))) for f in TONES_HZ]
        self.document_id = document_id
        self.title = title
        self.system_pages = system_pages
        self.results: list[ToneResult] = []
        self.others = tuple(_Piece(d, t, c) for d, t, c in others)
        """Runner-up pieces reported with fixed confidences (for a realistic ranked list)."""

    def on_frames(self, frames: np.ndarray, t: float) -> ToneResult | None:
        band = int(np.argmax(frames.mean(axis=0)))
        if band not in self.bands or self.bands.index(band) >= len(self.system_pages):
            r = ToneResult(t, "unsure", (), None)
        else:
            i = self.bands.index(band)
            page = self.system_pages[i]
            on_page = [k for k, p in enumerate(self.system_pages) if p == page].index(i)
            r = ToneResult(t, "identified", (_Piece(self.document_id, self.title, 0.9), *self.others),
                           _Pos(self.document_id, page, on_page, i, 0.9))
        self.results.append(r)
        return r


class NoMicrophone:
    """A sound system without any input device (the 'missing device' case)."""

    class PortAudioError(Exception):
        pass

    default = type("Default", (), {"device": (-1, -1)})()

    def query_hostapis(self) -> list[dict[str, Any]]:
        return [{"name": "ALSA", "devices": [], "default_input_device": -1}]

    def query_devices(self, device: Any = None, kind: str | None = None) -> Any:
        if kind is not None or device is not None:
            raise self.PortAudioError("Error querying device -1")
        return []

    def check_input_settings(self, **_: Any) -> None:
        raise self.PortAudioError("No input device")

    def InputStream(self, **_: Any) -> Any:  # noqa: N802
        raise self.PortAudioError("No input device")


def index_folder(qtbot, window, folder: Path, timeout: int = 60000):
    """Index through the Library view and wait for the run to end."""
    task = window.library.start_indexing([folder])
    assert task is not None
    qtbot.waitUntil(lambda: not window.library.busy, timeout=timeout)
    return task


def versioned_embedder(models_dir: str) -> HashEmbedder:
    """The hash embedder, versioned by the content of the active model file (what activating a model changes)."""
    data = (Path(models_dir) / "snippet.pt").read_bytes()
    return HashEmbedder(version="file-" + hashlib.sha256(data).hexdigest()[:12])
