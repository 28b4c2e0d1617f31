"""Light and dark themes: the Fusion style with a palette, plus a little style sheet."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")


def _dark_palette() -> QPalette:
    p = QPalette()
    c = {
        QPalette.ColorRole.Window: "#2b2d31", QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1e1f22", QPalette.ColorRole.AlternateBase: "#26282c",
        QPalette.ColorRole.ToolTipBase: "#3a3d42", QPalette.ColorRole.ToolTipText: "#f0f0f0",
        QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#33363b",
        QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Highlight: "#3b82f6", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#7aa7ff", QPalette.ColorRole.PlaceholderText: "#8b8f96",
        QPalette.ColorRole.Mid: "#45484e", QPalette.ColorRole.Dark: "#18191c", QPalette.ColorRole.Light: "#4a4d53",
    }
    for role, color in c.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7d83"))
    return p


def _light_palette() -> QPalette:
    p = QPalette()
    c = {
        QPalette.ColorRole.Window: "#f4f5f7", QPalette.ColorRole.WindowText: "#1f2328",
        QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f2f4f7",
        QPalette.ColorRole.ToolTipBase: "#ffffe8", QPalette.ColorRole.ToolTipText: "#1f2328",
        QPalette.ColorRole.Text: "#1f2328", QPalette.ColorRole.Button: "#eceef1",
        QPalette.ColorRole.ButtonText: "#1f2328", QPalette.ColorRole.Highlight: "#2f6fde",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#2f6fde",
        QPalette.ColorRole.PlaceholderText: "#8a9099", QPalette.ColorRole.Mid: "#c9ced6",
        QPalette.ColorRole.Dark: "#a0a6b0", QPalette.ColorRole.Light: "#ffffff",
    }
    for role, color in c.items():
        p.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#9aa0a8"))
    return p


def is_dark(app: QApplication) -> bool:
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def apply_theme(app: QApplication, theme: str) -> bool:
    """Apply ``theme`` (system | light | dark); returns True when the result is dark."""
    app.setStyle("Fusion")
    if theme == "dark":
        app.setPalette(_dark_palette())
    elif theme == "light":
        app.setPalette(_light_palette())
    else:
        app.setPalette(app.style().standardPalette())
        hints = app.styleHints()
        scheme = getattr(hints, "colorScheme", None)
        if scheme is not None:
            from PySide6.QtCore import Qt

            if scheme() == Qt.ColorScheme.Dark:
                app.setPalette(_dark_palette())
            elif scheme() == Qt.ColorScheme.Light:
                app.setPalette(_light_palette())
        if not is_dark(app):
            app.setPalette(_light_palette())
    dark = is_dark(app)
    accent = app.palette().color(QPalette.ColorRole.Highlight).name()
    app.setStyleSheet(f"""
        QListWidget#sidebar {{ border: none; font-size: 11pt; padding-top: 8px;
            background: {'#232428' if dark else '#e9ebef'}; }}
        QListWidget#sidebar::item {{ padding: 10px 14px; border-radius: 6px; margin: 2px 6px; }}
        QListWidget#sidebar::item:selected {{ background: {accent}; color: white; }}
        QPushButton#primary {{ background: {accent}; color: white; border-radius: 4px; padding: 5px 14px;
            font-weight: bold; }}
        QPushButton#primary:disabled {{ background: {'#4a4d53' if dark else '#b8c4da'}; }}
        QLabel#dropZone {{ border: 2px dashed {'#5a5e66' if dark else '#b4bac4'}; border-radius: 10px;
            padding: 10px; color: {'#b8bcc4' if dark else '#555b66'}; }}
    """)
    from companion.gui.widgets import configure_pyqtgraph

    configure_pyqtgraph(dark)
    return dark
