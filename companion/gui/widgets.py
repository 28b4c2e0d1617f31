"""Small reusable widgets: the level meter, a confidence bar, pyqtgraph set-up."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

DB_MIN = -70.0


def configure_pyqtgraph(dark: bool) -> None:
    """Plots follow the app theme (pyqtgraph keeps its own global colours)."""
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=True, background="#1e1f22" if dark else "w",
                        foreground="#d8d8d8" if dark else "#303030", imageAxisOrder="row-major")


class LevelMeter(QWidget):
    """A horizontal meter: RMS bar, peak tick, silence-gate and clipping colours."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rms_db = DB_MIN
        self.peak_db = DB_MIN
        self.sound = False
        self.clipping = False
        self.active = False
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level (RMS bar, peak line). Green: someone is playing; grey: silence; red: clipping")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(240, 22)

    def set_level(self, rms_db: float, peak_db: float, sound: bool, clipping: bool) -> None:
        self.rms_db, self.peak_db, self.sound, self.clipping, self.active = rms_db, peak_db, sound, clipping, True
        self.update()

    def clear(self) -> None:
        self.rms_db = self.peak_db = DB_MIN
        self.active = self.sound = self.clipping = False
        self.update()

    @staticmethod
    def _frac(db: float) -> float:
        return max(0.0, min(1.0, (db - DB_MIN) / -DB_MIN))

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        pal = self.palette()
        p.setPen(pal.color(QPalette.ColorRole.Mid))
        p.setBrush(pal.color(QPalette.ColorRole.Base))
        p.drawRoundedRect(r, 4, 4)
        if not self.active:
            return
        color = QColor("#d64541") if self.clipping else QColor("#2eaa5c") if self.sound else QColor("#8a8f98")
        w = (r.width() - 4) * self._frac(self.rms_db)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(color)
        p.drawRoundedRect(QRectF(r.left() + 2, r.top() + 2, w, r.height() - 4), 3, 3)
        x = r.left() + 2 + (r.width() - 4) * self._frac(self.peak_db)
        p.setPen(pal.color(QPalette.ColorRole.Text))
        p.drawLine(int(x), int(r.top() + 2), int(x), int(r.bottom() - 2))
        for db in (-60, -40, -20, -6):
            tx = r.left() + 2 + (r.width() - 4) * self._frac(db)
            p.setPen(QColor(128, 128, 128, 120))
            p.drawLine(int(tx), int(r.bottom() - 5), int(tx), int(r.bottom() - 2))


class ConfidenceBar(QWidget):
    """A thin bar for one ranked piece's confidence."""

    def __init__(self, value: float = 0.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.value = value
        self.setFixedHeight(8)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect())
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.palette().color(QPalette.ColorRole.Mid))
        p.drawRoundedRect(r, 3, 3)
        p.setBrush(self.palette().color(QPalette.ColorRole.Highlight))
        p.drawRoundedRect(QRectF(r.left(), r.top(), r.width() * max(0.0, min(1.0, self.value)), r.height()), 3, 3)
