"""Indexing: bad files, incremental updates, model changes, readers during writes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    HashEmbedder,
    ProjectionFrontEnd,
    hash_embedder_v1,
    hash_embedder_v2,
    make_corrupt_pdf,
    make_encrypted_pdf,
    make_score_pdf,
    make_text_pdf,
)

from companion.cli import main
from companion.library import IndexOptions, Indexer, Library, LibraryBusy, LibraryError
from companion.library.catalog import Catalog


@pytest.fixture
def scores(tmp_path: Path) -> Path:
    root = tmp_path / "scores"
    (root / "chopin").mkdir(parents=True)
    make_score_pdf(root / "chopin" / "Chopin - Nocturne Op 9.pdf", 2, seed=1)
    make_score_pdf(root / "chopin" / "waltz.pdf", 3, seed=2, title="Waltz in A minor", composer="F. Chopin")
    make_score_pdf(root / "schubert.PDF", 1, seed=3)
    (root / ".hidden").mkdir()
    make_score_pdf(root / ".hidden" / "skip.pdf", 1, seed=4)
    (root / "notes.txt").write_text("not a pdf")
    return root


def index(lib: Path, folders: list[Path], frontend: ProjectionFrontEnd | None = None,
          factory=hash_embedder_v1, **opts):
    fe = frontend or ProjectionFrontEnd()
    with Indexer(lib, fe, factory, IndexOptions(**opts)) as ix:
        return ix.run(folders)


def test_index_folder_stores_documents_systems_and_searchable_embeddings(scores: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    report = index(lib, [scores])
    assert (report.added, report.errors, report.pages) == (3, 0, 6)
    with Library.open(lib) as library:
        docs = {Path(d.path).name: d for d in library.documents}
        assert set(docs) == {"Chopin - Nocturne Op 9.pdf", "waltz.pdf", "schubert.PDF"}
        assert (docs["Chopin - Nocturne Op 9.pdf"].title, docs["Chopin - Nocturne Op 9.pdf"].composer) == (
            "Nocturne Op 9", "Chopin")
        assert (docs["waltz.pdf"].title, docs["waltz.pdf"].composer) == ("Waltz in A minor", "F. Chopin")
        waltz = docs["waltz.pdf"]
        systems = library.systems_of(waltz.id)
        assert len(systems) == 9 and waltz.n_pages == 3
        assert [s.page for s in systems] == sorted(s.page for s in systems)
        assert all(s.n_staves == 2 and s.box[3] > s.box[1] for s in systems)
        # a snippet of the waltz, embedded again, is found at its own document, system and x
        fe, emb = ProjectionFrontEnd(), HashEmbedder("test-1")
        opened = fe.open(Path(waltz.path))
        image = opened.render(1)
        snippets, xs, _ = fe.cut(image, systems[4])
        scores_, hits = library.search_snippets(emb.embed_sheet_snippets(snippets[2:3]), k=3)
        assert tuple(hits[0, 0]) == (waltz.id, 1, 4, xs[2])
        assert scores_[0, 0] == pytest.approx(1.0, abs=1e-5)
        flat = library.flat_system_index(hits)
        assert flat[0, 0] == sum(library.doc_sizes()[: [d.id for d in library.documents].index(waltz.id)]) + 4
        _, phits = library.search_passages(np.ones((1, 64), np.float32), k=2)
        assert phits.shape == (1, 2, 4) and (phits[0, :, 0] > 0).all()
        assert library.stats()["snippet_vectors"] > 0


def test_bad_files_are_recorded_and_do_not_stop_the_batch(scores: Path, tmp_path: Path, capsys) -> None:
    make_encrypted_pdf(scores / "locked.pdf")
    make_corrupt_pdf(scores / "broken.pdf")
    make_text_pdf(scores / "invoice.pdf")
    (scores / "empty.pdf").write_bytes(b"")
    lib = tmp_path / "lib"
    report = index(lib, [scores])
    assert report.errors == 4
    with Library.open(lib) as library:
        assert len(library.documents) == 3  # the good ones are searchable
    catalog = Catalog(lib, readonly=True)
    errors = {Path(d.path).name: d.error for d in catalog.documents() if d.status == "error"}
    catalog.close()
    assert "encrypted" in errors["locked.pdf"]
    assert "not a readable PDF" in errors["broken.pdf"] and "not a readable PDF" in errors["empty.pdf"]
    assert "no staff systems" in errors["invoice.pdf"]
    assert main(["library", "list", "--errors", "--library", str(lib)]) == 0
    out = capsys.readouterr().out
    assert "locked.pdf" in out and "encrypted" in out and "waltz.pdf" not in out
    # unchanged bad files are not retried, unless asked
    fe = ProjectionFrontEnd()
    assert index(lib, [scores], fe).errors == 0 and fe.detect_calls == 0
    assert index(lib, [scores], retry_errors=True).errors == 4


def test_incremental_updates(scores: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    index(lib, [scores])
    with Library.open(lib) as reader:
        gen = reader.generation
        before = {Path(d.path).name: d for d in reader.documents}
        waltz_systems = reader.systems_of(before["waltz.pdf"].id)

    fe = ProjectionFrontEnd()
    report = index(lib, [scores], fe)
    assert (report.unchanged, report.added, fe.detect_calls) == (3, 0, 0)

    # touched (new mtime, same bytes): not re-indexed
    os.utime(scores / "schubert.PDF", (1e9, 1e9))
    fe = ProjectionFrontEnd()
    report = index(lib, [scores], fe)
    assert (report.unchanged, report.changed, fe.detect_calls) == (3, 0, 0)

    # changed content: re-indexed under a new id, old version gone
    make_score_pdf(scores / "schubert.PDF", 2, seed=30)
    # deleted file: removed
    (scores / "chopin" / "Chopin - Nocturne Op 9.pdf").unlink()
    # moved file: systems and embeddings reused, nothing detected
    shutil.move(scores / "chopin" / "waltz.pdf", scores / "waltz-moved.pdf")
    fe = ProjectionFrontEnd()
    report = index(lib, [scores], fe)
    assert (report.changed, report.removed, report.copied) == (1, 2, 1)
    assert fe.detect_calls == 2  # only the changed two-page file
    with Library.open(lib) as reader:
        assert reader.generation > gen
        now = {Path(d.path).name: d for d in reader.documents}
        assert set(now) == {"schubert.PDF", "waltz-moved.pdf"}
        assert now["schubert.PDF"].id != before["schubert.PDF"].id and now["schubert.PDF"].n_pages == 2
        assert reader.systems_of(now["waltz-moved.pdf"].id) == waltz_systems
        docs_in_index = set(reader.snapshot.snippets.ids[:, 0])
        assert docs_in_index == {d.id for d in reader.documents}


def test_new_model_reembeds_without_detecting_again(scores: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    index(lib, [scores])
    with Library.open(lib) as reader:
        old_systems = {d.path: reader.systems_of(d.id) for d in reader.documents}
        old_vectors = reader.snapshot.snippets.index.reconstruct_n(0, reader.snapshot.snippets.size)
        assert reader.model_version == "test-1"
    fe = ProjectionFrontEnd()
    events: list = []
    with Indexer(lib, fe, hash_embedder_v2, progress=events.append) as ix:
        report = ix.run([])  # no folder: the remembered ones
    assert report.reembedded == 3 and fe.detect_calls == 0
    assert [e.status for e in events if e.kind == "file"] == ["re-embedded"] * 3, "the activity list says what happened"
    with Library.open(lib) as reader:
        assert reader.model_version == "test-2"
        assert {d.path: reader.systems_of(d.id) for d in reader.documents} == old_systems
        new_vectors = reader.snapshot.snippets.index.reconstruct_n(0, reader.snapshot.snippets.size)
        assert new_vectors.shape == old_vectors.shape and not np.allclose(new_vectors, old_vectors)
    with Catalog(lib, readonly=True) as cat:
        models = {r[0] for r in cat.conn.execute("SELECT DISTINCT model_version FROM embeddings")}
    assert models == {"test-2"}  # the old model's vectors were dropped at publish


def test_reader_keeps_a_consistent_snapshot_until_refresh(scores: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    index(lib, [scores])
    reader = Library.open(lib)
    names_before = sorted(Path(d.path).name for d in reader.documents)
    (scores / "schubert.PDF").unlink()
    make_score_pdf(scores / "new.pdf", 1, seed=9)
    index(lib, [scores])
    # the old snapshot is intact: documents and the index still agree
    assert sorted(Path(d.path).name for d in reader.documents) == names_before
    assert set(reader.snapshot.snippets.ids[:, 0]) <= {d.id for d in reader.documents}
    assert reader.refresh()
    assert sorted(Path(d.path).name for d in reader.documents) == [
        "Chopin - Nocturne Op 9.pdf", "new.pdf", "waltz.pdf"]
    assert set(reader.snapshot.snippets.ids[:, 0]) == {d.id for d in reader.documents}
    reader.close()


def test_one_writer_at_a_time_and_clear_errors(scores: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    with Indexer(lib, ProjectionFrontEnd(), hash_embedder_v1):
        with pytest.raises(LibraryBusy):
            Indexer(lib, ProjectionFrontEnd(), hash_embedder_v1)
    with pytest.raises(LibraryError, match="folder not found"):
        index(lib, [tmp_path / "nope"])
    with pytest.raises(LibraryError, match="no library"):
        Library.open(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="cannot be read"):
        Library.open(tmp_path / "junk")


def test_workers_give_the_same_library(scores: Path, tmp_path: Path) -> None:
    make_corrupt_pdf(scores / "broken.pdf")
    index(tmp_path / "one", [scores])
    index(tmp_path / "two", [scores], workers=2)
    assert library_content(tmp_path / "one") == library_content(tmp_path / "two")


def library_content(lib: Path) -> dict:
    """Everything that must not depend on ids, order of processing or interruptions."""
    from companion.library.catalog import Catalog

    cat = Catalog(lib, readonly=True)
    out = {}
    try:
        for d in cat.documents():
            embs = cat.embeddings_of(d.id, cat.model_version) or []
            out[d.path] = (
                d.sha256, d.status, d.error, d.n_pages, d.title, d.composer, d.visible,
                tuple(s for _, s in cat.systems_of(d.id)),
                tuple((e.snippet_x.tobytes(), e.snippets.tobytes(), e.passage.tobytes()) for e in embs),
            )
        out["__generation_model__"] = cat.model_version
    finally:
        cat.close()
    with Library.open(lib) as reader:
        by_id = {d.id: d.path for d in reader.documents}
        s = reader.snapshot.snippets
        vecs = s.index.reconstruct_n(0, s.size) if s.size else np.zeros((0, 0))
        rows = sorted((by_id[int(r[0])], *map(int, r[1:4]), v.tobytes()) for r, v in zip(s.ids, vecs))
        out["__snippet_index__"] = rows
        assert set(by_id) >= set(int(i) for i in s.ids[:, 0])
    return out


def test_a_cancelled_run_publishes_what_it_finished(scores: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"

    class Cancel(Exception):
        pass

    def progress(ev) -> None:
        if ev.kind == "file" and ev.files_done == 2:
            raise Cancel()

    with Indexer(lib, ProjectionFrontEnd(), hash_embedder_v1, progress=progress) as ix:
        with pytest.raises(Cancel):
            ix.run([scores])
    with Library.open(lib) as reader:
        assert len(reader.documents) == 2
    report = index(lib, [scores])
    assert (report.added, report.unchanged) == (1, 2)


def test_progress_events_per_file_and_overall(scores: Path, tmp_path: Path) -> None:
    events = []
    with Indexer(tmp_path / "lib", ProjectionFrontEnd(), hash_embedder_v1, progress=events.append) as ix:
        ix.run([scores])
    kinds = [e.kind for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "done" and "publish" in kinds
    assert events[0].files_total == 3 and events[0].bytes_total > 0
    files = [e for e in events if e.kind == "file"]
    assert [e.files_done for e in files] == [1, 2, 3] and all(e.status == "indexed" for e in files)
    assert files[-1].fraction == 1.0 and files[-1].eta_s == 0.0
    assert files[0].eta_s is not None and files[0].eta_s > 0
    pages = [e for e in events if e.kind == "page" and e.path.endswith("waltz.pdf")]
    assert [(e.file_pages_done, e.file_pages_total) for e in pages] == [(1, 3), (2, 3), (3, 3)]


def test_terminal_progress_bar_renders(scores: Path, tmp_path: Path, capsys) -> None:
    from companion.library.progress import TerminalProgress, format_eta

    with Indexer(tmp_path / "lib", ProjectionFrontEnd(), hash_embedder_v1, progress=TerminalProgress(True)) as ix:
        ix.run([scores])
    err = capsys.readouterr().err
    assert "3/3 files" in err and "ETA" in err
    assert (format_eta(None), format_eta(75), format_eta(3725)) == ("--:--", "01:15", "1:02:05")


def test_a_file_missing_at_reembedding_is_reported_and_indexed_when_back(scores: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    make_score_pdf(elsewhere / "solo.pdf", 1, seed=7)
    index(lib, [scores, elsewhere])
    moved = tmp_path / "solo.bak"
    shutil.move(elsewhere / "solo.pdf", moved)
    shutil.rmtree(elsewhere)  # an unplugged drive: its root is gone, its documents are kept...
    report = index(lib, [], factory=hash_embedder_v2)  # ...but cannot be re-embedded for a new model
    assert report.reembedded == 3 and report.errors == 1
    with Library.open(lib) as reader:
        assert reader.model_version == "test-2" and len(reader.documents) == 3
    elsewhere.mkdir()
    shutil.move(moved, elsewhere / "solo.pdf")
    report = index(lib, [], factory=hash_embedder_v2)
    assert (report.changed, report.errors) == (1, 0)
    with Library.open(lib) as reader:
        assert len(reader.documents) == 4
