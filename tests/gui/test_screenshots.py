"""Screenshots of every main view, taken from a real session on generated data.

Normally the pictures go to a temporary folder (the test checks that each
view renders something legible-sized and non-blank). To refresh the ones in
docs/screenshots/, run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb \\
        COMPANION_SCREENSHOT_DIR=docs/screenshots .venv/bin/pytest tests/gui/test_screenshots.py

The engine in these pictures is the tone-following test double of
tests/gui/gui_helpers.py (the shipped model is not part of the test data).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from gui_helpers import ToneEngine, index_folder, make_corrupt_pdf, make_score_pdf, write_tones  # noqa: E402

WORKS = [
    ("Bach - Prelude in C major BWV 846.pdf", 3, 4, "Prelude in C major, BWV 846", "J. S. Bach"),
    ("Satie - Gymnopedie No 1.pdf", 2, 4, "Gymnopédie No. 1", "Erik Satie"),
    ("Chopin - Nocturne Op 9 No 2.pdf", 4, 5, "Nocturne in E-flat major, Op. 9 No. 2", "Frédéric Chopin"),
    ("Debussy - Clair de lune.pdf", 5, 5, "Clair de lune", "Claude Debussy"),
    ("Schumann - Traumerei.pdf", 2, 4, "Träumerei, Op. 15 No. 7", "Robert Schumann"),
    ("Mozart - Sonata K 545 I.pdf", 4, 5, "Sonata in C, K. 545: Allegro", "W. A. Mozart"),
]


def _grab(widget, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path


def _check_picture(path: Path) -> None:
    from PySide6.QtGui import QImage

    image = QImage(str(path))
    assert image.width() >= 1000 and image.height() >= 600
    small = image.scaled(64, 40)
    values = np.array([[small.pixelColor(x, y).lightness() for x in range(64)] for y in range(40)])
    assert values.std() > 10, f"{path.name} looks blank"


def test_screenshots_of_every_view(qtbot, backend, tmp_path: Path, _isolated_home, monkeypatch) -> None:
    import companion.engine
    import companion.gui.listen_panel as lp
    from companion.config import load_config
    from companion.gui.main_window import MainWindow

    from gui_helpers import NoMicrophone

    out = Path(os.environ.get("COMPANION_SCREENSHOT_DIR") or tmp_path / "shots")
    out.mkdir(parents=True, exist_ok=True)
    folder = tmp_path / "Scores"
    folder.mkdir()
    for i, (name, pages, systems, title, composer) in enumerate(WORKS):
        make_score_pdf(folder / name, pages, seed=10 + i, systems_per_page=systems, title=title, composer=composer)
    make_corrupt_pdf(folder / "scan from phone (damaged).pdf")

    score_name = "Prelude"
    demo = Path(__file__).resolve().parents[2] / "resources" / "demo"
    if os.environ.get("COMPANION_SCREENSHOT_DIR") and demo.is_dir():
        # refreshing the committed pictures: add the bundled demo scans and use the real system detector
        import shutil

        from companion.gui.library_service import LibraryBackend
        from companion.library.frontend import SheetsFrontEnd

        from gui_helpers import hash_embedder

        for pdf in demo.glob("*.pdf"):
            shutil.copy(pdf, folder / pdf.name)
        backend = LibraryBackend(tmp_path / "demo-library", SheetsFrontEnd, hash_embedder)
        score_name = "Lindenbaum"
    w = MainWindow(load_config(), backend=backend, audio_backend=NoMicrophone())
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    shots: list[Path] = []

    # Library
    index_folder(qtbot, w, folder)
    lib = w.library
    qtbot.waitUntil(lambda: w.cache.pending == 0, timeout=30000)
    lib.refresh()
    qtbot.waitUntil(lambda: not lib.busy, timeout=10000)
    shots.append(_grab(w, out, "library"))

    # Score: two pages, a system highlighted
    bach = next(d for d in lib.document_rows() if score_name in d.title and d.status == "indexed")
    w.open_library_document(bach)
    w.score.double_btn.click()
    assert w.prefs.two_pages
    w.score.set_position(2)
    qtbot.waitUntil(lambda: w.cache.pending == 0, timeout=30000)
    qtbot.wait(200)
    qtbot.waitUntil(lambda: w.cache.pending == 0, timeout=30000)
    shots.append(_grab(w, out, "score"))

    # Listen: a recording played as the microphone, followed by the engine double
    pages = [s.page for s in backend.systems(bach.id)]
    others = [(d.id, d.title, c) for d, c in zip([d for d in lib.document_rows() if d.status == "indexed"
                                                  and d.id != bach.id][:2], (0.06, 0.02))]
    engine = ToneEngine(bach.id, bach.title, pages, others=others)
    monkeypatch.setattr(lp, "live_engine", lambda cfg, lib_dir: (engine, ""))
    w.listen.set_input_file(write_tones(tmp_path / "performance.wav", seconds_per_tone=1.2))
    w.show_view(2)
    w.listen.start(speed=3.0)
    qtbot.waitUntil(lambda: w.listen.listening, timeout=10000)
    qtbot.waitUntil(lambda: len(w.listen.history) > 70, timeout=30000)
    shots.append(_grab(w, out, "listen"))
    w.listen.stop()
    qtbot.waitUntil(lambda: not w.listen.listening and w.listen.start_btn.isEnabled(), timeout=30000)

    # Lookup: a dropped recording, ranked pieces and the timeline of systems
    def lookup_recording(cfg, library_dir, audio_path, progress=None, cancel=None):
        from companion.audio import log_spectrogram

        spec = log_spectrogram(audio_path)
        eng = ToneEngine(bach.id, bach.title, pages)
        return [eng.on_frames(spec[i : i + 10], i / 20.0) for i in range(0, len(spec) - 9, 10)]

    monkeypatch.setattr(companion.engine, "lookup_recording", lookup_recording, raising=False)
    w.look_up(write_tones(tmp_path / "recital take 3.wav", seconds_per_tone=1.5))
    qtbot.waitUntil(lambda: w.lookup.result is not None and w.lookup.task is None, timeout=30000)
    w.lookup.timeline.selectRow(3)
    shots.append(_grab(w, out, "lookup"))

    # Training: a tiny synthetic run (only when refreshing the committed pictures: the training
    # test covers the run itself, and it costs tens of seconds)
    t = w.training
    w.show_view(4)
    t.synthetic.setChecked(True)
    t.run_dir.setText(str(tmp_path / "runs"))
    if os.environ.get("COMPANION_SCREENSHOT_DIR"):
        t.epochs.setValue(4)
        t.batch.setValue(8)
        t.steps.setValue(12)
        t.valid_pairs.setValue(64)
        t.start()
        qtbot.waitUntil(lambda: t.task is None, timeout=240000)
        # a finished run is put next to the installed model at once (side by side, ready to activate)
        qtbot.waitUntil(lambda: t.model_task is None and t.comparison is not None, timeout=120000)
    shots.append(_grab(w, out, "training"))

    # Dark theme, score view
    w.set_theme("dark")
    w.show_view(1)
    qtbot.wait(100)
    shots.append(_grab(w, out, "score-dark"))
    w.set_theme("light")

    # Settings dialog
    dlg = w.show_settings()
    qtbot.waitExposed(dlg)
    path = out / "settings.png"
    assert dlg.grab().save(str(path))
    dlg.reject()

    for shot in shots:
        _check_picture(shot)
    w.close()
