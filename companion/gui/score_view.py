"""The score: pages of a PDF with its systems, the followed system highlighted.

Pages come from :class:`~companion.gui.page_cache.PageCache` (rendered in
workers); zoom rescales what is cached at once and asks for a sharp render
of the new size. System boxes are in analysis pixels (the page scaled to
``analysis_width`` wide, as the library stores them), so they scale with the
page. Page turns are decided by :class:`companion.engine.page_turn.PageTurner`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeySequence, QMouseEvent, QPainter, QPalette, QPen, QShortcut, QWheelEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from companion.engine.page_turn import PageTurner, PageTurnParams
from companion.gui.page_cache import PageCache, page_sizes

log = logging.getLogger(__name__)

PAGE_GAP = 16
MARGIN = 12
ZOOM_MIN, ZOOM_MAX = 0.25, 4.0


@dataclass
class ScoreDocument:
    """What the view needs of a score: its file, pages and detected systems."""

    path: Path
    title: str
    page_sizes: list[tuple[float, float]]
    """Width, height of each page in points."""
    systems: list[tuple[int, tuple[float, float, float, float]]] = field(default_factory=list)
    """(page, (x0, y0, x1, y1) in analysis pixels) in reading order."""
    analysis_width: int = 835
    document_id: int | None = None
    composer: str = ""

    @property
    def n_pages(self) -> int:
        return len(self.page_sizes)

    @classmethod
    def from_pdf(cls, path: Path, systems: list | None = None, title: str = "", document_id: int | None = None,
                 analysis_width: int = 835, composer: str = "") -> "ScoreDocument":
        """Read page sizes (fast, no rendering); ``systems`` as SystemRecords or (page, box) pairs."""
        sizes = page_sizes(Path(path))
        pairs: list[tuple[int, tuple[float, float, float, float]]] = []
        for s in systems or []:
            if hasattr(s, "page"):
                pairs.append((int(s.page), tuple(float(v) for v in s.box)))  # type: ignore[arg-type]
            else:
                pairs.append((int(s[0]), tuple(float(v) for v in s[1])))  # type: ignore[arg-type]
        pairs = [p for p in pairs if 0 <= p[0] < len(sizes)]
        return cls(Path(path), title or Path(path).stem, sizes, pairs, analysis_width, document_id, composer)


class ScoreCanvas(QWidget):
    """Paints the visible page(s) and the system overlays; reports clicks on systems."""

    system_clicked = Signal(int)

    def __init__(self, cache: PageCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.document: ScoreDocument | None = None
        self.first_page = 0
        self.pages_shown = 1
        self.zoom = 1.0
        self.base_width = 700.0
        """Page width in pixels at zoom 1 (fit width sets it)."""
        self.current_system: int | None = None
        self.confident = True
        self.hover_system: int | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        cache.page_ready.connect(self._on_page_ready)
        cache.page_failed.connect(lambda *_: self.update())

    # -- geometry -------------------------------------------------------------------------------
    def visible_pages(self) -> list[int]:
        if self.document is None:
            return []
        return list(range(self.first_page, min(self.document.n_pages, self.first_page + self.pages_shown)))

    def page_width_px(self) -> float:
        return self.base_width * self.zoom

    def page_rects(self) -> dict[int, QRectF]:
        rects: dict[int, QRectF] = {}
        if self.document is None:
            return rects
        x = float(MARGIN)
        w = self.page_width_px()
        for page in self.visible_pages():
            pw, ph = self.document.page_sizes[page]
            h = w * ph / max(1.0, pw)
            rects[page] = QRectF(x, MARGIN, w, h)
            x += w + PAGE_GAP
        return rects

    def sizeHint(self) -> QSize:  # noqa: N802
        rects = self.page_rects()
        if not rects:
            return QSize(400, 300)
        right = max(r.right() for r in rects.values()) + MARGIN
        bottom = max(r.bottom() for r in rects.values()) + MARGIN
        return QSize(int(right), int(bottom))

    def system_rect(self, index: int) -> QRectF | None:
        if self.document is None or not 0 <= index < len(self.document.systems):
            return None
        page, (x0, y0, x1, y1) = self.document.systems[index]
        rect = self.page_rects().get(page)
        if rect is None:
            return None
        s = rect.width() / self.document.analysis_width
        return QRectF(rect.left() + x0 * s, rect.top() + y0 * s, (x1 - x0) * s, (y1 - y0) * s).adjusted(-4, -4, 4, 4)

    def system_at(self, pos: QPointF) -> int | None:
        if self.document is None:
            return None
        for i in range(len(self.document.systems)):
            r = self.system_rect(i)
            if r is not None and r.contains(pos):
                return i
        return None

    def relayout(self) -> None:
        self.setFixedSize(self.sizeHint())
        self.update()

    # -- painting -------------------------------------------------------------------------------
    def _on_page_ready(self, path: str, page: int, width: int) -> None:
        if self.document is not None and path == str(self.document.path) and page in self.visible_pages():
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        painter.fillRect(self.rect(), pal.color(QPalette.ColorRole.Window).darker(108))
        if self.document is None:
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "No score open.\nOpen one from the Library, or click a result of a lookup.")
            return
        dpr = self.devicePixelRatioF()
        path = str(self.document.path)
        for page, rect in self.page_rects().items():
            painter.fillRect(rect.translated(2, 3), QColor(0, 0, 0, 40))  # shadow
            want = int(rect.width() * dpr)
            image = self.cache.get(path, page, want)
            if image is None:
                image = self.cache.any_size(path, page)  # smooth zoom: scale what we have
            if image is not None:
                painter.drawImage(rect, image)
            else:
                painter.fillRect(rect, QColor("white"))
                painter.setPen(QColor(120, 120, 120))
                err = self.cache.error(path, page)
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter,
                                 f"Page {page + 1} cannot be shown:\n{err}" if err else f"Rendering page {page + 1}…")
            painter.setPen(QColor(0, 0, 0, 60))
            painter.drawRect(rect)
        # prefetch the page after the view, so a turn shows it at once
        nxt = self.first_page + self.pages_shown
        if nxt < self.document.n_pages and self.page_rects():
            self.cache.request(path, nxt, int(self.page_width_px() * dpr))
        accent = pal.color(QPalette.ColorRole.Highlight)
        if self.hover_system is not None and self.hover_system != self.current_system:
            r = self.system_rect(self.hover_system)
            if r is not None:
                painter.setPen(QPen(accent, 1.5, Qt.PenStyle.DashLine))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(r, 6, 6)
        if self.current_system is not None:
            r = self.system_rect(self.current_system)
            if r is not None:
                fill = QColor(accent)
                fill.setAlpha(60 if self.confident else 25)
                pen = QPen(accent, 3 if self.confident else 2,
                           Qt.PenStyle.SolidLine if self.confident else Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.setBrush(fill)
                painter.drawRoundedRect(r, 6, 6)

    # -- mouse ----------------------------------------------------------------------------------
    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        hit = self.system_at(event.position())
        if hit != self.hover_system:
            self.hover_system = hit
            self.setCursor(Qt.CursorShape.PointingHandCursor if hit is not None else Qt.CursorShape.ArrowCursor)
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            hit = self.system_at(event.position())
            if hit is not None:
                self.system_clicked.emit(hit)
                return
        super().mousePressEvent(event)


class ScoreView(QWidget):
    """Toolbar + scrollable canvas + page-turn logic for one document at a time."""

    position_changed = Signal(int)
    """The highlighted system changed (by the follower or a click)."""
    system_chosen = Signal(int)
    """The user clicked a system: the performance position should move there."""
    page_changed = Signal(int)
    layout_changed = Signal(bool)
    """Two pages (True) or one; the window remembers the choice."""

    def __init__(self, cache: PageCache, lead: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.lead = lead
        self.turner: PageTurner | None = None
        self.turns = 0
        """Automatic page turns so far (shown in the status line, checked by tests)."""
        self.canvas = ScoreCanvas(cache)
        self.canvas.system_clicked.connect(self._clicked)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.canvas)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.scroll.setWidgetResizable(False)
        self.scroll.viewport().installEventFilter(self)
        self._fit = True

        self.title = QLabel("No score")
        self.title.setObjectName("scoreTitle")
        f = self.title.font()
        f.setPointSizeF(f.pointSizeF() * 1.2)
        f.setBold(True)
        self.title.setFont(f)
        self.prev_btn = self._tool("◀", "Previous page (PgUp)", self.previous_page)
        self.next_btn = self._tool("▶", "Next page (PgDown)", self.next_page)
        self.page_box = QSpinBox()
        self.page_box.setMinimum(1)
        self.page_box.setKeyboardTracking(False)
        self.page_box.valueChanged.connect(lambda v: self.show_page(v - 1))
        self.page_total = QLabel("/ 0")
        self.zoom_out_btn = self._tool("−", "Zoom out (Ctrl+−)", lambda: self.set_zoom(self.canvas.zoom / 1.2))
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(48)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.zoom_in_btn = self._tool("+", "Zoom in (Ctrl++)", lambda: self.set_zoom(self.canvas.zoom * 1.2))
        self.fit_btn = self._tool("Fit", "Fit the page(s) to the window (Ctrl+0)", self.fit)
        self.single_btn = self._tool("1 page", "One page at a time", lambda: self._user_layout(False), checkable=True)
        self.double_btn = self._tool("2 pages", "Two pages side by side", lambda: self._user_layout(True), checkable=True)
        group = QButtonGroup(self)
        group.addButton(self.single_btn)
        group.addButton(self.double_btn)
        self.single_btn.setChecked(True)
        self.follow_btn = self._tool("Follow", "Let the performance turn the pages again (F)", self.follow,
                                     checkable=True)
        self.follow_btn.setChecked(True)
        self.state_label = QLabel("")
        self.state_label.setObjectName("scoreState")

        bar = QHBoxLayout()
        bar.setContentsMargins(8, 6, 8, 6)
        bar.addWidget(self.title, 1)
        for w in (self.prev_btn, self.page_box, self.page_total, self.next_btn):
            bar.addWidget(w)
        bar.addSpacing(16)
        for w in (self.zoom_out_btn, self.zoom_label, self.zoom_in_btn, self.fit_btn):
            bar.addWidget(w)
        bar.addSpacing(16)
        for w in (self.single_btn, self.double_btn, self.follow_btn):
            bar.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.scroll, 1)
        status = QHBoxLayout()
        status.setContentsMargins(8, 2, 8, 4)
        status.addWidget(self.state_label, 1)
        layout.addLayout(status)
        for seq, fn in (
            (QKeySequence.StandardKey.MoveToNextPage, self.next_page),
            (QKeySequence.StandardKey.MoveToPreviousPage, self.previous_page),
            (QKeySequence.StandardKey.ZoomIn, lambda: self.set_zoom(self.canvas.zoom * 1.2)),
            (QKeySequence.StandardKey.ZoomOut, lambda: self.set_zoom(self.canvas.zoom / 1.2)),
            (QKeySequence("Ctrl+0"), self.fit),
            (QKeySequence("F"), self.follow),
        ):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(80)
        self._resize_timer.timeout.connect(self._refit)
        self._update_controls()

    def _tool(self, text: str, tip: str, fn, checkable: bool = False) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setCheckable(checkable)
        b.setAutoRaise(True)
        b.clicked.connect(lambda *_: fn())
        return b

    # -- document -------------------------------------------------------------------------------
    @property
    def document(self) -> ScoreDocument | None:
        return self.canvas.document

    def set_document(self, doc: ScoreDocument | None, system: int | None = None) -> None:
        self.canvas.document = doc
        self.canvas.current_system = None
        self.canvas.first_page = 0
        self.turner = None
        if doc is not None:
            pages = [p for p, _ in doc.systems]
            self.turner = PageTurner(pages, doc.n_pages, PageTurnParams(self.lead, self.canvas.pages_shown == 2))
            who = f"{doc.composer} — " if doc.composer else ""
            self.title.setText(f"{who}{doc.title}")
            self.title.setToolTip(str(doc.path))
        else:
            self.title.setText("No score")
        self._refit()
        if doc is not None and system is not None:
            self.set_position(system)
        self._update_controls()

    def set_lead(self, lead: int) -> None:
        self.lead = lead
        if self.turner:
            self.turner.set_lead(lead)

    # -- navigation -----------------------------------------------------------------------------
    def show_page(self, page: int) -> None:
        """Manual navigation: the follower leaves the view alone until it catches up."""
        if self.turner is None:
            return
        first = self.turner.show_page(page)
        self._apply_first(first)
        self.follow_btn.setChecked(False)

    def next_page(self) -> None:
        if self.turner:
            self.show_page(self.turner.first_page + 1)

    def previous_page(self) -> None:
        if self.turner:
            self.show_page(self.turner.first_page - 1)

    def follow(self) -> None:
        if self.turner:
            self.turner.follow()
            if self.canvas.current_system is not None:
                d = self.turner.update(self.canvas.current_system)
                self._apply_first(d.first_page)
        self.follow_btn.setChecked(True)

    def set_two_pages(self, two: bool) -> None:
        self.canvas.pages_shown = 2 if two else 1
        (self.double_btn if two else self.single_btn).setChecked(True)
        if self.turner:
            self.turner.set_layout(two)
            self.canvas.first_page = self.turner.first_page
        self._refit()
        self._update_controls()

    def _user_layout(self, two: bool) -> None:
        self.set_two_pages(two)
        self.layout_changed.emit(two)

    def _apply_first(self, first: int) -> None:
        if first != self.canvas.first_page:
            self.canvas.first_page = first
            self.canvas.relayout()
            self.scroll.verticalScrollBar().setValue(0)
            self.page_changed.emit(first)
        self._update_controls()

    # -- the performance ------------------------------------------------------------------------
    def set_position(self, system: int | None, confident: bool = True) -> bool:
        """Highlight ``system`` (None: nothing) and turn pages as needed; True if a page turned."""
        self.canvas.current_system = system
        self.canvas.confident = confident
        turned = False
        if system is not None and self.turner is not None and 0 <= system < len(self.turner.system_pages):
            decision = self.turner.update(system)
            if decision.turned:
                self.turns += 1
                turned = True
            self._apply_first(decision.first_page)
            self.follow_btn.setChecked(not self.turner.manual)
            self._scroll_to_system(system)
        self.canvas.update()
        self.position_changed.emit(-1 if system is None else system)
        self._update_controls()
        return turned

    def _clicked(self, system: int) -> None:
        if self.turner:
            self.turner.follow()
        self.set_position(system)
        self.system_chosen.emit(system)

    def _scroll_to_system(self, system: int) -> None:
        r = self.canvas.system_rect(system)
        if r is not None:
            self.scroll.ensureVisible(int(r.center().x()), int(r.center().y()),
                                      int(r.width() / 2) + 20, int(r.height() / 2) + 40)

    # -- zoom -----------------------------------------------------------------------------------
    def set_zoom(self, zoom: float) -> None:
        self._fit = False
        self.canvas.zoom = max(ZOOM_MIN, min(ZOOM_MAX, zoom))
        self.canvas.relayout()
        self._update_controls()

    def fit(self) -> None:
        self._fit = True
        self._refit()

    def _refit(self) -> None:
        doc = self.canvas.document
        vw = max(200, self.scroll.viewport().width() - 2 * MARGIN)
        vh = max(200, self.scroll.viewport().height() - 2 * MARGIN)
        if doc is not None and doc.n_pages:
            n = self.canvas.pages_shown
            pw, ph = doc.page_sizes[self.canvas.first_page]
            by_width = (vw - (n - 1) * PAGE_GAP) / n
            by_height = vh * pw / max(1.0, ph)
            self.canvas.base_width = max(150.0, min(by_width, by_height))
        if self._fit:
            self.canvas.zoom = 1.0
        self.canvas.relayout()
        self._update_controls()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._resize_timer.start()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.scroll.viewport() and isinstance(event, QWheelEvent):
            if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                step = 1.1 if event.angleDelta().y() > 0 else 1 / 1.1
                self.set_zoom(self.canvas.zoom * step)
                return True
        return super().eventFilter(obj, event)

    def _update_controls(self) -> None:
        doc = self.canvas.document
        n = doc.n_pages if doc else 0
        self.page_box.blockSignals(True)
        self.page_box.setMaximum(max(1, n))
        self.page_box.setValue(self.canvas.first_page + 1)
        self.page_box.blockSignals(False)
        self.page_total.setText(f"/ {n}")
        for w in (self.prev_btn, self.next_btn, self.page_box, self.zoom_in_btn, self.zoom_out_btn, self.fit_btn):
            w.setEnabled(doc is not None)
        self.prev_btn.setEnabled(doc is not None and self.canvas.first_page > 0)
        self.next_btn.setEnabled(doc is not None and self.canvas.first_page + self.canvas.pages_shown < n)
        self.zoom_label.setText(f"{self.canvas.zoom * 100:.0f}%")
        if doc is None:
            self.state_label.setText("")
            return
        sys_ = self.canvas.current_system
        where = ""
        if sys_ is not None and 0 <= sys_ < len(doc.systems):
            page = doc.systems[sys_][0]
            on_page = [i for i, (p, _) in enumerate(doc.systems) if p == page]
            where = f"At system {on_page.index(sys_) + 1} of page {page + 1}"
            if not self.canvas.confident:
                where += " (not sure)"
        elif not doc.systems:
            where = "No systems detected in this score (index it in the Library to follow it)"
        manual = " · manual page turning: press Follow (F) to let the performance turn pages" if (
            self.turner and self.turner.manual) else ""
        self.state_label.setText(f"{where}{manual}  ·  {len(doc.systems)} systems, {n} pages, "
                                 f"page-turn lead {self.lead}")
