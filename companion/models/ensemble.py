"""Several independently trained snippet models used as one.

Why: two snippet networks trained from different starting points (the shipped
recipe from scratch, and the same recipe from a SimCLR-pre-trained sheet
pathway) put different wrong snippets near a query. The cosine of two
concatenated unit embeddings, each scaled by 1/sqrt(n), is the mean of the
members' cosines, so searching with the concatenation averages their similarity
matrices and the wrong neighbours they do not share fall back (docs/benchmarks.md,
"Two snippet models as one").

To the rest of the app an ensemble is a snippet model like any other: one
self-describing file of kind ``"snippet"`` whose ``arch`` is
``{"members": [member arch, ...]}``, with ``embed_sheet``/``embed_audio``.
Each member keeps the CCA projection it was shipped with (buffers in the
ensemble's weights, identity for a member without one): on 2026-12-07 one CCA
fitted over the joint 64-d embedding instead lowered test MRR below the plain
concatenation (0.267 vs 0.295), where the members' own CCAs raised it to 0.347.
``companion ensemble`` builds one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from companion.models.encoders import SnippetModel, SnippetModelConfig


@dataclass(frozen=True)
class SnippetEnsembleConfig:
    members: tuple[SnippetModelConfig, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SnippetEnsembleConfig":
        members = data.get("members")
        if not isinstance(members, list) or len(members) < 2:
            raise ValueError("a snippet ensemble needs a list of at least two member architectures")
        return cls(members=tuple(SnippetModelConfig.from_dict(m) for m in members))


def is_ensemble_arch(arch: dict[str, Any]) -> bool:
    return isinstance(arch, dict) and "members" in arch


class SnippetEnsemble(nn.Module):
    """Member snippet models; embeddings are their unit vectors concatenated, scaled by 1/sqrt(n)."""

    kind = "snippet"

    def __init__(self, cfg: SnippetEnsembleConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(SnippetModel(c) for c in cfg.members)
        self._scale = 1.0 / math.sqrt(len(cfg.members))
        for i, c in enumerate(cfg.members):  # each member's CCA (identity: none), part of the weights
            d = int(c.sheet.embed_dim)
            for side in ("x", "y"):
                self.register_buffer(f"cca{i}_{side}_mean", torch.zeros(d))
                self.register_buffer(f"cca{i}_{side}_proj", torch.eye(d))

    def set_member_cca(self, i: int, cca: dict[str, torch.Tensor]) -> None:
        """Install member ``i``'s CCA (``x``: audio side, ``y``: sheet side, as ``fit_cca`` returns it)."""
        for key in ("x_mean", "x_proj", "y_mean", "y_proj"):
            getattr(self, f"cca{i}_{key}").copy_(cca[key].to(torch.float32))

    def _project(self, i: int, side: str, z: torch.Tensor) -> torch.Tensor:
        out = (z - getattr(self, f"cca{i}_{side}_mean")) @ getattr(self, f"cca{i}_{side}_proj")
        return F.normalize(out, dim=-1)

    @property
    def embed_dim(self) -> int:
        return sum(int(c.sheet.embed_dim) for c in self.cfg.members)

    def embed_sheet(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 80, 100) uint8 or float [0, 1] -> (N, sum of member dims) unit vectors."""
        return torch.cat([self._project(i, "y", m.embed_sheet(x)) for i, m in enumerate(self.members)], dim=1) * self._scale

    def embed_audio(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 92, 42) spectrogram excerpts -> (N, sum of member dims) unit vectors."""
        return torch.cat([self._project(i, "x", m.embed_audio(x)) for i, m in enumerate(self.members)], dim=1) * self._scale

    def forward(self, sheet: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_sheet(sheet), self.embed_audio(audio)


def build_ensemble(member_paths: Sequence[Path], out: Path, metrics: dict[str, Any] | None = None,
                   member_cca: bool = True) -> dict[str, Any]:
    """Write one ensemble checkpoint from member snippet checkpoints; returns the checkpoint.

    The members' weights are copied as they are, each with the CCA it carries
    (``member_cca=False``: without). Each member's data
    summary, recipe and validation metrics go into the ensemble's ``data`` and
    ``recipe`` so the file still says what it was trained on.
    """
    from companion.models.checkpoint import CheckpointError, atomic_torch_save, make_checkpoint, read_checkpoint, weights_hash

    if len(member_paths) < 2:
        raise CheckpointError("an ensemble needs at least two snippet models")
    ckpts = [read_checkpoint(Path(p)) for p in member_paths]
    for p, c in zip(member_paths, ckpts):
        if c["kind"] != "snippet" or is_ensemble_arch(c["arch"]):
            raise CheckpointError(f"{p} is not a single snippet model (kind {c['kind']})")
    cfg = SnippetEnsembleConfig(members=tuple(SnippetModelConfig.from_dict(c["arch"]) for c in ckpts))
    model = SnippetEnsemble(cfg)
    for i, (member, c, p) in enumerate(zip(model.members, ckpts, member_paths)):
        try:
            member.load_state_dict(c["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(f"{p}: weights do not match its architecture ({str(exc).splitlines()[0]})") from exc
        cca = (c.get("extra") or {}).get("cca")
        if member_cca and cca is not None:
            model.set_member_cca(i, cca)
    described = [{"file": Path(p).name, "version": weights_hash(c["state_dict"]), "created": c.get("created"),
                  "data": c.get("data", {}), "valid": (c.get("metrics") or {}).get("valid"),
                  "cca_fit": (c.get("extra") or {}).get("cca_fit") if member_cca else None}
                 for p, c in zip(member_paths, ckpts)]
    ckpt = make_checkpoint(model.eval(), data={"members": described},
                           recipe={"mode": "snippet-ensemble", "members": [c.get("recipe", {}) for c in ckpts]},
                           metrics=metrics or {})
    atomic_torch_save(ckpt, Path(out))
    return ckpt
