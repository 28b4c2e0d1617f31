"""The bundled demo is complete, small, licensed, and its timings fit its recording."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import soundfile as sf

from companion.config import load_config
from companion.engine.demo import DEMO_PIECES, RECORDING_PIECE, run_demo_job

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def test_demo_folder_is_complete_and_under_10_mb() -> None:
    meta = json.loads((DEMO / "demo.json").read_text())
    assert len(meta["pieces"]) == len(DEMO_PIECES)
    total = sum(p.stat().st_size for p in DEMO.iterdir())
    assert total < 10 * 1024 * 1024
    for piece in meta["pieces"]:
        with pymupdf.open(DEMO / piece["pdf"]) as doc:
            assert doc.page_count == piece["pages"] >= 1
            assert doc.metadata["title"] == piece["title"]
    readme = (DEMO / "README.md").read_text()
    assert "Licences" in readme and "CC0" in readme
    for piece in meta["pieces"]:
        assert piece["pdf"] in readme


def test_recording_and_its_system_timings_agree() -> None:
    meta = json.loads((DEMO / "demo.json").read_text())
    rec = meta["recording"]
    assert rec["pdf"] == meta["pieces"][RECORDING_PIECE]["pdf"]
    info = sf.info(DEMO / rec["audio"])
    spans = rec["systems"]
    assert spans[0][0] == 0.0 and abs(spans[-1][1] - info.duration) < 0.5
    assert all(a < b for a, b, _ in spans) and all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    order = [k for _, _, k in spans]
    assert any(b < a for a, b in zip(order, order[1:]))  # the recording has a repeat


def test_demo_job_reports_what_is_missing_instead_of_crashing(tmp_path: Path) -> None:
    cfg = load_config(resources_dir=tmp_path)
    out = run_demo_job(cfg)
    assert "error" in out and "missing" in out["error"]
