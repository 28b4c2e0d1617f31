"""Dropping a recording on the window looks it up in the background; a result opens the score there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from gui_helpers import ToneEngine, index_folder, write_tones  # noqa: E402


def _drop(window, path: Path) -> bool:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = window.rect().center()
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    return True


def test_drop_a_recording_shows_pieces_and_timeline_and_opens_the_score(qtbot, window, score_folder: Path,
                                                                       tmp_path: Path, monkeypatch) -> None:
    import companion.engine

    index_folder(qtbot, window, score_folder)
    bach = next(d for d in window.library.document_rows() if d.title == "Prelude in C")
    pages = [s.page for s in window.backend.systems(bach.id)]
    calls = []

    def lookup_recording(cfg, library_dir, audio_path, progress=None, cancel=None):
        """Engine double: the tone engine over 0.5-s hops of the file's spectrogram."""
        from companion.audio import log_spectrogram

        calls.append(Path(audio_path))
        spec = log_spectrogram(audio_path)
        engine = ToneEngine(bach.id, bach.title, pages)
        hops = []
        for i in range(0, len(spec) - 9, 10):
            hops.append(engine.on_frames(spec[i : i + 10], i / 20.0))
            if progress:
                progress(i / len(spec))
        return hops

    monkeypatch.setattr(companion.engine, "lookup_recording", lookup_recording, raising=False)
    audio = write_tones(tmp_path / "recording.wav", seconds_per_tone=1.0)
    assert _drop(window, audio)
    assert window.view_name() == "Lookup"
    view = window.lookup
    qtbot.waitUntil(lambda: view.result is not None and view.task is None, timeout=30000)
    assert calls == [audio]
    assert view.pieces.rowCount() == 1 and view.pieces.item(0, 0).text() == "Prelude in C"
    assert view.timeline.rowCount() == 6
    assert [view.timeline.item(r, 3).text() for r in range(6)] == [
        "page 1 · system 1", "page 1 · system 2", "page 1 · system 3",
        "page 2 · system 1", "page 2 · system 2", "page 2 · system 3"]
    assert view.spec_img.image is not None and view.spec_img.image.shape[0] == 92
    # click the fifth segment: the score opens at page 2, system 2
    view.timeline.selectRow(4)
    view.open_btn.click()
    assert window.view_name() == "Score"
    assert window.score.document.title == "Prelude in C"
    assert window.score.canvas.current_system == 4
    assert window.score.canvas.first_page == 1


def test_lookup_without_engine_says_so_and_invents_nothing(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    import companion.engine

    monkeypatch.delattr(companion.engine, "lookup_recording", raising=False)
    audio = write_tones(tmp_path / "take.wav", seconds_per_tone=0.5, tones=(440.0,))
    task = window.look_up(audio)
    assert task is not None
    view = window.lookup
    qtbot.waitUntil(lambda: view.result is not None and view.task is None, timeout=30000)
    assert "Identification unavailable" in view.file_label.text()
    assert view.pieces.rowCount() == 0 and view.timeline.rowCount() == 0
    assert not view.open_btn.isEnabled()
    assert np.asarray(view.result.spectrogram).shape[1] == 92


def test_unreadable_recording_is_an_error_message(qtbot, window, tmp_path: Path) -> None:
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    window.look_up(bad)
    qtbot.waitUntil(lambda: window.lookup.task is None, timeout=30000)
    assert window.errors and window.errors[-1][0] == "Look up recording"
    assert "Could not look up" in window.lookup.file_label.text()


def test_files_that_are_not_audio_or_pdf_are_refused(qtbot, window, tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    assert _drop(window, other) is False


def test_play_from_here_plays_the_recording_from_the_segment(qtbot, window, score_folder: Path, tmp_path: Path,
                                                             monkeypatch) -> None:
    import sys
    import types

    import companion.engine

    index_folder(qtbot, window, score_folder)
    bach = next(d for d in window.library.document_rows() if d.title == "Prelude in C")
    pages = [s.page for s in window.backend.systems(bach.id)]

    def lookup_recording(cfg, library_dir, audio_path, progress=None, cancel=None):
        from companion.audio import log_spectrogram

        spec = log_spectrogram(audio_path)
        eng = ToneEngine(bach.id, bach.title, pages)
        return [eng.on_frames(spec[i : i + 10], i / 20.0) for i in range(0, len(spec) - 9, 10)]

    played = []
    fake = types.SimpleNamespace(
        play=lambda data, sr: played.append((len(data), sr)),
        get_stream=lambda: types.SimpleNamespace(active=False),
        stop=lambda: None, sleep=lambda ms: None)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    monkeypatch.setattr(companion.engine, "lookup_recording", lookup_recording, raising=False)
    audio = write_tones(tmp_path / "take.wav", seconds_per_tone=1.0)
    window.look_up(audio)
    view = window.lookup
    qtbot.waitUntil(lambda: view.result is not None and view.task is None, timeout=30000)
    view.timeline.selectRow(2)
    start = view.segments[2][0]
    view.play_btn.click()
    qtbot.waitUntil(lambda: bool(played) and not view.playing, timeout=10000)
    total = int(round(view.result.duration * 22050))
    assert played[0][1] == 22050
    assert abs(played[0][0] - (total - int(start * 22050))) <= 1, "playback starts at the segment"
    assert window.score.canvas.current_system == 2


def test_dropping_a_pdf_opens_it_in_the_score_view(qtbot, window, score_folder: Path) -> None:
    assert _drop(window, score_folder / "Satie - Gymnopedie 1.pdf")
    assert window.view_name() == "Score"
    assert window.score.document is not None and window.score.document.n_pages == 1
