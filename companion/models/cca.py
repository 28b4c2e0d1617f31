"""Optional CCA refit of the embedding space (Dorfer et al. 2018, section on CCA).

After training, a linear CCA fitted on (audio, sheet) embedding pairs maps both
modalities into maximally correlated coordinates; Dorfer et al. report a small
retrieval gain. The projection is stored in the checkpoint's ``extra`` (with a
summary of the fit, ``cca_fit``), applied by
:class:`~companion.models.embedder.Embedder` and by ``companion eval``; ``companion
cca`` fits it (:func:`refit_checkpoint`), for snippet and passage models.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from companion.training.data import PairSet, PassageSet


def fit_cca(x: np.ndarray, y: np.ndarray, reg: float = 1e-3) -> dict[str, torch.Tensor]:
    """Fit CCA on paired rows of x (N, D) and y (N, D); returns means and projections."""
    if x.shape[0] != y.shape[0] or x.shape[0] < 2 * max(x.shape[1], y.shape[1]):
        raise ValueError("CCA needs paired rows, at least twice as many as dimensions")
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    n = x.shape[0] - 1
    sxx = xc.T @ xc / n + reg * np.eye(x.shape[1])
    syy = yc.T @ yc / n + reg * np.eye(y.shape[1])
    sxy = xc.T @ yc / n

    def inv_sqrt(m: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(m)
        return v @ np.diag(1.0 / np.sqrt(np.maximum(w, 1e-12))) @ v.T

    ix, iy = inv_sqrt(sxx), inv_sqrt(syy)
    u, s, vt = np.linalg.svd(ix @ sxy @ iy)
    k = min(x.shape[1], y.shape[1])
    wx = ix @ u[:, :k]
    wy = iy @ vt.T[:, :k]
    return {
        "x_mean": torch.from_numpy(mx.astype(np.float32)),
        "x_proj": torch.from_numpy(wx.astype(np.float32)),
        "y_mean": torch.from_numpy(my.astype(np.float32)),
        "y_proj": torch.from_numpy(wy.astype(np.float32)),
        "corr": torch.from_numpy(s[:k].astype(np.float32)),
    }


def apply_cca(z: np.ndarray, mean: torch.Tensor, proj: torch.Tensor) -> np.ndarray:
    """Project embeddings into the CCA space and re-normalise (cosine retrieval as before)."""
    out = (z - mean.numpy()) @ proj.numpy()
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


REGS = (1e-5, 1e-4, 1e-3, 1e-2)
"""Ridges tried when none is given (embeddings are unit vectors: per-dimension variance ~1/32)."""


def _mean_mrr(za: np.ndarray, zs: np.ndarray) -> float:
    from companion.evaluation.metrics import cross_modal_ranks

    r_as, r_sa = cross_modal_ranks(za.astype(np.float32), zs.astype(np.float32))
    return float((np.mean(1.0 / r_as) + np.mean(1.0 / r_sa)) / 2)


class _Data:
    """What a refit needs from a model and its data: row indices per split and embeddings of rows."""

    def __init__(self, ckpt: dict[str, Any], data: Any, batch: int) -> None:
        from companion.errors import CompanionError
        from companion.models.checkpoint import build_model
        from companion.training.data import PairSet, PassageSet

        model = build_model(ckpt["kind"], ckpt["arch"])
        model.load_state_dict(ckpt["state_dict"])
        self.model = model.eval()
        self.kind = ckpt["kind"]
        self.batch = batch
        if self.kind == "snippet":
            self.pairs = data if isinstance(data, PairSet) else PairSet.load(Path(data), mmap=True)
            self.piece = self.pairs.piece
            self.dim = int(getattr(self.model, "embed_dim"))
        elif self.kind == "passage":
            from companion.training.config import TrainConfig
            from companion.training.trainer import PassageTask

            if isinstance(data, PassageSet):
                self.passages = data
            else:
                folder = Path(data) / "passages" if (Path(data) / "passages").is_dir() else Path(data)
                self.passages = PassageSet.load(folder)
            self.piece = self.passages.piece
            self.task = PassageTask.__new__(PassageTask)  # only its sequence cutting
            self.task.cfg = TrainConfig(mode="passage", batch_size=2)
            self.task.passages, self.task.model = self.passages, self.model
            self.dim = int(ckpt["arch"]["embed_dim"])
        else:
            raise CompanionError(f"no CCA for {self.kind} models")

    def indices(self, split: str) -> np.ndarray:
        return (self.pairs if self.kind == "snippet" else self.passages).indices(split)

    def embed(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(audio, sheet) embeddings of ``rows``, as evaluation embeds them (centred, no augmentation)."""
        za, zs = [], []
        with torch.inference_mode():
            if self.kind == "snippet":
                for i in range(0, len(rows), self.batch):
                    r = rows[i : i + self.batch]
                    za.append(self.model.embed_audio(torch.from_numpy(np.asarray(self.pairs.centre_audio(r), np.float32))).numpy())
                    zs.append(self.model.embed_sheet(torch.from_numpy(np.ascontiguousarray(self.pairs.centre_sheet(r)))).numpy())
            else:
                for i in range(0, len(rows), 32):
                    (s, ls), (a, la) = self.task.sequences(rows[i : i + 32], None, False)
                    za.append(self.model.audio(a, la).numpy())
                    zs.append(self.model.sheet(s, ls).numpy())
        if not za:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, self.dim), np.float32)
        return np.concatenate(za), np.concatenate(zs)


