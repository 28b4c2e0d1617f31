"""Run-time embedding with the shipped models in ``models/`` (no download).

``models/snippet.pt`` (required) and ``models/passage.pt`` (optional) are the
active models. :attr:`Embedder.model_version` is a short hash of their weights:
the library stores it with every index so a changed model triggers re-indexing.
Live use calls ``Embedder(..., threads=1)`` so embedding never competes with
audio capture for cores.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from companion.errors import CompanionError
from companion.models.cca import apply_cca
from companion.models.checkpoint import load_model, weights_hash
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE, SnippetModel
from companion.models.ensemble import SnippetEnsemble
from companion.models.passage import PASSAGE_AUDIO_SHAPE, PassageModel, cut_windows

SNIPPET_FILE = "snippet.pt"
PASSAGE_FILE = "passage.pt"


class ModelNotFoundError(CompanionError):
    """No trained model is installed where the app looks for one."""


def _check(x: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == len(shape) - 1:
        x = x[None]
    if x.ndim != len(shape) or tuple(x.shape[1:]) != shape[1:]:
        raise CompanionError(f"{what}: expected shape (N, {', '.join(map(str, shape[1:]))}), got {x.shape}")
    if x.dtype != np.uint8 and not np.all(np.isfinite(x)):
        raise CompanionError(f"{what}: input contains NaN or infinite values")
    return x


def _tensors_hash(d: dict) -> str:
    return weights_hash({k: v for k, v in d.items() if isinstance(v, torch.Tensor)})


class Embedder:
    """Embeds sheet snippets, audio excerpts and passages with the active models."""

    def __init__(
        self,
        models_dir: Path,
        threads: int | None = None,
        batch_size: int = 256,
        use_cca: bool = True,
        snippet_file: str = SNIPPET_FILE,
        passage_file: str = PASSAGE_FILE,
    ) -> None:
        self.models_dir = Path(models_dir)
        snippet_path = self.models_dir / snippet_file
        if not snippet_path.is_file():
            raise ModelNotFoundError(
                f"no snippet model at {snippet_path}; the shipped models/ folder is missing "
                "(reinstall companion or train one with `companion train`)"
            )
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        self.batch_size = batch_size
        self._lock = threading.Lock()
        model, ckpt = load_model(snippet_path)
        if not isinstance(model, (SnippetModel, SnippetEnsemble)):
            raise ModelNotFoundError(f"{snippet_path} holds a {ckpt['kind']} model, not a snippet model")
        self.snippet: SnippetModel | SnippetEnsemble = model
        self.snippet_info = ckpt
        self.cca = ckpt.get("extra", {}).get("cca") if use_cca else None
        self.passage: PassageModel | None = None
        self.passage_info: dict | None = None
        self.passage_cca: dict | None = None
        passage_path = self.models_dir / passage_file
        hashes = [weights_hash(ckpt["state_dict"])]
        if passage_path.is_file():
            pmodel, pckpt = load_model(passage_path)
            if isinstance(pmodel, PassageModel):
                self.passage, self.passage_info = pmodel, pckpt
                hashes.append(weights_hash(pckpt["state_dict"]))
                self.passage_cca = (pckpt.get("extra") or {}).get("cca") if use_cca else None
        # the projections themselves, not just their presence: a refitted CCA re-embeds the library
        if self.cca is not None:
            hashes.append("cca:" + _tensors_hash(self.cca))
        if self.passage_cca is not None:
            hashes.append("passage-cca:" + _tensors_hash(self.passage_cca))
        self.model_version = hashlib.sha256("/".join(hashes).encode()).hexdigest()[:16]

    @property
    def snippet_dim(self) -> int:
        return int(self.snippet.embed_dim)

    def _batched(self, fn, x: np.ndarray) -> np.ndarray:
        outs = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(x), self.batch_size):
                outs.append(fn(torch.from_numpy(np.ascontiguousarray(x[i : i + self.batch_size]))).numpy())
        if not outs:
            return np.zeros((0, self.snippet_dim), np.float32)
        return np.concatenate(outs).astype(np.float32)

    def embed_sheet_snippets(self, snippets: np.ndarray) -> np.ndarray:
        """(N, 80, 100) uint8 (255 = paper) or float in [0, 1] -> (N, 32) unit vectors."""
        x = _check(snippets, (0, *SHEET_SHAPE), "sheet snippets")
        if x.dtype != np.uint8:
            x = x.astype(np.float32)
        z = self._batched(self.snippet.embed_sheet, x)
        if self.cca is not None and len(z):
            z = apply_cca(z, self.cca["y_mean"], self.cca["y_proj"])
        return z

    def embed_audio_excerpts(self, excerpts: np.ndarray) -> np.ndarray:
        """(N, 92, 42) log-filtered spectrogram excerpts -> (N, 32) unit vectors."""
        x = _check(excerpts, (0, *AUDIO_SHAPE), "audio excerpts").astype(np.float32)
        z = self._batched(self.snippet.embed_audio, x)
        if self.cca is not None and len(z):
            z = apply_cca(z, self.cca["x_mean"], self.cca["x_proj"])
        return z

    def _require_passage(self) -> PassageModel:
        if self.passage is None:
            raise ModelNotFoundError(f"no passage model at {self.models_dir / PASSAGE_FILE}")
        return self.passage

    def embed_sheet_passages(self, passages: Sequence[np.ndarray]) -> np.ndarray:
        """One item per system -> (P, 64) unit vectors.

        An item is either a snippet sequence ``(n, 80, 100)`` (uint8, 255 = paper, or
        float in [0, 1]) as the library cuts them (hop 25 px at this scale), or a whole
        80-px strip ``(80, W)``, which is cut into windows with the model's hop.
        """
        model = self._require_passage()
        h, w = model.cfg.sheet.input_shape
        seqs = []
        for item in passages:
            s = np.asarray(item)
            t = torch.from_numpy(s.astype(np.float32) / 255.0 if s.dtype == np.uint8 else s.astype(np.float32))
            if s.ndim == 3 and s.shape[1:] == (h, w) and len(s) > 0:
                seqs.append(1.0 - t)
            elif s.ndim == 2 and s.shape[0] == h:
                seqs.append(cut_windows(1.0 - t, w, model.cfg.sheet_hop))  # ink map; pads as paper
            else:
                raise CompanionError(
                    f"sheet passage: expected (n, {h}, {w}) snippets or a {h}-px high strip, got {s.shape}"
                )
        return self._passage_cca(self._embed_sequences(lambda x, n: model.sheet(x, n), seqs, model.cfg.embed_dim), "y")

    def embed_audio_passages(self, spectrograms: Sequence[np.ndarray]) -> np.ndarray:
        """Spectrograms ``(frames, 92)`` (log-filtered, as the audio module gives them) -> (N, 64)."""
        model = self._require_passage()
        bins = PASSAGE_AUDIO_SHAPE[0]
        seqs = []
        for spec in spectrograms:
            s = np.asarray(spec, dtype=np.float32)
            if s.ndim != 2 or bins not in s.shape:
                raise CompanionError(f"audio passage: expected a (frames, {bins}) spectrogram, got {s.shape}")
            if s.shape[1] == bins:
                s = s.T
            if not np.all(np.isfinite(s)):
                raise CompanionError("audio passage: spectrogram contains NaN or infinite values")
            seqs.append(cut_windows(torch.from_numpy(np.ascontiguousarray(s)), PASSAGE_AUDIO_SHAPE[1], model.cfg.audio_hop))
        return self._passage_cca(self._embed_sequences(lambda x, n: model.audio(x, n), seqs, model.cfg.embed_dim), "x")

    def project_audio_passages(self, z: np.ndarray) -> np.ndarray:
        """The passage model's CCA projection of raw audio passage embeddings (identity without one).

        Why public: the engine's incremental passage embedding
        (:class:`~companion.engine.passage_cache.PassageCache`) runs the network's
        parts itself and must land in the same space as the library's passages."""
        return self._passage_cca(np.asarray(z, np.float32), "x")

    def _passage_cca(self, z: np.ndarray, side: str) -> np.ndarray:
        if self.passage_cca is None or not len(z):
            return z
        return apply_cca(z, self.passage_cca[f"{side}_mean"], self.passage_cca[f"{side}_proj"])

    def _embed_sequences(self, fn, seqs: list[torch.Tensor], dim: int) -> np.ndarray:
        if not seqs:
            return np.zeros((0, dim), np.float32)
        out = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(seqs), 32):
                chunk = seqs[i : i + 32]
                x, lengths = pad_sequences(chunk)
                out.append(fn(x, lengths).numpy())
        return np.concatenate(out).astype(np.float32)


def pad_sequences(seqs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (T_i, H, W) sequences into (B, T_max, H, W) with zero padding and lengths."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    t = int(lengths.max())
    x = torch.zeros(len(seqs), t, *seqs[0].shape[1:], dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x, lengths
