"""Opening an engine on a library folder with the shipped model and its fitted parameters.

Why the parameters live next to the model (``models/engine.json``): the
follower's thresholds are in the model's cosine units, so they are fitted per
model (``companion bench identify --fit``) and used only with that model.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from companion.config import Config
from companion.engine.engine import Engine, EngineError, EngineParams

log = logging.getLogger(__name__)

PARAMS_FILE = "engine.json"


def load_params(models_dir: Path, model_version: str, method: str | None = None) -> EngineParams:
    """Fitted parameters for this model version, else the defaults (with a log line saying so).

    ``method`` None keeps the method stored with them (the fit picks the best one measured).
    """
    path = Path(models_dir) / PARAMS_FILE
    params: EngineParams | None = None
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entry = data.get("models", {}).get(model_version)
            if entry is not None:
                params = EngineParams.from_dict(entry.get("params", {}))
            else:
                log.info("%s has no parameters for model %s: using defaults", path, model_version)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("engine parameters %s ignored: %s", path, exc)
    params = params or EngineParams()
    if method is not None and params.method != method:
        from dataclasses import replace

        params = replace(params, method=method)
    return params


def save_params(models_dir: Path, model_version: str, params: EngineParams, notes: dict | None = None) -> Path:
    """Store fitted parameters for ``model_version`` (other models' entries are kept)."""
    path = Path(models_dir) / PARAMS_FILE
    data: dict = {"models": {}}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {"models": {}}
    data.setdefault("models", {})[model_version] = {"params": params.to_dict(), "notes": notes or {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path


def reference_path(models_dir: Path, model_version: str) -> Path:
    """Where the fitted audio reference of a model version lives (beside ``engine.json``)."""
    return Path(models_dir) / f"audio-reference.{model_version}.npy"


def load_reference(models_dir: Path, model_version: str) -> np.ndarray | None:
    """The audio reference embeddings fitted with this model (method "align": snippet hubness), or None."""
    path = reference_path(models_dir, model_version)
    if not path.is_file():
        return None
    try:
        ref = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("audio reference %s ignored: %s", path, exc)
        return None
    if ref.ndim != 2 or not np.isfinite(ref).all():
        log.warning("audio reference %s ignored: not a finite 2-D array", path)
        return None
    return ref.astype(np.float32)


def save_reference(models_dir: Path, model_version: str, reference: np.ndarray) -> Path:
    """Store audio reference embeddings for ``model_version`` (float16: a few dozen kB)."""
    path = reference_path(models_dir, model_version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, np.asarray(reference, np.float16), allow_pickle=False)
    os.replace(tmp, path)
    return path


def open_library(library_dir: Path):
    """The library at ``library_dir`` for reading, with a message a user can act on when it is not one."""
    from companion.library import Library, LibraryError

    library_dir = Path(library_dir).expanduser()
    if not library_dir.is_dir():
        raise EngineError(f"no library at {library_dir}: index your scores first with "
                          f"'companion index FOLDER --library {library_dir}'")
    try:
        return Library.open(library_dir, readonly=True)
    except LibraryError:
        raise
    except Exception as exc:  # a folder that is not a library (no catalog) or a damaged one
        raise EngineError(f"{library_dir} is not a usable library ({exc}); "
                          "run 'companion index' to create it") from exc


def open_engine(cfg: Config, library_dir: Path, method: str | None = None, threads: int | None = 1) -> Engine:
    """Library + shipped encoder + fitted parameters -> a ready engine."""
    from companion.models.embedder import Embedder

    library = open_library(library_dir)
    if not library.documents:
        raise EngineError(f"the library at {library_dir} has no searchable scores yet; "
                          "run 'companion index FOLDER' first")
    encoder = Embedder(cfg.models_dir, threads=threads)
    params = load_params(cfg.models_dir, encoder.model_version, method)
    return Engine(library, encoder, params, load_reference(cfg.models_dir, encoder.model_version))
