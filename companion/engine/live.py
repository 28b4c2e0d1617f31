"""The engine as a live frame consumer (``companion listen``, the GUI).

:class:`LiveEngine` implements :class:`companion.live.FrameConsumer`: the
capture worker hands it spectrogram frames and publishes what it returns. The
GUI may call :meth:`LiveEngine.jump_to` (the user clicked a system) from its
own thread, hence the lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from companion.config import Config
from companion.engine.engine import Engine
from companion.engine.results import EngineUpdate


class LiveEngine:
    """Adapter from the capture session's FrameConsumer protocol to :class:`Engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self.last: EngineUpdate | None = None

    def on_frames(self, frames: np.ndarray, t: float) -> EngineUpdate | None:
        with self._lock:
            updates = self.engine.push(frames, t)
        if updates:
            self.last = updates[-1]
            return self.last
        return None

    def on_silence(self, t: float) -> EngineUpdate:
        with self._lock:
            self.last = self.engine.silence(t)
        return self.last

    def reset(self) -> None:
        with self._lock:
            self.engine.reset()
            self.last = None

    def jump_to(self, document_id: int, index: int) -> None:
        """The user clicked system ``index`` (reading order) of a document: follow from there."""
        with self._lock:
            self.engine.jump_to(self.engine.layout.doc_index(document_id), index)


def create_live_consumer(cfg: Config, library_dir: Path) -> LiveEngine:
    """The hook ``companion listen`` looks for: the engine on ``library_dir`` with the shipped model."""
    from companion.engine.session import open_engine

    return LiveEngine(open_engine(cfg, Path(library_dir), threads=1))
