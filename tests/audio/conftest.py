"""Fixtures for the audio tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import soundfile as sf
from audio_helpers import SR


@pytest.fixture
def write_audio(tmp_path: Path) -> Callable[..., Path]:
    """Write ``data`` to ``tmp_path/name`` with soundfile (format from the extension)."""

    def _write(name: str, data: np.ndarray, sr: int = SR, **kwargs: object) -> Path:
        path = tmp_path / name
        sf.write(str(path), data, sr, **kwargs)
        return path

    return _write
