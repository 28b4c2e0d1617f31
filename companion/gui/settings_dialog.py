"""Settings: library location, audio device, page-turn lead, confidence threshold, model, theme.

Core settings (library, device, model folder) go to ``settings.json`` through
:func:`companion.config.save_settings` so the command line sees them too;
display preferences (theme, page-turn lead, layout, threshold) live with the
window layout in ``window.ini``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from companion.config import Config, save_settings
from companion.gui.theme import THEMES


@dataclass
class GuiPrefs:
    theme: str = "system"
    lead: int = 1
    two_pages: bool = False
    confidence: float = 0.5
    """Below this the position is shown as "not sure" and pages do not turn."""

    @classmethod
    def load(cls, qs: QSettings) -> "GuiPrefs":
        d = cls()
        theme = str(qs.value("prefs/theme", d.theme))
        return cls(
            theme=theme if theme in THEMES else d.theme,
            lead=_int(qs.value("prefs/lead", d.lead), d.lead),
            two_pages=str(qs.value("prefs/two_pages", d.two_pages)).lower() == "true",
            confidence=_float(qs.value("prefs/confidence", d.confidence), d.confidence),
        )

    def save(self, qs: QSettings) -> None:
        qs.setValue("prefs/theme", self.theme)
        qs.setValue("prefs/lead", self.lead)
        qs.setValue("prefs/two_pages", self.two_pages)
        qs.setValue("prefs/confidence", self.confidence)


def _int(v: Any, default: int) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _float(v: Any, default: float) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


class SettingsDialog(QDialog):
    def __init__(self, cfg: Config, prefs: GuiPrefs, devices: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.cfg = cfg
        self.library = QLineEdit(str(cfg.paths.library_dir))
        self.models = QLineEdit(str(cfg.models_dir))
        self.device = QComboBox()
        self.device.setEditable(True)
        self.device.addItem("(system default)", "")
        for name in devices:
            self.device.addItem(name, name)
        current = cfg.audio.audio_device
        if current and current not in devices:
            self.device.addItem(current, current)
        self.device.setCurrentIndex(max(0, self.device.findData(current)))
        self.lead = QSpinBox()
        self.lead.setRange(0, 5)
        self.lead.setValue(prefs.lead)
        self.lead.setSuffix(" last system(s) of a page")
        self.lead.setToolTip("Turn the page when the performance reaches one of the last N systems of the "
                             "page (0: only when the next page begins)")
        self.layout_box = QComboBox()
        self.layout_box.addItems(["One page", "Two pages side by side"])
        self.layout_box.setCurrentIndex(1 if prefs.two_pages else 0)
        self.confidence = QDoubleSpinBox()
        self.confidence.setRange(0.05, 0.99)
        self.confidence.setSingleStep(0.05)
        self.confidence.setValue(prefs.confidence)
        self.confidence.setToolTip("Below this confidence the app says 'not sure' and does not turn pages")
        self.theme = QComboBox()
        for t in THEMES:
            self.theme.addItem(t.capitalize(), t)
        self.theme.setCurrentIndex(max(0, self.theme.findData(prefs.theme)))
        form = QFormLayout(self)
        form.addRow("Library folder:", self._browse_row(self.library))
        form.addRow("Model folder:", self._browse_row(self.models))
        form.addRow("Microphone:", self.device)
        form.addRow("Turn the page on reaching the:", self.lead)
        form.addRow("Score layout:", self.layout_box)
        form.addRow("Confidence threshold:", self.confidence)
        form.addRow("Theme:", self.theme)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(640, 290)

    def _browse_row(self, edit: QLineEdit) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(edit, 1)
        b = QPushButton("Browse…")
        b.clicked.connect(lambda: self._browse(edit))
        h.addWidget(b)
        return w

    def _browse(self, edit: QLineEdit) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text())
        if folder:
            edit.setText(folder)

    def prefs(self) -> GuiPrefs:
        return GuiPrefs(theme=str(self.theme.currentData()), lead=self.lead.value(),
                        two_pages=self.layout_box.currentIndex() == 1, confidence=self.confidence.value())

    def core_values(self) -> dict[str, Any]:
        text = self.device.currentText().strip()
        if text == self.device.itemText(self.device.currentIndex()):
            device = self.device.currentData() or ""
        else:  # a name typed in (a device that is not plugged in now)
            device = "" if text in ("", "(system default)") else text
        return {
            "paths": {"library_dir": str(Path(self.library.text()).expanduser())},
            "models_dir": str(Path(self.models.text()).expanduser()),
            "audio": {"audio_device": device},
        }

    def save(self, settings_file: Path) -> None:
        """Write the core settings (merging with what the file already holds)."""
        import json

        values = self.core_values()
        existing: dict[str, Any] = {}
        if settings_file.exists():
            try:
                existing = json.loads(settings_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                existing = {}
        for key in ("paths", "audio"):
            if isinstance(existing.get(key), dict):
                values[key] = {**existing[key], **values[key]}
        save_settings(values, settings_file)
