"""Training data from the user's symbolic scores: corpus build and pack as one job, with progress and cancel."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest

from companion.errors import DataError
from companion.training.from_scores import build_training_data


def _data_fixtures():
    """The data tests' tiny scores (loaded by path from tests/data/score_sources.py)."""
    spec = importlib.util.spec_from_file_location("data_fixtures", Path(__file__).resolve().parents[1] / "data"
                                                  / "score_sources.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_score_is_built_and_packed_with_progress(tmp_path: Path) -> None:
    fixtures = _data_fixtures()
    if fixtures.tools_missing():
        pytest.skip(fixtures.tools_missing())
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "kern-test.krn").write_text(fixtures.KERN, encoding="utf-8")
    cancel = threading.Event()
    cancel.set()
    first = build_training_data([scores], tmp_path / "work", cancel=cancel)
    assert first["status"] == "cancelled" and first["built"] == 0 and "pieces" not in first
    seen: list[tuple[float | None, str]] = []
    result = build_training_data([scores], tmp_path / "work", progress=lambda f, t: seen.append((f, t)))
    assert result["status"] == "done" and result["built"] == 1 and result["pieces"] == 1
    assert sum(result["packed"].values()) == 1
    assert (tmp_path / "work" / "corpus" / "packed").is_dir()
    assert result["pairs"] > 0 and Path(result["pairs_dir"]) == tmp_path / "work" / "pairs"
    fractions = [f for f, _ in seen if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("1 of 1 pieces" in t for _, t in seen)
    again = build_training_data([scores], tmp_path / "work")
    assert again["built"] == 0 and again["unchanged"] == 1


def test_bad_sources_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a score", encoding="utf-8")
    with pytest.raises(DataError, match="no score files"):
        build_training_data([empty], tmp_path / "work")
    with pytest.raises(DataError, match="at least one folder"):
        build_training_data([], tmp_path / "work")
    with pytest.raises(DataError):
        build_training_data([tmp_path / "missing"], tmp_path / "work")
