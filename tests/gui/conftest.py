"""GUI fixtures: a generated library indexed with the test doubles, and a main window over it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from gui_helpers import (  # noqa: E402
    ProjectionFrontEnd,
    hash_embedder,
    make_corrupt_pdf,
    make_score_pdf,
)


@pytest.fixture(autouse=True)
def _collect_qt_garbage_on_the_gui_thread():
    """Collect each test's cyclic garbage (windows, dialogs, tasks) here, on the GUI thread.

    Otherwise Python's cycle collector may run in whichever thread allocates next,
    e.g. a worker of the next test, and destroy Qt objects from that thread (a
    segfault seen once with the collector running inside a worker's import).
    """
    yield
    import gc

    gc.collect()


@pytest.fixture
def score_folder(tmp_path: Path) -> Path:
    """Two good scores and one corrupt file."""
    folder = tmp_path / "scores"
    folder.mkdir()
    make_score_pdf(folder / "Bach - Prelude in C.pdf", 2, seed=1, systems_per_page=3,
                   title="Prelude in C", composer="J. S. Bach")
    make_score_pdf(folder / "Satie - Gymnopedie 1.pdf", 1, seed=2, systems_per_page=4,
                   title="Gymnopédie No. 1", composer="Erik Satie")
    make_corrupt_pdf(folder / "damaged scan.pdf")
    return folder


@pytest.fixture
def backend(tmp_path: Path):
    from companion.gui.library_service import LibraryBackend

    return LibraryBackend(tmp_path / "library", ProjectionFrontEnd, hash_embedder)


@pytest.fixture
def window(qtbot, backend, _isolated_home):
    from companion.config import load_config
    from companion.gui.main_window import MainWindow

    from gui_helpers import NoMicrophone

    w = MainWindow(load_config(), backend=backend, audio_backend=NoMicrophone())
    qtbot.addWidget(w)
    w.resize(1280, 820)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()
