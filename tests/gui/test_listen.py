"""The Listen tab: an audio file played as the microphone is followed in the score (with a page
turn); without an engine nothing is guessed; without a microphone the state says so."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from gui_helpers import ToneEngine, index_folder, write_tones  # noqa: E402


def test_input_file_is_identified_highlighted_and_turns_the_page(qtbot, window, score_folder: Path,
                                                                  tmp_path: Path, monkeypatch) -> None:
    import companion.gui.listen_panel as lp

    index_folder(qtbot, window, score_folder)
    bach = next(d for d in window.library.document_rows() if d.title == "Prelude in C")
    pages = [s.page for s in window.backend.systems(bach.id)]
    assert pages == [0, 0, 0, 1, 1, 1]
    engine = ToneEngine(bach.id, bach.title, pages)
    monkeypatch.setattr(lp, "live_engine", lambda cfg, lib: (engine, ""))
    audio = write_tones(tmp_path / "performance.wav", seconds_per_tone=1.0)
    panel = window.listen
    panel.set_input_file(audio)
    window.show_view(2)
    idents = []
    panel.identified.connect(idents.append)
    turns = []
    window.score.page_changed.connect(turns.append)
    panel.start(speed=4.0)
    qtbot.waitUntil(lambda: panel.listening, timeout=10000)
    qtbot.waitUntil(lambda: not panel.listening and panel.start_btn.isEnabled(), timeout=30000)
    sure = [i for i in idents if i.sure]
    assert sure, "the engine's results reach the panel"
    assert window.score.document is not None and window.score.document.title == "Prelude in C"
    # the last tone is system 6 (page 2): it is highlighted, and the page turned on the way
    assert window.score.canvas.current_system == 5
    assert window.score.canvas.first_page == 1
    assert window.score.turns >= 1 and 1 in turns
    seen = [i.position.system for i in sure]
    first_seen = sorted(set(seen), key=seen.index)
    assert first_seen == list(range(6)), "every system, in the order played"
    assert panel.frames_seen > 100, "the live spectrogram received frames"
    shown = panel.spec_img.mapRectToParent(panel.spec_img.boundingRect())
    assert (round(shown.left()), round(shown.width()), round(shown.height())) == (-10, 10, 92), \
        "the spectrogram fills the last 10 s of the plot"
    assert float(panel.spec_img.image.max()) > 0.5, "and shows the tones"
    assert panel.ident_title.text() == "Prelude in C"
    assert len(panel.history) == len(idents)


def test_without_engine_identification_is_shown_as_unavailable(qtbot, window, tmp_path: Path,
                                                              monkeypatch) -> None:
    import companion.gui.listen_panel as lp

    monkeypatch.setattr(lp, "live_engine", lambda cfg, lib: (None, "the identification engine is not installed"))
    panel = window.listen
    panel.set_input_file(write_tones(tmp_path / "a.wav", seconds_per_tone=0.5, tones=(440.0, 660.0)))
    panel.start(speed=0)
    qtbot.waitUntil(lambda: panel.listening, timeout=10000)
    qtbot.waitUntil(lambda: not panel.listening and panel.start_btn.isEnabled(), timeout=30000)
    assert panel.ident_title.text() == "Identification unavailable"
    assert "not installed" in panel.ident_detail.text()
    assert panel.last_identification is None and window.score.canvas.current_system is None
    assert panel.frames_seen > 10
    assert panel.levels_seen > 5 and not panel.meter.active  # the meter moved, and rests after stop


def test_missing_microphone_is_a_state_with_a_message(qtbot, window, monkeypatch) -> None:
    import companion.gui.listen_panel as lp

    from companion.live import CaptureState

    monkeypatch.setattr(lp, "live_engine", lambda cfg, lib: (None, "no engine"))
    panel = window.listen
    qtbot.waitUntil(lambda: panel.refresh_btn.isEnabled(), timeout=5000)
    assert not panel.device_box.isEnabled()
    assert "no microphone" in panel.device_box.currentText().lower() or panel.device_box.count() == 1
    panel.start()
    qtbot.waitUntil(lambda: panel.state == CaptureState.NO_DEVICE, timeout=10000)
    assert "No microphone found" in panel.state_label.text()
    assert "retry" not in panel.retry_btn.text().lower() or not panel.retry_btn.isVisible()
    panel.stop()
    qtbot.waitUntil(lambda: panel.start_btn.isEnabled() and not panel.listening, timeout=10000)
