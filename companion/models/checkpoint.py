"""Self-describing checkpoints.

A checkpoint is a dict of plain Python types and tensors only, so it loads
with ``torch.load(weights_only=True)`` (no pickled code runs when a user opens a
file). Keys:

``format`` ("companion-checkpoint"), ``format_version``, ``kind`` ("snippet" or
"passage"), ``arch`` (the architecture config as a dict), ``state_dict``,
``data`` (summary of the training data), ``recipe`` (training config), ``metrics``
(validation/test numbers), ``companion_version``, ``created`` (ISO date, UTC),
and optionally ``extra`` (e.g. a CCA projection).

Files are written atomically (temporary file + rename) so an interrupted save
never leaves a half-written model in ``models/``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from companion import __version__
from companion.errors import CompanionError
from companion.models.encoders import SnippetModel, SnippetModelConfig
from companion.models.ensemble import SnippetEnsemble, SnippetEnsembleConfig, is_ensemble_arch
from companion.models.passage import PassageModel, PassageModelConfig

FORMAT = "companion-checkpoint"
FORMAT_VERSION = 1
KINDS = ("snippet", "passage")


class CheckpointError(CompanionError):
    """A model file is missing, corrupt or was written by an incompatible version."""


def build_model(kind: str, arch: dict[str, Any]) -> nn.Module:
    """Instantiate an (untrained) model of ``kind`` from its architecture dict."""
    if kind == "snippet":
        if is_ensemble_arch(arch):
            return SnippetEnsemble(SnippetEnsembleConfig.from_dict(arch))
        return SnippetModel(SnippetModelConfig.from_dict(arch))
    if kind == "passage":
        return PassageModel(PassageModelConfig.from_dict(arch))
    raise CheckpointError(f"unknown model kind {kind!r} (expected one of {', '.join(KINDS)})")


def make_checkpoint(
    model: nn.Module,
    *,
    data: dict[str, Any] | None = None,
    recipe: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    kind = getattr(model, "kind", None)
    if kind not in KINDS:
        raise CheckpointError(f"cannot checkpoint a {type(model).__name__}: unknown kind")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "arch": model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "data": data or {},
        "recipe": recipe or {},
        "metrics": metrics or {},
        "extra": extra or {},
        "companion_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; model files are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_checkpoint(model: nn.Module, path: Path, **info: Any) -> dict[str, Any]:
    ckpt = make_checkpoint(model, **info)
    atomic_torch_save(ckpt, path)
    return ckpt


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and validate a checkpoint dict (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for corrupt files
        raise CheckpointError(
            f"model file {path} is corrupt or not a companion model ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}); "
            "retrain it or restore the shipped models/ folder"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a companion model checkpoint")
    version = ckpt.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer companion (checkpoint format {version}, "
            f"this version reads up to {FORMAT_VERSION}); update companion"
        )
    for key in ("kind", "arch", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks {key!r}; the file is incomplete")
    return ckpt


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint in eval mode; returns (model, checkpoint dict)."""
    ckpt = read_checkpoint(path)
    try:
        model = build_model(ckpt["kind"], ckpt["arch"])
        model.load_state_dict(ckpt["state_dict"])
    except CheckpointError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: weights do not match the stored architecture ({str(exc).splitlines()[0]})"
        ) from exc
    model.eval()
    return model, ckpt


def weights_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """A short stable hash of the weights (the ``model_version`` the library stores)."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        buf = io.BytesIO()
        buf.write(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        h.update(buf.getvalue())
    return h.hexdigest()[:16]
