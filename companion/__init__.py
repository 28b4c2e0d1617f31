"""companion: a score-following companion for pianists and music librarians.

The package is split into a Qt-free core (everything that computes: audio,
sheets, models, index, engine, training) and a thin GUI layer in
``companion.gui``. Core modules must never import PySide6 or pyqtgraph; the
test suite enforces this.
"""

__version__ = "0.1.0"
