"""The score view on a real (generated) PDF: rendering, click-to-select, highlight, page turns, zoom."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from gui_helpers import index_folder, make_corrupt_pdf  # noqa: E402


def _open_bach(qtbot, window, score_folder: Path):
    index_folder(qtbot, window, score_folder)
    row = next(d for d in window.library.document_rows() if d.title == "Prelude in C")
    window.open_library_document(row)
    view = window.score
    assert window.view_name() == "Score"
    assert view.document is not None and view.document.title == "Prelude in C"
    return view


def test_pages_render_in_workers_and_a_click_moves_the_position(qtbot, window, score_folder: Path) -> None:
    from PySide6.QtCore import QPoint, Qt

    view = _open_bach(qtbot, window, score_folder)
    canvas = view.canvas
    assert len(view.document.systems) == 6 and view.document.n_pages == 2
    path = str(view.document.path)
    qtbot.waitUntil(lambda: (im := window.cache.any_size(path, 0)) is not None and im.width() >= 300, timeout=20000)
    # the page image is white paper with dark staff lines where the systems are
    image = window.cache.any_size(path, 0)
    s = image.width() / view.document.analysis_width
    first_line = int(round((view.document.systems[1][1][1] + 20) * s))
    column = [image.pixelColor(image.width() // 2, y).lightness() for y in range(first_line - 3, first_line + 4)]
    assert min(column) < 200, "a staff line where the system was detected"
    assert image.pixelColor(image.width() // 2, first_line - int(15 * s)).lightness() > 245, "white paper above it"
    r = canvas.system_rect(1)
    chosen = []
    view.system_chosen.connect(chosen.append)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(int(r.center().x()), int(r.center().y())))
    assert chosen == [1]
    assert canvas.current_system == 1
    assert "system 2 of page 1" in view.state_label.text()


def test_follower_turns_the_page_with_the_lead_and_respects_manual_navigation(qtbot, window, score_folder: Path) -> None:
    view = _open_bach(qtbot, window, score_folder)
    view.set_lead(1)
    assert view.set_position(0) is False
    assert view.set_position(1) is False
    assert view.set_position(2) is True  # last system of page 1: turn early
    assert view.canvas.first_page == 1 and view.turns == 1
    assert view.page_box.value() == 2
    view.previous_page()  # the user looks back
    assert view.canvas.first_page == 0 and not view.follow_btn.isChecked()
    view.set_position(3)
    assert view.canvas.first_page == 0, "manual navigation holds"
    view.follow()
    assert view.canvas.first_page == 1 and view.follow_btn.isChecked()


def test_two_pages_and_zoom(qtbot, window, score_folder: Path) -> None:
    view = _open_bach(qtbot, window, score_folder)
    view.set_two_pages(True)
    assert view.canvas.visible_pages() == [0, 1]
    assert len(view.canvas.page_rects()) == 2
    w1 = view.canvas.width()
    view.set_zoom(view.canvas.zoom * 2)
    assert view.canvas.width() > 1.8 * w1 - 40
    assert view.zoom_label.text() == f"{view.canvas.zoom * 100:.0f}%"
    view.fit()
    assert view.canvas.zoom == 1.0
    # a sharp render of the new size is requested; a scaled copy is painted meanwhile
    qtbot.waitUntil(lambda: window.cache.pending == 0, timeout=20000)


def test_corrupt_pdf_is_an_error_dialog_not_a_crash(qtbot, window, tmp_path: Path) -> None:
    bad = make_corrupt_pdf(tmp_path / "broken.pdf")
    assert window.open_pdf(bad) is None
    assert window.errors and window.errors[-1][0] == "Open score"
    assert "broken.pdf" in window.errors[-1][1]
    missing = window.open_pdf(tmp_path / "gone.pdf")
    assert missing is None and "does not exist" in window.errors[-1][1]


def test_identifications_drive_the_score_only_when_sure(qtbot, window, score_folder: Path) -> None:
    from companion.gui.identification import Identification, Position, RankedPiece

    index_folder(qtbot, window, score_folder)
    bach = next(d for d in window.library.document_rows() if d.title == "Prelude in C")

    def ident(system: int, sure: bool, piece_conf: float, sys_conf: float = 0.3) -> Identification:
        page = 0 if system < 3 else 1
        return Identification(1.0, (RankedPiece(bach.id, bach.title, piece_conf),),
                              Position(bach.id, page, system, sys_conf), sure)

    window.on_identification(ident(1, sure=False, piece_conf=0.9))
    assert window.score.document is None, "never open a score on a guess"
    window.on_identification(ident(1, sure=True, piece_conf=0.8))
    assert window.score.document.title == "Prelude in C" and window.score.canvas.current_system == 1
    window.on_identification(ident(4, sure=True, piece_conf=0.3))  # below the 0.5 threshold
    assert window.score.canvas.current_system == 1 and not window.score.canvas.confident
    window.on_identification(ident(4, sure=True, piece_conf=0.7))
    assert window.score.canvas.current_system == 4 and window.score.canvas.first_page == 1
