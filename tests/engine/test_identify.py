"""``companion identify``: the JSON answer, the timeline, the live adapter and bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from engine_helpers import SR, ToyEncoder, build_library, make_pieces, perform, spectrogram

from companion.cli import main
from companion.engine.engine import Engine
from companion.engine.identify import identify_spectrogram
from companion.engine.live import LiveEngine
from companion.engine.results import Status

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "library"))


@pytest.fixture(scope="module")
def toy():
    enc = ToyEncoder()
    pieces = make_pieces(3, 6, seed=3)
    return pieces, enc, build_library(pieces, enc)


def test_json_answer_ranks_pieces_and_gives_a_timeline(toy) -> None:
    pieces, enc, lib = toy
    path = [(1, s) for s in range(4)] + [(2, s) for s in range(4)]
    audio, _ = perform(pieces, path)
    result = identify_spectrogram(Engine(lib, enc), spectrogram(audio))
    docs = [p["document"] for p in result["pieces"]]
    assert set(docs[:2]) == {"/scores/piece1.pdf", "/scores/piece2.pdf"}
    assert all(set(p) == {"document", "title", "score"} for p in result["pieces"])
    tl = result["timeline"]
    assert tl and all(set(e) == {"t", "document", "page", "system", "confidence"} for e in tl)
    assert [e["t"] for e in tl] == sorted(e["t"] for e in tl)
    seen = [(e["document"], e["page"], e["system"]) for e in tl if e["document"]]
    # piece 1 forward through its systems, then piece 2 from its start (3 systems per page)
    assert ("/scores/piece1.pdf", 0, 0) in seen and ("/scores/piece1.pdf", 1, 0) in seen
    assert seen.index(("/scores/piece1.pdf", 0, 0)) < seen.index(("/scores/piece1.pdf", 1, 0))
    assert seen[-1][0] == "/scores/piece2.pdf" and seen[-1][1:] == (1, 0)
    json.dumps(result)  # plain JSON types only


def test_live_adapter_publishes_updates(toy) -> None:
    pieces, enc, lib = toy
    audio, _ = perform(pieces, [(0, 0), (0, 1)])
    spec = spectrogram(audio)
    live = LiveEngine(Engine(lib, enc))
    results = []
    for i in range(0, len(spec), 7):
        r = live.on_frames(spec[i : i + 7], i / 20)
        if r is not None:
            results.append(r)
    assert results[-1].status is Status.IDENTIFIED and results[-1].piece == "Piece 0"
    assert results[-1].system.startswith("page 1, system")
    assert live.on_silence(len(spec) / 20).status is Status.SILENT
    live.jump_to(11, 4)
    assert live.engine.follower.best_system()[:2] == (1, 4)
    live.reset()
    assert live.last is None and live.engine.follower.unknown_probability == 1.0


def _untrained_models(models: Path) -> None:
    from companion.models.checkpoint import save_checkpoint
    from companion.models.encoders import SnippetModel
    from companion.models.passage import PassageModel

    torch.manual_seed(0)
    models.mkdir()
    save_checkpoint(SnippetModel(), models / "snippet.pt")
    save_checkpoint(PassageModel(), models / "passage.pt")


def test_command_line_on_an_indexed_library(tmp_path: Path, capsys) -> None:
    """The real path: PDFs indexed by the library, the shipped Embedder (untrained weights here)."""
    from helpers import ProjectionFrontEnd, make_score_pdf

    from companion.library import Indexer
    from companion.models.embedder import Embedder

    models = tmp_path / "models"
    _untrained_models(models)
    scores = tmp_path / "scores"
    scores.mkdir()
    for i in range(2):
        make_score_pdf(scores / f"Composer - Piece {i}.pdf", n_pages=1, seed=i)
    lib_dir = tmp_path / "lib"
    with Indexer(lib_dir, ProjectionFrontEnd(), lambda: Embedder(models, threads=1)) as indexer:
        indexer.run([scores])
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"models_dir": str(models)}))
    pieces = make_pieces(1, 2, seed=1)
    audio, _ = perform(pieces, [(0, 0), (0, 1)])
    rec = tmp_path / "take.wav"
    sf.write(rec, audio, SR)

    assert main(["--settings", str(settings), "identify", str(rec), "--library", str(lib_dir), "--json",
                 "--start", "1", "--duration", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"pieces", "timeline"}
    assert out["seconds"] == pytest.approx(8.0, abs=0.1)
    for e in out["timeline"]:
        assert e["t"] >= 1.0
        assert e["document"] is None or e["document"].endswith(".pdf")

    assert main(["--settings", str(settings), "identify", str(rec), "--library", str(lib_dir), "--duration", "3"]) == 0
    text = capsys.readouterr().out
    assert "Piece" in text or "No piece" in text

    # bad input: a clear message and exit status 1, never a traceback
    for argv, words in [
        (["identify", str(tmp_path / "missing.wav"), "--library", str(lib_dir)], "not found"),
        (["identify", str(rec), "--library", str(tmp_path / "nolib")], "no library"),
        (["identify", str(rec), "--library", str(lib_dir), "--start", "100"], "past its end"),
        (["identify", str(rec), "--library", str(lib_dir), "--duration", "-1"], "--duration"),
    ]:
        assert main(["--settings", str(settings), *argv]) == 1
        assert words in capsys.readouterr().err


def test_a_library_from_another_model_is_refused(tmp_path: Path, capsys) -> None:
    from helpers import HashEmbedder, ProjectionFrontEnd, make_score_pdf

    from companion.library import Indexer

    models = tmp_path / "models"
    _untrained_models(models)
    scores = tmp_path / "scores"
    scores.mkdir()
    make_score_pdf(scores / "a.pdf", n_pages=1, seed=0)
    with Indexer(tmp_path / "lib", ProjectionFrontEnd(), HashEmbedder) as indexer:
        indexer.run([scores])
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"models_dir": str(models)}))
    rec = tmp_path / "take.wav"
    sf.write(rec, np.zeros(SR, np.float32), SR)
    assert main(["--settings", str(settings), "identify", str(rec), "--library", str(tmp_path / "lib")]) == 1
    assert "companion index" in capsys.readouterr().err
