"""``companion bench listen --synthetic-pages``: the engine attached to a synthetic library of the installed model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from companion.cli import main
from companion.commands.bench_listen import synthetic_engine_library
from companion.config import load_config
from companion.engine.session import open_engine
from companion.errors import CompanionError
from companion.library.bench import write_untrained_models


@pytest.fixture()
def models_dir(tmp_path: Path) -> Path:
    out = tmp_path / "models"
    out.mkdir()
    write_untrained_models(out)
    return out


def test_synthetic_library_is_accepted_by_the_engine(tmp_path: Path, models_dir: Path) -> None:
    cfg = load_config(models_dir=models_dir)
    made = synthetic_engine_library(cfg, tmp_path / "lib", 40)
    assert made["pages"] == 40 and made["documents"] == 2 and made["systems"] == 240
    assert made["passage_model"] is True
    engine = open_engine(cfg, tmp_path / "lib")  # same model version: no "re-index" refusal
    assert engine.use_passages
    assert len(engine.layout.doc_sizes) == 2 and int(engine.layout.doc_sizes.sum()) == 240


def test_synthetic_library_rejects_zero_pages(tmp_path: Path, models_dir: Path) -> None:
    with pytest.raises(CompanionError, match="synthetic-pages"):
        synthetic_engine_library(load_config(models_dir=models_dir), tmp_path / "lib", 0)


def test_bench_listen_with_engine_reports_result_latency(
    tmp_path: Path, models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"models_dir": str(models_dir)}), encoding="utf-8")
    code = main(["--settings", str(settings), "bench", "listen", "--synthetic-pages", "20",
                 "--seconds", "5", "--long-seconds", "0", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine"].startswith("included, synthetic library of 20 pages")
    rt = report["realtime"]
    assert rt["results"] > 0  # the engine published updates on the synthetic piece
    assert rt["result_latency_ms_p95"] is not None and rt["result_latency_ms_p95"] > 0
    assert rt["result_latency_ms_max"] >= rt["result_latency_ms_p50"]


def test_bench_listen_refuses_library_and_synthetic_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "listen", "--library", str(tmp_path), "--synthetic-pages", "10", "--seconds", "1",
                 "--long-seconds", "0"])
    assert code != 0
    assert "not both" in capsys.readouterr().err
