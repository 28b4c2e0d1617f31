"""Tiny rendered pieces, a deterministic toy encoder and libraries built from them.

Why audio and not hand-made scores: the engine's job starts at the
spectrogram, so the tests drive it with real spectrograms of synthetic
piano-like chords (the companion.audio front end) and an encoder that maps
audio to embeddings deterministically. The library's "sheet" embeddings of a
system are the toy encoder's embeddings of a *clean* rendition of that system;
queries are played with another timbre, tempo and noise, as a pianist would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from companion.audio import log_spectrogram
from companion.engine.layout import ArrayLibrary, DocumentInfo

SR = 22050
FPS = 20.0
CHORD_S = 1.0
CHORDS_PER_SYSTEM = 6


@dataclass
class ToyPiece:
    title: str
    chords: list[list[list[int]]]
    """chords[system][i]: MIDI pitches of the i-th chord of that system."""
    pages: list[int]
    """page of each system."""


def make_pieces(n_pieces: int, n_systems: int, seed: int = 0, systems_per_page: int = 3) -> list[ToyPiece]:
    rng = np.random.default_rng(seed)
    pieces = []
    for p in range(n_pieces):
        chords = [[sorted(rng.choice(np.arange(45, 84), size=3, replace=False).tolist())
                   for _ in range(CHORDS_PER_SYSTEM)] for _ in range(n_systems)]
        pieces.append(ToyPiece(f"Piece {p}", chords, [s // systems_per_page for s in range(n_systems)]))
    return pieces


def render(chords: Sequence[Sequence[int]], tempo: float = 1.0, timbre: float = 1.0,
           noise_db: float | None = None, seed: int = 0) -> np.ndarray:
    """Piano-like additive synthesis: decaying partials with amplitude 1/h**timbre."""
    dur = CHORD_S / tempo
    n = int(round(dur * SR))
    t = np.arange(n) / SR
    env = np.exp(-2.5 * t) * np.minimum(1.0, t / 0.005)
    out = []
    for chord in chords:
        x = np.zeros(n)
        for m in chord:
            f = 440.0 * 2 ** ((m - 69) / 12)
            for h in range(1, 5):
                if f * h < SR / 2:
                    x += np.sin(2 * np.pi * f * h * t) / h**timbre
        out.append(0.05 * x * env)
    y = np.concatenate(out) if out else np.zeros(0)
    if noise_db is not None:
        y = y + 10 ** (noise_db / 20) * np.random.default_rng(seed).standard_normal(len(y))
    return y.astype(np.float32)


def spectrogram(audio: np.ndarray) -> np.ndarray:
    return log_spectrogram(audio, sample_rate=SR)


class ToyEncoder:
    """Random projections of the mean log spectrum (snippets 32-d, passages 64-d)."""

    model_version = "toy-1"

    def __init__(self, with_passages: bool = True) -> None:
        rng = np.random.default_rng(1234)
        self.w = rng.standard_normal((92, 32)).astype(np.float32)
        self.wp = rng.standard_normal((92, 64)).astype(np.float32)
        self.passage = object() if with_passages else None

    @staticmethod
    def _feature(spec: np.ndarray) -> np.ndarray:
        m = spec.mean(axis=0)
        m = m - m.mean()
        return m / max(float(np.linalg.norm(m)), 1e-9)

    def embed_audio_excerpts(self, excerpts: np.ndarray) -> np.ndarray:
        feats = np.stack([self._feature(e.T) for e in excerpts])  # excerpts are 92 x 42
        z = feats @ self.w
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)

    def embed_audio_passages(self, spectrograms: Sequence[np.ndarray]) -> np.ndarray:
        feats = np.stack([self._feature(np.asarray(s)) for s in spectrograms])
        z = feats @ self.wp
        return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-9)


def build_library(pieces: Sequence[ToyPiece], encoder: ToyEncoder, with_passages: bool = True) -> ArrayLibrary:
    """Embed a clean rendition of every system: snippets every 0.5 s, one passage per system."""
    docs, pages, snippets, passages = [], [], [], []
    for i, piece in enumerate(pieces):
        docs.append(DocumentInfo(id=10 + i, path=f"/scores/piece{i}.pdf", title=piece.title))
        pages.append(piece.pages)
        sys_snips, sys_pass = [], []
        for chords in piece.chords:
            spec = spectrogram(render(chords))
            starts = range(0, max(1, len(spec) - 42 + 1), 10)
            ex = np.stack([spec[s : s + 42].T for s in starts if s + 42 <= len(spec)])
            sys_snips.append(encoder.embed_audio_excerpts(ex))
            sys_pass.append(encoder.embed_audio_passages([spec])[0])
        snippets.append(sys_snips)
        passages.append(np.stack(sys_pass))
    return ArrayLibrary(docs, pages, snippets, passages if with_passages else None, model_version="toy-1")


def perform(pieces: Sequence[ToyPiece], path: Sequence[tuple[int, int]], tempo: float = 0.9,
            timbre: float = 1.6, noise_db: float = -50.0, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Play systems in the order ``path`` [(piece, system), ...]; returns (audio, truth per frame).

    ``truth[f]`` is the flat (piece, system) code ``piece * 1000 + system`` of frame f.
    """
    chords = [c for p, s in path for c in pieces[p].chords[s]]
    audio = render(chords, tempo=tempo, timbre=timbre, noise_db=noise_db, seed=seed)
    sys_s = CHORDS_PER_SYSTEM * CHORD_S / tempo
    n_frames = len(spectrogram(audio))
    times = np.arange(n_frames) / FPS
    idx = np.minimum((times // sys_s).astype(int), len(path) - 1)
    codes = np.array([p * 1000 + s for p, s in path])
    return audio, codes[idx]
