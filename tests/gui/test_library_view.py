"""The Library tab over a generated library: indexing with progress, errors and retry, search, thumbnails."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from gui_helpers import index_folder, make_score_pdf  # noqa: E402


def test_indexing_shows_progress_errors_and_the_works(qtbot, window, score_folder: Path) -> None:
    lib = window.library
    assert lib.document_rows() == []
    assert lib.empty_label.isVisible() or not lib.isVisible()
    index_folder(qtbot, window, score_folder)
    kinds = [e.kind for e in lib.events if e is not None]
    assert kinds[0] == "plan" and kinds[-1] == "done"
    assert kinds.count("file") == 3
    assert any(e.kind == "page" for e in lib.events if e is not None), "per-file page progress"
    rows = {Path(d.path).name: d for d in lib.document_rows()}
    assert set(rows) == {"Bach - Prelude in C.pdf", "Satie - Gymnopedie 1.pdf", "damaged scan.pdf"}
    assert rows["Bach - Prelude in C.pdf"].status == "indexed"
    assert rows["Bach - Prelude in C.pdf"].n_systems == 6
    assert rows["Satie - Gymnopedie 1.pdf"].composer == "Erik Satie"
    assert rows["damaged scan.pdf"].status == "error" and rows["damaged scan.pdf"].error
    # the failed file is listed in red in the activity list with its reason
    activity = [lib.activity.item(i).text() for i in range(lib.activity.count())]
    assert any(a.startswith("✗ damaged scan.pdf") for a in activity)
    assert lib.retry_btn.isEnabled()
    assert [lib.folders.item(i).text() for i in range(lib.folders.count())] == [str(score_folder)]
    # search filters the list
    lib.search.setText("satie")
    assert lib.visible_titles() == ["Gymnopédie No. 1"]
    lib.search.setText("")
    assert len(lib.visible_titles()) == 3
    # thumbnails of the first pages arrive from the render workers (not for the broken file)
    from companion.gui.library_view import DOC_ROLE

    def thumbs_ready() -> bool:
        items = [lib.model.item(r, 0) for r in range(lib.model.rowCount())]
        good = [it for it in items if it.data(DOC_ROLE).status == "indexed"]
        return len(good) == 2 and all(not it.icon().isNull() for it in good)

    qtbot.waitUntil(thumbs_ready, timeout=20000)


def test_retry_after_fixing_a_file_and_remove_folder(qtbot, window, score_folder: Path) -> None:
    lib = window.library
    index_folder(qtbot, window, score_folder)
    # the user replaces the damaged file with a good copy and presses Retry failed
    make_score_pdf(score_folder / "damaged scan.pdf", 1, seed=9, systems_per_page=2)
    task = lib.start_indexing([], retry_errors=True)
    assert task is not None
    qtbot.waitUntil(lambda: not lib.busy, timeout=60000)
    statuses = {Path(d.path).name: d.status for d in lib.document_rows()}
    assert statuses["damaged scan.pdf"] == "indexed"
    assert not lib.retry_btn.isEnabled()
    lib.folders.setCurrentRow(0)
    lib.remove_selected_folder()
    qtbot.waitUntil(lambda: not lib.busy and lib.folders.count() == 0, timeout=30000)
    assert lib.document_rows() == []


def test_cancel_keeps_finished_files(qtbot, window, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        make_score_pdf(folder / f"piece {i}.pdf", 2, seed=i)
    lib = window.library
    task = lib.start_indexing([folder])
    qtbot.waitUntil(lambda: any(e is not None and e.kind == "file" for e in lib.events), timeout=30000)
    lib.cancel()
    qtbot.waitUntil(lambda: not lib.busy, timeout=30000)
    assert task.state in ("cancelled", "finished")
    n_done = len([d for d in lib.document_rows() if d.status == "indexed"])
    assert n_done >= 1
    if task.state == "cancelled":
        assert n_done < 6
        # resuming indexes the rest without redoing the finished ones
        index_folder(qtbot, window, folder)
        assert len(lib.document_rows()) == 6
        assert lib.last_report.unchanged == n_done


def test_indexing_unavailable_is_said_plainly(qtbot, _isolated_home, tmp_path: Path) -> None:
    from companion.config import load_config
    from companion.gui.library_service import LibraryBackend
    from companion.gui.main_window import MainWindow

    backend = LibraryBackend(tmp_path / "lib", None, None, "the sheet front end is not installed")
    w = MainWindow(load_config(), backend=backend)
    qtbot.addWidget(w)
    assert w.library.start_indexing([tmp_path]) is None
    assert w.errors and "not installed" in w.errors[-1][1]
    qtbot.waitUntil(lambda: not w.library.busy, timeout=10000)
    assert "unavailable" in w.library.empty_label.text()
