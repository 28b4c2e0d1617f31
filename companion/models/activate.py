"""Installing a newly trained model: compare it with the active one, activate it, restore the previous one.

Why a core module: the training tab, the command line and tests all need the
same safe file handling. Activation copies the checkpoint into ``models/`` under
the name the app loads (``snippet.pt`` / ``passage.pt``) with a temporary file
and one rename, so the app (and an indexing process reading the file at the same
moment) only ever sees the old or the new model, never half of one. The model it
replaces is first copied to ``models/previous/<kind>.pt`` so one click brings it
back (restoring swaps the two, so a restore can be undone too). A changed model
changes :attr:`companion.models.embedder.Embedder.model_version`, which makes the
library re-embed its documents on the next indexing run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from companion.models.checkpoint import CheckpointError, load_model, weights_hash

ACTIVE_FILES = {"snippet": "snippet.pt", "passage": "passage.pt"}
"""The file the app loads for each model kind (see :mod:`companion.models.embedder`)."""
PREVIOUS_DIR = "previous"
"""Sub-folder of the models folder that keeps the model an activation replaced."""
ACTIVATABLE_MODES = ("snippet", "passage")
"""Training modes whose best model is a complete cross-modal model (pre-training yields only one encoder)."""

METRIC_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("MRR (mean)", ("score",)),
    ("audio → sheet MRR", ("audio_to_sheet", "MRR")),
    ("audio → sheet R@1", ("audio_to_sheet", "R@1")),
    ("audio → sheet R@10", ("audio_to_sheet", "R@10")),
    ("audio → sheet median rank", ("audio_to_sheet", "median_rank")),
    ("sheet → audio MRR", ("sheet_to_audio", "MRR")),
    ("sheet → audio R@1", ("sheet_to_audio", "R@1")),
    ("sheet → audio R@10", ("sheet_to_audio", "R@10")),
    ("validation items", ("audio_to_sheet", "n")),
)
"""(label, key path into the checkpoint's ``metrics["valid"]``) shown side by side."""


@dataclass(frozen=True)
class ModelInfo:
    """What the user needs to judge a model file, read from its checkpoint."""

    path: Path
    kind: str
    mode: str
    created: str
    epoch: int | None
    version: str
    """Short hash of the weights (what the library stores as part of its model version)."""
    valid: dict[str, Any]
    validation_data: str
    """Where the validation metrics were measured (training data folder + number of held-out items)."""
    training_data: str


@dataclass(frozen=True)
class Comparison:
    """A candidate next to the active model of the same kind."""

    candidate: ModelInfo
    current: ModelInfo | None
    rows: list[tuple[str, str, str]]
    """(metric, candidate value, current value); "—" where a model did not record it."""
    same_validation: bool
    """True only when both were validated on the same data, so their numbers are comparable."""
    better: bool | None
    """Candidate's mean validation MRR above the current one's (None: not comparable or not recorded)."""


@dataclass(frozen=True)
class Activation:
    kind: str
    installed: Path
    backup: Path | None
    """Where the replaced model was kept (None: no model of this kind was installed)."""
    old_version: str | None
    new_version: str


def _lookup(d: Any, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "—"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if abs(v) >= 10:
            return f"{v:.0f}"
        return f"{v:.3g}" if abs(v) > 1 else f"{v:.3f}"  # ranks (> 1) vs rates and MRR (<= 1)
    return "—"


def describe_model(path: Path) -> ModelInfo:
    """Read a checkpoint (and check that its weights fit its architecture) into a :class:`ModelInfo`."""
    path = Path(path)
    _, ckpt = load_model(path)
    recipe = ckpt.get("recipe") or {}
    metrics = ckpt.get("metrics") or {}
    data = ckpt.get("data") or {}
    valid = metrics.get("valid") if isinstance(metrics.get("valid"), dict) else {}
    mode = str(recipe.get("mode") or ckpt["kind"])
    vdata = ""
    if recipe.get("data"):
        vdata = f"{recipe['data']} ({recipe.get('valid_pairs', '?')} held-out items, seed {recipe.get('seed', '?')})"
    epoch = metrics.get("epoch")
    return ModelInfo(
        path=path,
        kind=str(ckpt["kind"]),
        mode=mode,
        created=str(ckpt.get("created", "")),
        epoch=int(epoch) if isinstance(epoch, int) else None,
        version=weights_hash(ckpt["state_dict"]),
        valid=valid,
        validation_data=vdata,
        training_data=str(data.get("source", "") if isinstance(data, dict) else ""),
    )


def active_model_path(models_dir: Path, kind: str) -> Path:
    if kind not in ACTIVE_FILES:
        raise CheckpointError(f"unknown model kind {kind!r} (expected one of {', '.join(ACTIVE_FILES)})")
    return Path(models_dir) / ACTIVE_FILES[kind]


def previous_model_path(models_dir: Path, kind: str) -> Path:
    return Path(models_dir) / PREVIOUS_DIR / active_model_path(models_dir, kind).name


def compare_with_active(candidate: Path, models_dir: Path) -> Comparison:
    """The candidate's validation metrics next to those of the active model of its kind."""
    cand = describe_model(candidate)
    active = active_model_path(models_dir, cand.kind)
    current = describe_model(active) if active.is_file() else None
    rows = []
    for label, keys in METRIC_ROWS:
        a = _lookup(cand.valid, keys)
        b = _lookup(current.valid, keys) if current else None
        if a is None and b is None:
            continue
        rows.append((label, _fmt(a), _fmt(b)))
    def epoch(info: ModelInfo | None) -> str:  # stored 0-based; shown as the curves count (from 1)
        return _fmt(info.epoch + 1) if info is not None and info.epoch is not None else "—"

    rows.append(("best epoch", epoch(cand), epoch(current)))
    rows.append(("created", cand.created[:10] or "—", (current.created[:10] or "—") if current else "—"))
    same = bool(current and cand.validation_data and cand.validation_data == current.validation_data)
    better = None
    a, b = _lookup(cand.valid, ("score",)), _lookup(current.valid, ("score",)) if current else None
    if same and isinstance(a, (int, float)) and isinstance(b, (int, float)):
        better = float(a) > float(b)
    return Comparison(cand, current, rows, same, better)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to a temporary file beside ``dst``, flush it to disk, rename it over ``dst``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(dst.parent)


def _writable(models_dir: Path) -> None:
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create the models folder {models_dir}: {exc}") from exc
    if not os.access(models_dir, os.W_OK):
        raise CheckpointError(f"the models folder {models_dir} is not writable; choose another one in "
                              "Settings (Model folder) or fix its permissions")


def activate_model(candidate: Path, models_dir: Path) -> Activation:
    """Make ``candidate`` the active model of its kind; the replaced one goes to ``models/previous/``.

    The candidate is fully loaded first (a corrupt or mismatched file is refused
    before anything changes). Pre-trained single encoders (SimCLR runs) are
    refused: they are a starting point for fine-tuning, not a usable model.
    """
    candidate, models_dir = Path(candidate), Path(models_dir)
    info = describe_model(candidate)
    if info.mode not in ACTIVATABLE_MODES:
        raise CheckpointError(f"{candidate} comes from a '{info.mode}' pre-training run: it trains one encoder "
                              "only. Fine-tune a snippet or passage model from it and activate that instead.")
    _writable(models_dir)
    target = active_model_path(models_dir, info.kind)
    try:
        if target.resolve() == candidate.resolve():
            raise CheckpointError(f"{candidate} is already the active {info.kind} model")
    except OSError:
        pass
    old_version: str | None = None
    backup: Path | None = None
    try:
        if target.is_file():
            try:
                old_version = describe_model(target).version
            except CheckpointError:
                old_version = None  # a broken active model is still kept, so nothing is lost
            backup = previous_model_path(models_dir, info.kind)
            _atomic_copy(target, backup)  # the active file stays in place until the final rename
        _atomic_copy(candidate, target)
    except OSError as exc:
        raise CheckpointError(f"activating {candidate.name} failed, the active model is unchanged: {exc}") from exc
    return Activation(info.kind, target, backup, old_version, info.version)


def restore_previous(models_dir: Path, kind: str = "snippet") -> Activation:
    """Swap the active model of ``kind`` with the one kept in ``models/previous/`` (undoable the same way)."""
    models_dir = Path(models_dir)
    backup = previous_model_path(models_dir, kind)
    if not backup.is_file():
        raise CheckpointError(f"no previous {kind} model is kept in {backup.parent}: nothing to restore")
    info = describe_model(backup)
    _writable(models_dir)
    target = active_model_path(models_dir, kind)
    old_version: str | None = None
    try:
        if target.is_file():
            try:
                old_version = describe_model(target).version
            except CheckpointError:
                old_version = None
            swap = backup.with_name(f".{backup.name}.restoring")
            _atomic_copy(backup, swap)          # 1. keep the model to restore aside
            _atomic_copy(target, backup)        # 2. the active one becomes "previous"
            os.replace(swap, target)            # 3. one rename activates the restored model
            _fsync_dir(target.parent)
        else:
            _atomic_copy(backup, target)
            backup.unlink()
    except OSError as exc:
        raise CheckpointError(f"restoring the previous {kind} model failed: {exc}") from exc
    return Activation(kind, target, backup if backup.is_file() else None, old_version, info.version)
