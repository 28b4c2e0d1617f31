"""The shipped path end to end: ``companion index`` with the real sheet front end
(companion.sheets rendering + system detection) and the real encoder architecture
(seeded random weights: no trained model is needed to test the wiring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import make_encrypted_pdf, make_score_pdf, make_text_pdf

from companion.cli import main
from companion.library import Library
from companion.library.bench import write_untrained_models
from companion.library.frontend import SheetsFrontEnd


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    write_untrained_models(d)
    return d


def test_companion_index_with_the_real_front_end_and_encoder(models_dir: Path, tmp_path: Path, capsys) -> None:
    scores = tmp_path / "scores"
    scores.mkdir()
    make_score_pdf(scores / "Schumann - Album.pdf", 2, seed=5)
    make_score_pdf(scores / "other.pdf", 1, seed=6)
    make_text_pdf(scores / "letter.pdf")
    make_encrypted_pdf(scores / "locked.pdf")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"models_dir": str(models_dir)}))
    lib = tmp_path / "lib"
    args = ["--settings", str(settings), "index", str(scores), "--library", str(lib), "--no-progress", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["errors"], report["pages"]) == (4, 2, 3)
    assert set(report["timings_s"]) == {"render", "detect", "embed", "write"}
    errors = {Path(e["path"]).name: e["error"] for e in report["error_files"]}
    assert "password" in errors["locked.pdf"] and "no staff systems" in errors["letter.pdf"]

    from companion.models.embedder import Embedder

    embedder = Embedder(models_dir)
    with Library.open(lib) as library:
        assert library.model_version == embedder.model_version
        album = next(d for d in library.documents if d.title == "Album")
        systems = library.systems_of(album.id)
        assert [s.page for s in systems] == [0, 0, 0, 1, 1, 1] and all(s.n_staves == 2 for s in systems)
        assert library.snapshot.snippets.dim == 32 and library.snapshot.passages.dim == 64
        # cut system 4 again the way the indexer did: the library holds exactly its embeddings
        # (compared vector by vector: untrained weights embed all music almost alike, so a
        # nearest-neighbour check would not tell the wiring apart from chance)
        fe = SheetsFrontEnd()
        doc = fe.open(Path(album.path))
        snippets, xs, strip = fe.cut(doc.render(1), systems[4])
        doc.close()
        snap = library.snapshot
        rows = np.flatnonzero((snap.snippets.ids[:, 0] == album.id) & (snap.snippets.ids[:, 2] == 4))
        assert list(snap.snippets.ids[rows, 3]) == list(xs)
        stored = np.stack([snap.snippets.index.reconstruct(int(r)) for r in rows])
        assert np.allclose(stored, embedder.embed_sheet_snippets(snippets), atol=1e-5)
        prow = int(np.flatnonzero((snap.passages.ids[:, 0] == album.id) & (snap.passages.ids[:, 2] == 4))[0])
        assert np.allclose(snap.passages.index.reconstruct(prow), embedder.embed_sheet_passages([strip])[0],
                           atol=1e-5)
        _, hits = library.search_snippets(stored[:2], k=3)
        assert hits.shape == (2, 3, 4) and (hits[..., 0] > 0).all()

    # a second run skips everything
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["unchanged"], again["added"], again["pages"]) == (4, 0, 0)