def refit_checkpoint(
    model_path: Path,
    data_dir: "Path | PairSet | PassageSet",
    out_path: Path | None = None,
    split: str = "train",
    max_items: int = 60000,
    reg: float | None = None,
    seed: int = 0,
    batch: int = 512,
    valid_split: str = "valid",
    valid_items: int = 2000,
) -> dict[str, Any]:
    """Fit CCA on the (audio, sheet) items of ``split`` and write the checkpoint with it.

    Items: a snippet model's centred pairs (``data_dir`` a prepared pairs folder or a
    loaded ``PairSet``) or a passage model's system passages (the pairs folder's
    ``passages/``, a passages folder or a loaded ``PassageSet``). Why the training split by default: the fit wants many items (on
    2026-12-07, 20,000 training pairs gave test snippet MRR 0.306 where the 4,080
    validation pairs gave 0.287, from 0.277 without CCA). ``reg=None`` picks the ridge
    among :data:`REGS` by the MRR (both directions) on up to ``valid_items`` items of
    ``valid_split``; the summary records that MRR without CCA and for each ridge, so
    the file says what the projection bought. The raw network embeds (a CCA already
    in the file is replaced), the weights are untouched; returns the summary.
    """
    from companion.errors import CompanionError
    from companion.models.checkpoint import atomic_torch_save, read_checkpoint

    ckpt = read_checkpoint(model_path)
    data = _Data(ckpt, data_dir, batch)
    where = str(data_dir) if isinstance(data_dir, (str, Path)) else "the run's data"
    idx = data.indices(split)
    if len(idx) > max_items:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_items, replace=False))
    what = "pairs" if data.kind == "snippet" else "passages"
    if len(idx) < 2 * data.dim:
        raise CompanionError(f"split {split!r} of {where} has {len(idx)} {what}; "
                             f"CCA needs at least {2 * data.dim}")
    za, zs = data.embed(idx)
    fit: dict[str, Any] = {"data_dir": where, "kind": data.kind, "split": split, "items": int(len(idx)),
                           "pieces": int(len(np.unique(data.piece[idx]))), "seed": int(seed)}
    if reg is None:
        vidx = data.indices(valid_split)
        if len(vidx) > valid_items:
            vidx = np.sort(np.random.default_rng(seed + 1).choice(vidx, size=valid_items, replace=False))
        if len(vidx) < 2:
            raise CompanionError(f"no {valid_split!r} {what} in {where} to choose the ridge on; give reg")
        va, vs = data.embed(vidx)
        scores = {"none": _mean_mrr(va, vs)}
        for r in REGS:
            c = fit_cca(za, zs, r)
            scores[f"{r:g}"] = _mean_mrr(apply_cca(va, c["x_mean"], c["x_proj"]), apply_cca(vs, c["y_mean"], c["y_proj"]))
        reg = max(REGS, key=lambda r: scores[f"{r:g}"])
        fit["valid"] = {"split": valid_split, "items": int(len(vidx)),
                        "mrr": {k: round(v, 4) for k, v in scores.items()}}
    cca = fit_cca(za, zs, reg)
    corr = cca["corr"].numpy()
    fit.update({"reg": float(reg), "corr_top": [round(float(c), 4) for c in corr[:4]],
                "corr_mean": round(float(corr.mean()), 4)})
    extra = dict(ckpt.get("extra") or {})
    extra["cca"] = cca
    extra["cca_fit"] = fit
    ckpt["extra"] = extra
    atomic_torch_save(ckpt, Path(out_path) if out_path is not None else Path(model_path))
    return fit
