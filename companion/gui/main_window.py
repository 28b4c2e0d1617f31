"""The main window: a sidebar of views (Library, Score, Listen, Lookup, Training), menus, status.

It only shows and forwards: long work runs in :mod:`companion.gui.workers`
tasks, and a :class:`~companion.gui.watchdog.StallWatchdog` logs every time
the GUI thread was blocked for more than 50 ms.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QWidget,
)

from companion import __version__
from companion.config import Config, load_config
from companion.errors import CompanionError
from companion.gui.identification import Identification
from companion.gui.library_service import LibraryBackend
from companion.gui.library_view import LibraryView
from companion.gui.listen_panel import ListenPanel
from companion.gui.lookup_view import LookupView, is_audio_file
from companion.gui.page_cache import PageCache
from companion.gui.score_view import ScoreDocument, ScoreView
from companion.gui.settings_dialog import GuiPrefs, SettingsDialog
from companion.gui.theme import apply_theme
from companion.gui.training_view import TrainingView
from companion.gui.watchdog import StallWatchdog
from companion.gui.workers import TaskRunner

log = logging.getLogger(__name__)

VIEWS = ("Library", "Score", "Listen", "Lookup", "Training")
SHORTCUTS = (
    ("Ctrl+1 … Ctrl+5", "Library, Score, Listen, Lookup, Training"),
    ("Ctrl+Shift+O", "Add a folder to the library"),
    ("Ctrl+O", "Open a PDF score"),
    ("Ctrl+L", "Look up a recording"),
    ("F5", "Update the library index"),
    ("Ctrl+F", "Search the library"),
    ("Space", "Start / stop listening"),
    ("PgDown / PgUp", "Next / previous page"),
    ("Ctrl++ / Ctrl+− / Ctrl+0", "Zoom in / out / fit"),
    ("F", "Follow the performance again after turning pages by hand"),
    ("Ctrl+,", "Settings"),
    ("Ctrl+Q", "Quit"),
)


def _model_files(models_dir: Path) -> list[Path]:
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if p.suffix in {".pt", ".pth"})


class MainWindow(QMainWindow):
    """Top-level window: sidebar + views, menus and the status bar."""

    error_shown = Signal(str, str)

    def __init__(self, cfg: Config, input_file: Path | None = None, backend: LibraryBackend | None = None,
                 apply_style: bool = True, audio_backend: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.setWindowTitle("companion")
        self.setMinimumSize(720, 480)
        self.setAcceptDrops(True)
        self.errors: list[tuple[str, str]] = []
        self.prefs = GuiPrefs.load(self._settings())
        app = QApplication.instance()
        self.dark = apply_theme(app, self.prefs.theme) if apply_style and app is not None else False
        self.runner = TaskRunner(self)
        self.cache = PageCache(self.runner, parent=self)
        self.watchdog = StallWatchdog(self, capture_stacks=bool(os.environ.get("COMPANION_STALL_STACKS")))
        QTimer.singleShot(0, self.watchdog.start)  # measure from the first event-loop turn, not start-up
        self.backend = backend or LibraryBackend.default(cfg)
        self._doc_cache: dict[int, ScoreDocument] = {}

        self.library = LibraryView(self.backend, self.runner, self.cache)
        self.score = ScoreView(self.cache, lead=self.prefs.lead)
        self.score.set_two_pages(self.prefs.two_pages)
        self.listen = ListenPanel(cfg, self.runner, input_file=input_file, audio_backend=audio_backend)
        self.lookup = LookupView(cfg, self.runner)
        self.training = TrainingView(cfg, self.runner)
        self.stack = QStackedWidget()
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(150)
        for name, view in zip(VIEWS, (self.library, self.score, self.listen, self.lookup, self.training)):
            self.stack.addWidget(view)
            self.sidebar.addItem(QListWidgetItem(name))
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        h = QHBoxLayout(central)
        h.setContentsMargins(0, 0, 0, 0)
        h.setSpacing(0)
        h.addWidget(self.sidebar)
        h.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        self.tasks_label = QLabel("")
        self.statusBar().addPermanentWidget(self.tasks_label)
        self.statusBar().addPermanentWidget(self.busy)
        self.runner.task_started.connect(lambda _t: self._tasks_changed())
        self.runner.task_ended.connect(lambda _t: self._tasks_changed())

        for view in (self.library, self.lookup, self.training):
            view.message.connect(self.show_message)
            view.error.connect(self.show_error)
        self.listen.message.connect(self.show_message)
        self.training.model_activated.connect(self._model_activated)
        self.library.open_document.connect(self.open_library_document)
        self.library.library_changed.connect(self._doc_cache.clear)  # systems may have been re-detected
        self.listen.identified.connect(self.on_identification)
        self.lookup.open_at.connect(self.open_at)
        self.score.system_chosen.connect(self._system_clicked)
        self.score.layout_changed.connect(self._layout_chosen)
        self._build_menus()
        self.sidebar.setCurrentRow(0)
        self.statusBar().showMessage("Ready")
        self._restore_layout()

    # -- menus ---------------------------------------------------------------------------------
    def _action(self, menu, text: str, fn, shortcut: Any = None, tip: str = "") -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(lambda *_: fn())
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "&Add folder to library…", self.library.choose_folder, "Ctrl+Shift+O")
        self._action(m, "&Open score (PDF)…", self.choose_pdf, QKeySequence.StandardKey.Open)
        self._action(m, "&Look up recording…", self.choose_recording, "Ctrl+L")
        self._action(m, "&Update library index", lambda: self.library.start_indexing([]), "F5")
        m.addSeparator()
        self._action(m, "&Settings…", self.show_settings, "Ctrl+,")
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        v = self.menuBar().addMenu("&View")
        for i, name in enumerate(VIEWS):
            self._action(v, name, lambda i=i: self.show_view(i), f"Ctrl+{i + 1}")
        v.addSeparator()
        self._action(v, "&Search library", self._focus_search, QKeySequence.StandardKey.Find)
        self._action(v, "Start / stop &listening", self.listen.toggle, "Space")
        theme_menu = v.addMenu("&Theme")
        group = QActionGroup(self)
        for t in ("system", "light", "dark"):
            a = self._action(theme_menu, t.capitalize(), lambda t=t: self.set_theme(t))
            a.setCheckable(True)
            a.setChecked(t == self.prefs.theme)
            group.addAction(a)
        hm = self.menuBar().addMenu("&Help")
        self._action(hm, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(hm, "&About companion", self.show_about)

    def show_view(self, index: int) -> None:
        self.sidebar.setCurrentRow(index)

    def view_name(self) -> str:
        return VIEWS[self.stack.currentIndex()]

    def _focus_search(self) -> None:
        self.show_view(0)
        self.library.search.setFocus()
        self.library.search.selectAll()

    # -- messages ------------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking dialog (window-modal, returns at once) plus the status bar."""
        self.errors.append((title, message))
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_shown.emit(title, message)

    def _tasks_changed(self) -> None:
        quick = ("render", "list library", "list devices")  # short, frequent: no busy indicator
        names = [t.name for t in self.runner.active if not t.name.startswith(quick)]
        self.busy.setVisible(bool(names))
        self.tasks_label.setText(", ".join(sorted(set(names))))

    # -- opening scores ------------------------------------------------------------------------
    def choose_pdf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a PDF score", "", "PDF (*.pdf)")
        if path:
            self.open_pdf(Path(path))

    def open_pdf(self, path: Path, systems: list | None = None) -> ScoreDocument | None:
        try:
            doc = ScoreDocument.from_pdf(path, systems)
        except CompanionError as exc:
            self.show_error("Open score", str(exc))
            return None
        self.score.set_document(doc)
        self.show_view(1)
        return doc

    def library_document(self, document_id: int) -> ScoreDocument | None:
        """The score view's record of a library document (systems from the catalog)."""
        if document_id in self._doc_cache:
            return self._doc_cache[document_id]
        row = next((d for d in self.library.document_rows() if d is not None and d.id == document_id), None)
        if row is None:
            row = next((d for d in self.backend.documents() if d.id == document_id), None)
        if row is None:
            return None
        try:
            doc = ScoreDocument.from_pdf(Path(row.path), self.backend.systems(row.id), title=row.title,
                                         document_id=row.id, analysis_width=self.cfg.sheet.analysis_width,
                                         composer=row.composer)
        except CompanionError as exc:
            self.show_error("Open score", str(exc))
            return None
        self._doc_cache[document_id] = doc
        return doc

    def open_library_document(self, row: Any, system: int | None = None) -> None:
        doc = self.library_document(row.id)
        if doc is not None:
            self.score.set_document(doc, system)
            self.show_view(1)

    def open_at(self, document_id: int, system: int, seconds: float) -> None:
        doc = self.library_document(document_id)
        if doc is None:
            self.show_error("Open score", f"document {document_id} is no longer in the library")
            return
        if self.score.document is not doc:
            self.score.set_document(doc)
        self.score.turner and self.score.turner.follow()
        self.score.set_position(system)
        self.show_view(1)
        self.show_message(f"{doc.title}: system {system + 1} at {seconds:.1f} s of the recording")

    def on_identification(self, ident: Identification) -> None:
        """Follow the live engine: open the identified piece, highlight, turn pages."""
        pos = ident.position
        if pos is None:
            self.score.canvas.confident = False
            self.score.canvas.update()
            return
        # the engine's "sure" already weighs the evidence; the threshold applies to the piece's confidence
        # (a system's own probability is spread over its neighbours and is often low while following well)
        piece = next((p for p in ident.pieces if p.document_id == pos.document_id), None)
        confident = ident.sure and (piece.confidence if piece else pos.confidence) >= self.prefs.confidence
        doc = self.library_document(pos.document_id)
        if doc is None:
            return
        if self.score.document is not doc:
            if not confident:
                return  # never switch scores on a guess
            self.score.set_document(doc)
        if confident:
            if self.score.canvas.current_system != pos.system or not self.score.canvas.confident:
                self.score.set_position(pos.system, confident=True)  # only on a change: 20 updates a second
        else:
            self.score.canvas.confident = False
            self.score.canvas.update()

    def _model_activated(self, activation: Any) -> None:
        """A new model is installed: the library re-embeds with it; Listen and Lookup load it on their next run."""
        self._doc_cache.clear()
        self.library.reindex_with_new_model()

    def _layout_chosen(self, two_pages: bool) -> None:
        self.prefs.two_pages = two_pages
        self.prefs.save(self._settings())

    def _system_clicked(self, system: int) -> None:
        doc = self.score.document
        if doc is not None and doc.document_id is not None and self.listen.jump_to(doc.document_id, system):
            self.show_message(f"Following from system {system + 1}")

    # -- drag and drop ---------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if any(is_audio_file(Path(u.toLocalFile())) or u.toLocalFile().lower().endswith(".pdf") for u in urls):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        for u in event.mimeData().urls():
            path = Path(u.toLocalFile())
            if is_audio_file(path):
                self.look_up(path)
            elif path.suffix.lower() == ".pdf":
                self.open_pdf(path)
            else:
                continue
            event.acceptProposedAction()
            return

    def choose_recording(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Look up a recording", "",
                                              "Audio (*.wav *.flac *.ogg *.mp3 *.m4a *.aiff);;All files (*)")
        if path:
            self.look_up(Path(path))

    def look_up(self, path: Path):
        self.show_view(3)
        return self.lookup.look_up(path)

    # -- settings, about -------------------------------------------------------------------------
    def show_settings(self) -> SettingsDialog:
        devices = [d.name for d in getattr(self.listen, "_devices", [])]
        dlg = SettingsDialog(self.cfg, self.prefs, devices, self)
        dlg.accepted.connect(lambda: self.apply_settings(dlg))
        dlg.open()
        return dlg

    def apply_settings(self, dlg: SettingsDialog) -> None:
        try:
            dlg.save(self.cfg.paths.settings_file)
        except OSError as exc:
            self.show_error("Settings", f"could not save the settings: {exc}")
        self.prefs = dlg.prefs()
        self.prefs.save(self._settings())
        self.score.set_lead(self.prefs.lead)
        self.score.set_two_pages(self.prefs.two_pages)
        self.set_theme(self.prefs.theme)
        new_cfg = load_config(self.cfg.paths.settings_file)
        if new_cfg.paths.library_dir != self.cfg.paths.library_dir:
            self.backend = LibraryBackend.default(new_cfg)
            self.library.backend = self.backend
            self._doc_cache.clear()
            self.library.refresh()
        self.cfg = new_cfg
        self.listen.cfg = new_cfg
        self.lookup.cfg = new_cfg
        self.training.cfg = new_cfg
        self.show_message("Settings saved")

    def set_theme(self, theme: str) -> None:
        self.prefs.theme = theme
        self.prefs.save(self._settings())
        app = QApplication.instance()
        if app is not None:
            self.dark = apply_theme(app, theme)
            for plot in (self.listen.spec_plot, self.listen.conf_plot, self.lookup.spec_plot,
                         self.training.loss_plot, self.training.mrr_plot):
                plot.setBackground("#1e1f22" if self.dark else "w")

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in SHORTCUTS)
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>",
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "About companion", self._about_text(),
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _about_text(self) -> str:
        card = self.cfg.models_dir / "README.md"
        if card.exists():
            try:
                text = card.read_text(encoding="utf-8")
            except OSError as exc:
                text = f"(cannot read {card}: {exc})"
            card_html = "<br><b>Model card</b><pre style='white-space:pre-wrap'>" + _escape(text[:3000]) + "</pre>"
        else:
            card_html = "<br>No model card installed."
        return (
            f"<b>companion {__version__}</b><br>"
            "Finds the piece and the line of music being played in your scanned scores.<br><br>"
            f"Settings: {self.cfg.paths.settings_file}<br>"
            f"Log file: {self.cfg.paths.log_file}<br>{card_html}"
        )

    # -- state ---------------------------------------------------------------------------------
    def status_summary(self) -> dict[str, object]:
        """What the window reports about the installation (used by the headless run)."""
        library = self.cfg.paths.library_dir
        return {
            "library_dir": str(library),
            "library_exists": library.is_dir(),
            "models": [p.name for p in _model_files(self.cfg.models_dir)],
            "views": list(VIEWS),
            "documents": len(self.library.document_rows()),
            "indexing_available": self.backend.can_index,
        }

    # -- layout persistence --------------------------------------------------------------------
    def _settings(self) -> QSettings:
        path = self.cfg.paths.config_dir / "window.ini"
        return QSettings(str(path), QSettings.Format.IniFormat)

    def _restore_layout(self) -> None:
        qs = self._settings()
        geometry = qs.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)
        state = qs.value("state")
        if state is not None:
            self.restoreState(state)
        view = qs.value("view")
        if view is not None:
            try:
                self.show_view(max(0, min(len(VIEWS) - 1, int(view))))
            except (TypeError, ValueError):
                pass

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        try:
            qs = self._settings()
            qs.setValue("geometry", self.saveGeometry())
            qs.setValue("state", self.saveState())
            qs.setValue("view", self.stack.currentIndex())
            qs.sync()
        except Exception as exc:  # a read-only config dir must not stop closing
            log.warning("could not save window layout: %s", exc)
        self.watchdog.stop()
        self.listen.shutdown()
        self.training.shutdown()
        self.lookup.cancel()
        self.library.cancel()
        self.runner.cancel_all()
        self.runner.wait(5000)
        self.cache.shutdown()
        super().closeEvent(event)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
