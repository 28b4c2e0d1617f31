"""Identification and following: turns audio embeddings into pieces and positions.

Modules: :mod:`~companion.engine.engine` (the streaming engine and its three
methods), :mod:`~companion.engine.follower` (the online HMM over systems),
:mod:`~companion.engine.evidence` (library search -> per-system evidence),
:mod:`~companion.engine.layout` (what the engine needs from a library),
:mod:`~companion.engine.results` (what it publishes),
:mod:`~companion.engine.live` (the live frame consumer),
:mod:`~companion.engine.session` (opening an engine on a library folder),
:mod:`~companion.engine.identify` (recordings -> JSON timeline),
:mod:`~companion.engine.page_turn` (when to turn the page).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily: the library and torch are heavy
    from companion.config import Config
    from companion.engine.identify import Lookup
    from companion.engine.live import LiveEngine


def create_live_consumer(cfg: "Config", library_dir: Path) -> "LiveEngine":
    """The engine as a :class:`companion.live.FrameConsumer` (hook used by ``companion listen``)."""
    from companion.engine.live import create_live_consumer as _create

    return _create(cfg, library_dir)


def lookup_recording(cfg: "Config", library_dir: Path, audio_path: Path, progress=None, cancel=None) -> "Lookup":
    """Look up a dropped recording: per-hop updates and the ranked pieces + timeline (GUI hook)."""
    from companion.engine.identify import lookup_recording as _lookup

    return _lookup(cfg, library_dir, audio_path, progress=progress, cancel=cancel)
