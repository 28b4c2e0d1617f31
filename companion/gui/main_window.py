"""The main window. It only shows and forwards; all computing happens in the core."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from companion import __version__
from companion.config import Config

log = logging.getLogger(__name__)


def _model_files(models_dir: Path) -> list[Path]:
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if p.suffix in {".pt", ".pth"})


class MainWindow(QMainWindow):
    """Top-level window: menus, the central views and the status bar."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.setWindowTitle("companion")
        self.setMinimumSize(720, 480)
        self._build_menus()
        self._overview = QLabel()
        self._overview.setObjectName("overview")
        self._overview.setTextFormat(Qt.TextFormat.RichText)
        self._overview.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self._overview.setWordWrap(True)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self._overview)
        self.setCentralWidget(central)
        self._refresh_overview()
        self._restore_layout()

    # -- menus ---------------------------------------------------------------
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About companion", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)

    def show_about(self) -> None:
        QMessageBox.about(self, "About companion", self._about_text())

    def _about_text(self) -> str:
        card = self.cfg.models_dir / "README.md"
        card_note = f"Model card: {card}" if card.exists() else "No model card installed."
        return (
            f"<b>companion {__version__}</b><br>"
            "Finds the piece and the line of music being played in your scanned scores.<br><br>"
            f"Settings: {self.cfg.paths.settings_file}<br>"
            f"Log file: {self.cfg.paths.log_file}<br>{card_note}"
        )

    # -- state ---------------------------------------------------------------
    def status_summary(self) -> dict[str, object]:
        """What the window reports about the installation (used by the headless run)."""
        library = self.cfg.paths.library_dir
        return {
            "library_dir": str(library),
            "library_exists": library.is_dir(),
            "models": [p.name for p in _model_files(self.cfg.models_dir)],
        }

    def _refresh_overview(self) -> None:
        s = self.status_summary()
        models = ", ".join(s["models"]) if s["models"] else "none installed yet"  # type: ignore[arg-type]
        library_state = "exists" if s["library_exists"] else "not created yet"
        self._overview.setText(
            f"<h2>companion {__version__}</h2>"
            f"<p><b>Library:</b> {s['library_dir']} ({library_state})</p>"
            f"<p><b>Models:</b> {models}</p>"
        )
        self.statusBar().showMessage("Ready")

    # -- layout persistence --------------------------------------------------
    def _settings(self) -> QSettings:
        path = self.cfg.paths.config_dir / "window.ini"
        return QSettings(str(path), QSettings.Format.IniFormat)

    def _restore_layout(self) -> None:
        geometry = self._settings().value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1200, 800)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        try:
            self._settings().setValue("geometry", self.saveGeometry())
        except Exception as exc:  # a read-only config dir must not stop closing
            log.warning("could not save window layout: %s", exc)
        super().closeEvent(event)
