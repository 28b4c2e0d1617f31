"""``companion library list|stats|remove|export`` on a library built with the test doubles."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from helpers import ProjectionFrontEnd, hash_embedder_v1, make_corrupt_pdf, make_score_pdf

from companion.cli import main
from companion.library import Indexer, Library


@pytest.fixture
def lib(tmp_path: Path) -> Path:
    scores = tmp_path / "scores"
    (scores / "sub").mkdir(parents=True)
    make_score_pdf(scores / "Bach - Prelude.pdf", 2, seed=1)
    make_score_pdf(scores / "sub" / "Mozart - Sonata.pdf", 1, seed=2)
    make_corrupt_pdf(scores / "broken.pdf")
    lib = tmp_path / "lib"
    with Indexer(lib, ProjectionFrontEnd(), hash_embedder_v1) as ix:
        ix.run([scores])
    return lib


def test_list_and_stats(lib: Path, capsys) -> None:
    assert main(["library", "list", "--library", str(lib)]) == 0
    out = capsys.readouterr().out
    assert "Bach - Prelude" in out and "Sonata" in out and "broken.pdf" in out
    assert main(["library", "list", "--json", "--library", str(lib)]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert {d["status"] for d in docs} == {"indexed", "error"} and len(docs) == 3
    assert main(["library", "stats", "--json", "--library", str(lib)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["indexed"], stats["errors"], stats["pages"], stats["systems"]) == (2, 1, 3, 9)
    assert stats["snippet_index"]["kind"] == "flat" and stats["snippet_vectors"] > 0


def test_export_csv_and_json(lib: Path, tmp_path: Path, capsys) -> None:
    assert main(["library", "export", "--format", "csv", "--library", str(lib)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    systems = [r for r in rows if r["system"] != ""]
    assert len(systems) == 9
    assert {r["status"] for r in rows if r["system"] == ""} == {"error"}
    prelude = [r for r in systems if r["title"] == "Prelude"]
    assert [int(r["page"]) for r in prelude] == [0, 0, 0, 1, 1, 1]
    assert all(float(r["y1"]) > float(r["y0"]) for r in prelude)
    out = tmp_path / "lib.json"
    assert main(["library", "export", "--format", "json", "-o", str(out), "--library", str(lib)]) == 0
    data = json.loads(out.read_text())
    sonata = next(d for d in data["documents"] if d["title"] == "Sonata")
    assert sonata["composer"] == "Mozart" and len(sonata["pages_detail"][0]["systems"]) == 3


def test_remove_file_and_folder(lib: Path, tmp_path: Path, capsys) -> None:
    scores = tmp_path / "scores"
    assert main(["library", "remove", str(scores / "sub"), "--library", str(lib)]) == 0
    with Library.open(lib) as reader:
        assert [Path(d.path).name for d in reader.documents] == ["Bach - Prelude.pdf"]
        assert set(reader.snapshot.snippets.ids[:, 0]) == {reader.documents[0].id}
    assert main(["library", "remove", str(scores / "nothing.pdf"), "--library", str(lib)]) == 1
    assert main(["library", "remove", "x.pdf", "--library", str(tmp_path / "none")]) == 1
    assert "no library" in capsys.readouterr().err


def test_index_command_reports_a_missing_folder(tmp_path: Path, capsys) -> None:
    code = main(["index", str(tmp_path / "missing"), "--library", str(tmp_path / "lib"), "--no-progress"])
    assert code == 1
    assert "folder not found" in capsys.readouterr().err
