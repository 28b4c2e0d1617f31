"""Training losses for the cross-modal encoders.

* :func:`cosine_hinge_loss` — Dorfer et al. (2018): for matching pairs (a_i, s_i)
  and every other item of the batch as negative, ``max(0, margin - cos(a_i, s_i)
  + cos(a_i, s_j))`` in both directions (audio->sheet and sheet->audio).
* :func:`hardest_negative_hinge_loss` — the same hinge on only the hardest
  in-batch negative of each anchor (Faghri et al., VSE++, 2018): once most
  negatives are beyond the margin, the mean hinge is carried by a few of them and
  diluted by all the rest; the maximum keeps the gradient on the confusable ones.
* :func:`cross_modal_info_nce` — the same in-batch negatives scored with a softmax
  (CLIP-style, both directions): every negative keeps a gradient in proportion to
  how confusable it is, where the hinge's gradient vanishes once the margin holds.
* :func:`nt_xent_loss` — SimCLR's normalised temperature-scaled cross entropy
  for self-supervised pre-training on two augmented views.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def cosine_hinge_loss(a: torch.Tensor, b: torch.Tensor, margin: float = 0.7) -> torch.Tensor:
    """Mean pairwise hinge over in-batch negatives, both directions. a, b: (N, D) unit vectors."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"expected two (N, D) tensors of equal shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    if n < 2:
        raise ValueError("the hinge loss needs at least two pairs per batch (negatives)")
    sim = a @ b.t()
    pos = sim.diagonal()
    off = ~torch.eye(n, dtype=torch.bool, device=sim.device)
    loss_ab = F.relu(margin - pos.unsqueeze(1) + sim)[off]  # row i: anchor a_i, negatives b_j
    loss_ba = F.relu(margin - pos.unsqueeze(0) + sim)[off]  # column j: anchor b_j, negatives a_i
    return 0.5 * (loss_ab.mean() + loss_ba.mean())


def hardest_negative_hinge_loss(a: torch.Tensor, b: torch.Tensor, margin: float = 0.7) -> torch.Tensor:
    """Hinge on the hardest in-batch negative of every anchor, both directions. a, b: (N, D) unit vectors."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"expected two (N, D) tensors of equal shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    if n < 2:
        raise ValueError("the hinge loss needs at least two pairs per batch (negatives)")
    sim = a @ b.t()
    pos = sim.diagonal()
    neg = sim.masked_fill(torch.eye(n, dtype=torch.bool, device=sim.device), float("-inf"))
    loss_ab = F.relu(margin - pos + neg.max(dim=1).values)  # anchor a_i: its most similar wrong b_j
    loss_ba = F.relu(margin - pos + neg.max(dim=0).values)  # anchor b_j: its most similar wrong a_i
    return 0.5 * (loss_ab.mean() + loss_ba.mean())


def cross_modal_info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric cross entropy over the cosine-similarity matrix (a_i matches b_i). a, b: (N, D) unit vectors."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"expected two (N, D) tensors of equal shape, got {a.shape} and {b.shape}")
    if a.shape[0] < 2:
        raise ValueError("the contrastive loss needs at least two pairs per batch (negatives)")
    logits = a @ b.t() / temperature
    targets = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """SimCLR NT-Xent over 2N views; z1[i] and z2[i] are two views of item i."""
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"expected two (N, D) tensors of equal shape, got {z1.shape} and {z2.shape}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=-1)
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)
