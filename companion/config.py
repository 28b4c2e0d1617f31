"""Configuration: one frozen dataclass tree with documented defaults.

Why frozen: a config is passed to worker threads and processes; nobody may
change it under their feet. User overrides live in ``settings.json`` in the
platform's config directory and are applied with :func:`load_config`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "companion"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioConfig:
    """Audio front end, as in Dorfer et al. (TISMIR 2018)."""

    sample_rate: int = 22050
    """All audio is resampled to this rate (Hz) before analysis."""
    frame_size: int = 2048
    """STFT frame length in samples."""
    fps: float = 20.0
    """Spectrogram frames per second (hop = sample_rate / fps = 1102.5 samples)."""
    bands_per_octave: int = 16
    """Logarithmic filterbank resolution."""
    fmin: float = 30.0
    """Lowest filterbank frequency (Hz)."""
    fmax: float = 6000.0
    """Highest filterbank frequency (Hz)."""
    block_seconds: float = 60.0
    """Long files are decoded and analysed in blocks of this length to bound memory."""
    audio_device: str = ""
    """Microphone to listen with, by name as ``companion listen --list-devices``
    shows it; "" means the system's default input. Remembered when the user picks one."""

    @property
    def hop_size(self) -> float:
        return self.sample_rate / self.fps


@dataclass(frozen=True)
class SheetConfig:
    """Sheet front end, as in the papers (835 px page width, 160 px strips)."""

    analysis_width: int = 835
    """Width in pixels of the normalised greyscale page used for analysis."""
    display_dpi: int = 110
    """Resolution of page images rendered for display."""
    strip_height: int = 160
    """System strips are scaled to this height."""
    snippet_width: int = 200
    """Width of a sheet snippet cut from a strip (pixels at strip scale)."""
    snippet_hop: int = 50
    """Hop between consecutive snippets (pixels at strip scale)."""
    snippet_size: tuple[int, int] = (80, 100)
    """Snippets are downscaled to (height, width) for the snippet encoder."""
    page_time_limit_s: float = 10.0
    """A page that takes longer than this to analyse is skipped with a message."""


@dataclass(frozen=True)
class Paths:
    """Where things live; defaults follow the platform's conventions."""

    config_dir: Path = field(default_factory=lambda: Path(platformdirs.user_config_dir(APP_NAME)))
    data_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    log_dir: Path = field(default_factory=lambda: Path(platformdirs.user_log_dir(APP_NAME)))
    library_dir: Path = field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)) / "library"
    )
    """The default library (index of the user's scores)."""

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "companion.log"


BUNDLED_DATA = "_bundled"
"""Folder inside the installed ``companion`` package that holds ``models/`` and
``resources/`` (copied there by ``setup.py``'s build step; absent in a source tree)."""


def _has_data(folder: Path) -> bool:
    return (folder / "models").is_dir() or (folder / "resources").is_dir()


def find_data_root(package_dir: Path, frozen_dir: Path | None = None) -> Path:
    """The folder holding ``models/`` and ``resources/``, for each way companion can be run.

    Why several places: the repository keeps both folders at its top level, a
    wheel (``pip install .``) carries them inside the package, and a PyInstaller
    app unpacks them next to its bundled libraries. In order:

    1. ``frozen_dir`` (PyInstaller's ``sys._MEIPASS``) when it holds them;
    2. the source tree (editable install or checkout): the parent of the package,
       recognised by its ``pyproject.toml`` so that a stray ``models/`` folder in
       ``site-packages`` is never taken for ours;
    3. the package data of an installed wheel, ``companion/_bundled``.

    When none holds them the source-tree location is returned, so that messages
    about a missing model or demo name the place a developer would look.
    """
    package_dir = Path(package_dir)
    if frozen_dir is not None and _has_data(Path(frozen_dir)):
        return Path(frozen_dir)
    repo = package_dir.parent
    if (repo / "pyproject.toml").is_file() and _has_data(repo):
        return repo
    bundled = package_dir / BUNDLED_DATA
    if _has_data(bundled):
        return bundled
    return repo


def package_root() -> Path:
    """The root that holds ``models/`` and ``resources/`` for this installation (see :func:`find_data_root`)."""
    frozen = getattr(sys, "_MEIPASS", None) if getattr(sys, "frozen", False) else None
    return find_data_root(Path(__file__).resolve().parent, Path(frozen) if frozen else None)


@dataclass(frozen=True)
class Config:
    """The whole configuration. Build it with :func:`load_config`."""

    audio: AudioConfig = field(default_factory=AudioConfig)
    sheet: SheetConfig = field(default_factory=SheetConfig)
    paths: Paths = field(default_factory=Paths)
    models_dir: Path = field(default_factory=lambda: package_root() / "models")
    resources_dir: Path = field(default_factory=lambda: package_root() / "resources")


def _override(obj: Any, values: dict[str, Any]) -> Any:
    """Return ``obj`` with fields replaced from ``values`` (nested dicts recurse)."""
    changes: dict[str, Any] = {}
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            log.warning("settings: unknown key %r ignored", key)
            continue
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = _override(current, value)
        elif isinstance(current, Path):
            changes[key] = Path(os.path.expanduser(str(value)))
        elif isinstance(current, tuple):
            changes[key] = tuple(value)
        else:
            changes[key] = type(current)(value) if current is not None else value
    return dataclasses.replace(obj, **changes)


def load_config(settings_file: Path | None = None, **overrides: Any) -> Config:
    """Defaults, then the user's ``settings.json`` (if any), then ``overrides``.

    A broken settings file is reported and ignored rather than stopping the app.
    The environment variable ``COMPANION_HOME`` moves every per-user directory
    under one folder (used by tests and portable installs).
    """
    cfg = Config()
    home = os.environ.get("COMPANION_HOME")
    if home:
        base = Path(home)
        cfg = dataclasses.replace(
            cfg,
            paths=Paths(
                config_dir=base / "config",
                data_dir=base / "data",
                log_dir=base / "log",
                library_dir=base / "library",
            ),
        )
    path = settings_file or cfg.paths.settings_file
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
            cfg = _override(cfg, data)
        except (OSError, ValueError, TypeError) as exc:
            log.warning("settings file %s ignored: %s", path, exc)
    if overrides:
        cfg = _override(cfg, overrides)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-friendly view of a config (paths as strings)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, Path):
            out[f.name] = str(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def save_settings(values: dict[str, Any], settings_file: Path) -> None:
    """Merge ``values`` into the settings file atomically (temp file + rename)."""
    current: dict[str, Any] = {}
    if settings_file.exists():
        try:
            loaded = json.loads(settings_file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                current = loaded
        except (OSError, ValueError):
            pass
    current.update(values)
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = settings_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, settings_file)
