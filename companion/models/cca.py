"""Optional CCA refit of the embedding space (Dorfer et al. 2018, section on CCA).

After training, a linear CCA fitted on held-out (audio, sheet) embedding pairs
maps both modalities into maximally correlated coordinates; Dorfer et al. report
a small retrieval gain. The projection is stored in the checkpoint's ``extra``
and applied by :class:`~companion.models.embedder.Embedder`.
"""

from __future__ import annotations

import numpy as np
import torch


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
    out = (z - mean.numpy()) @ proj.numpy()
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
