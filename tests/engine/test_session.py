"""Fitted engine parameters and audio reference beside the model: round trips, other versions, damaged files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from companion.engine.align import AlignParams
from companion.engine.engine import AlignDecision, EngineParams
from companion.engine.session import load_params, load_reference, save_params, save_reference


def test_params_round_trip_per_model_version(tmp_path: Path) -> None:
    params = replace(EngineParams(method="align"), align=AlignParams(decay=0.9, hub_weight=0.5),
                     align_decision=AlignDecision(unknown=20.0, margin=3.5))
    save_params(tmp_path, "v1", params, {"note": 1})
    save_params(tmp_path, "v2", EngineParams(method="votes"))
    assert load_params(tmp_path, "v1") == params
    assert load_params(tmp_path, "v2").method == "votes"
    assert load_params(tmp_path, "v3") == EngineParams()  # another model: the defaults
    assert load_params(tmp_path, "v1", method="full").method == "full"


def test_damaged_params_fall_back_to_defaults(tmp_path: Path) -> None:
    (tmp_path / "engine.json").write_text("{not json", encoding="utf-8")
    assert load_params(tmp_path, "v1") == EngineParams()


def test_reference_round_trip_and_bad_files_are_ignored(tmp_path: Path) -> None:
    ref = np.random.default_rng(0).standard_normal((50, 32)).astype(np.float32)
    save_reference(tmp_path, "v1", ref)
    got = load_reference(tmp_path, "v1")
    assert got is not None and got.dtype == np.float32 and got.shape == (50, 32)
    assert np.allclose(got, ref, atol=1e-2)  # stored as float16
    assert load_reference(tmp_path, "v2") is None  # fitted for another model
    (tmp_path / "audio-reference.v3.npy").write_bytes(b"garbage")
    assert load_reference(tmp_path, "v3") is None
    np.save(tmp_path / "audio-reference.v4.npy", np.full((3, 4), np.nan))
    assert load_reference(tmp_path, "v4") is None
