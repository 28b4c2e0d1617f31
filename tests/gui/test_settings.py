"""Settings are saved where the core reads them, display preferences are remembered,
shortcuts switch views, and About shows the model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")


def test_settings_dialog_saves_core_settings_and_preferences(qtbot, window, tmp_path: Path) -> None:
    from companion.config import load_config
    from companion.gui.settings_dialog import GuiPrefs

    dlg = window.show_settings()
    new_lib = tmp_path / "my library"
    dlg.library.setText(str(new_lib))
    dlg.device.setEditText("USB Audio CODEC")
    dlg.lead.setValue(2)
    dlg.layout_box.setCurrentIndex(1)
    dlg.confidence.setValue(0.7)
    dlg.theme.setCurrentIndex(dlg.theme.findData("dark"))
    dlg.accept()
    settings_file = window.cfg.paths.settings_file
    saved = json.loads(settings_file.read_text(encoding="utf-8"))
    assert saved["paths"]["library_dir"] == str(new_lib)
    cfg = load_config(settings_file)
    assert cfg.paths.library_dir == new_lib and cfg.audio.audio_device == "USB Audio CODEC"
    assert window.cfg.paths.library_dir == new_lib and window.backend.directory == new_lib
    assert window.score.lead == 2 and window.score.canvas.pages_shown == 2
    assert window.dark
    prefs = GuiPrefs.load(window._settings())
    assert (prefs.theme, prefs.lead, prefs.two_pages, prefs.confidence) == ("dark", 2, True, pytest.approx(0.7))
    window.set_theme("light")
    assert not window.dark


def test_shortcuts_switch_views_and_the_view_is_remembered(qtbot, window, _isolated_home) -> None:
    from PySide6.QtGui import QAction, QKeySequence

    from companion.config import load_config
    from companion.gui.main_window import MainWindow

    actions = {a.shortcut().toString(): a for a in window.findChildren(QAction) if not a.shortcut().isEmpty()}
    for key, view in (("Ctrl+3", "Listen"), ("Ctrl+5", "Training"), ("Ctrl+2", "Score")):
        actions[key].trigger()
        assert window.view_name() == view
    assert QKeySequence("Ctrl+L").toString() in actions and "F5" in actions
    window.close()
    again = MainWindow(load_config())
    qtbot.addWidget(again)
    assert again.view_name() == "Score"


def test_about_shows_the_model_card(qtbot, window, tmp_path: Path) -> None:
    import dataclasses

    models = tmp_path / "models"
    models.mkdir()
    (models / "README.md").write_text("# Model card\nsnippet encoder v3, MRR 0.41 on <held-out> pieces\n")
    window.cfg = dataclasses.replace(window.cfg, models_dir=models)
    text = window._about_text()
    assert "snippet encoder v3" in text and "&lt;held-out&gt;" in text
    window.cfg = dataclasses.replace(window.cfg, models_dir=tmp_path / "empty")
    assert "No model card installed" in window._about_text()
