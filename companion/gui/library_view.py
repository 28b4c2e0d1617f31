"""The Library tab: folders, indexing with per-file progress, the searchable list of works."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from companion.gui.library_service import LibraryBackend
from companion.gui.page_cache import PageCache
from companion.gui.workers import Task, TaskRunner

log = logging.getLogger(__name__)

COLUMNS = ("Title", "Composer", "Pages", "Systems", "Status", "Indexed")
THUMB_W = 48
DOC_ROLE = Qt.ItemDataRole.UserRole + 1


class LibraryView(QWidget):
    """Shows the library and runs indexing/removal in workers."""

    open_document = Signal(object)
    """A catalog row (DocumentRow) the user wants to see."""
    message = Signal(str)
    error = Signal(str, str)
    """title, message: shown as a dialog by the main window."""
    library_changed = Signal()

    def __init__(self, backend: LibraryBackend, runner: TaskRunner, cache: PageCache,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self.runner = runner
        self.cache = cache
        self.task: Task | None = None
        self.last_report: Any = None
        self.events: list[Any] = []
        self._rows: dict[str, int] = {}
        self.refreshing = False
        self._refresh_again = False
        self._reindex_pending = False

        self.add_btn = QPushButton("Add folder…")
        self.add_btn.setToolTip("Add a folder of PDF scores and index it (Ctrl+Shift+O)")
        self.add_btn.clicked.connect(self.choose_folder)
        self.remove_btn = QPushButton("Remove folder")
        self.remove_btn.clicked.connect(self.remove_selected_folder)
        self.index_btn = QPushButton("Update index")
        self.index_btn.setToolTip("Look for new, changed and deleted files in the folders (F5)")
        self.index_btn.clicked.connect(lambda: self.start_indexing([]))
        self.retry_btn = QPushButton("Retry failed")
        self.retry_btn.setToolTip("Index the files that failed before again")
        self.retry_btn.clicked.connect(lambda: self.start_indexing([], retry_errors=True))
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.cancel)
        self.cancel_btn.setVisible(False)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search composer or title…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(260)

        self.folders = QListWidget()
        self.folders.setObjectName("folders")
        self.folders.setMaximumWidth(320)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setObjectName("works")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(int(THUMB_W * 1.45))
        self.table.setIconSize(QPixmap(THUMB_W, int(THUMB_W * 1.4)).size())
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(self._activated)
        self.table.verticalScrollBar().valueChanged.connect(lambda _v: self.request_visible_thumbnails())
        self.search.textChanged.connect(lambda _t: self.request_visible_thumbnails())

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("indexProgress")
        self.activity = QListWidget()
        self.activity.setObjectName("activity")
        self.activity.setMaximumHeight(150)
        self.activity.setToolTip("What the last indexing run did, file by file")
        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        bar = QHBoxLayout()
        for w in (self.add_btn, self.remove_btn, self.index_btn, self.retry_btn, self.cancel_btn):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.search)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Folders</b>"))
        lv.addWidget(self.folders, 1)
        lv.addWidget(QLabel("<b>Activity</b>"))
        lv.addWidget(self.activity)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.table, 1)
        rv.addWidget(self.empty_label)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([260, 800])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        pl = QHBoxLayout()
        pl.addWidget(self.progress_label, 1)
        pl.addWidget(self.progress, 1)
        layout.addLayout(pl)
        cache.page_ready.connect(self._thumbnail_ready)
        self.refresh()

    # -- listing ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload folders and works from the catalog, in a worker (a busy disk must not freeze the window)."""
        if self.refreshing:
            self._refresh_again = True
            return
        self.refreshing = True
        self.runner.start("list library", _list_library, self.backend,
                          on_finished=self._listed,
                          on_failed=lambda m, user: self._listed(([], [], m)))

    def _listed(self, listing: tuple[list[Any], list[str], str]) -> None:
        self.refreshing = False
        if self._refresh_again:
            self._refresh_again = False
            self.refresh()
        docs, roots, problem = listing
        if problem:  # a damaged catalog: say so, keep the app usable
            self.error.emit("Library", problem)
        self.folders.clear()
        for r in roots:
            item = QListWidgetItem(r)
            item.setToolTip(r)
            self.folders.addItem(item)
        self.model.removeRows(0, self.model.rowCount())
        self._rows.clear()
        for doc in docs:
            self._add_row(doc)
        n_err = sum(1 for d in docs if d.status == "error")
        self.retry_btn.setEnabled(n_err > 0 and self.task is None)
        self.remove_btn.setEnabled(bool(roots) and self.task is None)
        self.index_btn.setEnabled(bool(roots) and self.task is None)
        if not docs:
            hint = "" if self.backend.can_index else f"<br><i>Indexing is unavailable: {self.backend.unavailable_reason}.</i>"
            self.empty_label.setText("<h3>Your library is empty</h3>Add a folder of PDF scores: every "
                                     f"system on every page is found and indexed.{hint}")
            self.empty_label.setVisible(True)
        else:
            self.empty_label.setVisible(False)
        self.request_visible_thumbnails()
        self.library_changed.emit()

    def request_visible_thumbnails(self) -> None:
        """Draw thumbnails only for the rows on screen: a library of thousands of scores must not
        queue thousands of renders in front of the page the user is reading."""
        first = max(0, self.table.rowAt(0))
        last = self.table.rowAt(self.table.viewport().height() - 1)
        last = self.proxy.rowCount() - 1 if last < 0 else last
        for r in range(first, min(last + 1, first + 40)):
            doc = self.proxy.index(r, 0).data(DOC_ROLE)
            if doc is not None and doc.status != "error":
                item = self.model.item(self._rows.get(doc.path, -1), 0) if doc.path in self._rows else None
                if item is not None and item.icon().isNull():
                    self.cache.request(doc.path, 0, THUMB_W * 2)

    @property
    def busy(self) -> bool:
        """Indexing, removing or reloading the list."""
        return self.task is not None or self.refreshing

    def _add_row(self, doc: Any) -> None:
        title = QStandardItem(doc.title or Path(doc.path).stem)
        title.setData(doc, DOC_ROLE)
        title.setToolTip(doc.path)
        image = self.cache.get_cached(doc.path, 0, THUMB_W * 2) if doc.status != "error" else None
        if image is not None:
            title.setIcon(QIcon(QPixmap.fromImage(image)))
        status_text = {"indexed": "Indexed", "error": "Error"}.get(doc.status, doc.status.capitalize())
        if doc.status == "indexed" and not doc.visible:
            status_text = "Indexed (publishing…)"
        status = QStandardItem(status_text)
        if doc.status == "error":
            status.setForeground(QBrush(QColor("#d64541")))
            status.setToolTip(doc.error)
            title.setToolTip(f"{doc.path}\n\nCould not be indexed: {doc.error}")
        elif doc.error:
            status.setToolTip(doc.error)
        when = dt.datetime.fromtimestamp(doc.indexed_at).strftime("%Y-%m-%d %H:%M") if doc.indexed_at else ""
        items = [title, QStandardItem(doc.composer), _num(doc.n_pages), _num(doc.n_systems), status,
                 QStandardItem(when)]
        self.model.appendRow(items)
        self._rows[doc.path] = self.model.rowCount() - 1

    def _thumbnail_ready(self, path: str, page: int, width: int) -> None:
        row = self._rows.get(path)
        if row is None or page != 0:
            return
        image = self.cache.get_cached(path, 0, THUMB_W * 2)
        if image is not None:
            self.model.item(row, 0).setIcon(QIcon(QPixmap.fromImage(image)))

    def visible_titles(self) -> list[str]:
        return [self.proxy.index(r, 0).data() for r in range(self.proxy.rowCount())]

    def document_rows(self) -> list[Any]:
        return [self.model.item(r, 0).data(DOC_ROLE) for r in range(self.model.rowCount())]

    def _activated(self, index) -> None:
        doc = self.proxy.index(index.row(), 0).data(DOC_ROLE)
        if doc is None:
            return
        if doc.status == "error":
            self.error.emit("Cannot open", f"{Path(doc.path).name} could not be indexed:\n{doc.error}")
            return
        self.open_document.emit(doc)

    # -- folders & indexing -----------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of PDF scores")
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            self.error.emit("Add folder", f"{folder} is not a folder")
            return
        self.start_indexing([folder])

    def remove_selected_folder(self) -> None:
        item = self.folders.currentItem() or (self.folders.item(0) if self.folders.count() == 1 else None)
        if item is None:
            self.message.emit("Select a folder to remove first")
            return
        self.remove_folder(item.text())

    def remove_folder(self, folder: str) -> None:
        if self.task is not None:
            return
        self._begin(f"Removing {folder}…")
        self.task = self.runner.start(
            "remove folder", lambda ctx: self.backend.remove(ctx, [folder]),
            on_finished=lambda n: self.message.emit(f"Removed {n} document{'s' if n != 1 else ''} from the library"),
            on_failed=lambda m, user: self.error.emit("Remove folder", m),
            on_done=self._end,
        )

    def start_indexing(self, folders: list[Path], retry_errors: bool = False) -> Task | None:
        if self.task is not None:
            self.message.emit("Indexing is already running")
            return None
        if not self.backend.can_index:
            self.error.emit("Indexing unavailable",
                            f"Scores cannot be indexed on this installation: {self.backend.unavailable_reason}.")
            return None
        self.events = []
        self.activity.clear()
        self._begin("Looking for PDF files…")
        self.task = self.runner.start(
            "index", self.backend.index, folders, retry_errors,
            on_progress=self._progress, on_finished=self._indexed,
            on_failed=lambda m, user: self.error.emit("Indexing failed", m),
            on_cancelled=lambda: self.message.emit("Indexing cancelled; finished files are kept and the next run resumes"),
            on_done=self._end,
        )
        return self.task

    def reindex_with_new_model(self) -> Task | None:
        """The app's model changed: re-embed every document (the indexer sees the new model version).

        A run already going on still uses the model it loaded, so the re-index
        starts after it ends.
        """
        if self.task is not None:
            self._reindex_pending = True
            self.message.emit("The library is re-indexed with the new model when the current run ends")
            return None
        if self.folders.count() == 0:
            self.message.emit("New model active; the library has no folders yet, so there is nothing to re-index")
            return None
        task = self.start_indexing([])
        if task is not None:
            self.progress_label.setText("Re-indexing the library with the new model…")
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.progress_label.setText("Cancelling after the current file…")

    def _begin(self, text: str) -> None:
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.progress_label.setText(text)
        self.cancel_btn.setVisible(True)
        for b in (self.add_btn, self.remove_btn, self.index_btn, self.retry_btn):
            b.setEnabled(False)

    def _progress(self, fraction: float, text: str, ev: Any) -> None:
        self.events.append(ev)
        if fraction >= 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(fraction * 1000))
        self.progress_label.setText(text)
        if ev is not None and ev.kind == "file":
            name = Path(ev.path).name
            if ev.status == "error":
                item = QListWidgetItem(f"✗ {name}: {ev.error}")
                item.setForeground(QBrush(QColor("#d64541")))
                item.setToolTip(ev.error)
            else:
                item = QListWidgetItem(f"✓ {name} ({ev.status})")
            self.activity.addItem(item)
            self.activity.scrollToBottom()
        if ev is not None and ev.kind in ("publish", "file"):
            self.refresh()

    def _indexed(self, report: Any) -> None:
        self.last_report = report
        reembedded = getattr(report, "reembedded", 0)
        summary = (f"Indexed: {report.added} new, {report.changed} changed, {report.removed} removed, "
                   + (f"{reembedded} re-embedded with the new model, " if reembedded else "")
                   + f"{report.errors} with errors ({report.pages} pages in {report.seconds:.1f} s)")
        self.message.emit(summary)
        self.progress_label.setText(summary)

    def _end(self) -> None:
        self.task = None
        self.progress.setVisible(False)
        self.cancel_btn.setVisible(False)
        self.add_btn.setEnabled(True)
        self.refresh()
        if self._reindex_pending:
            self._reindex_pending = False
            QTimer.singleShot(0, self.reindex_with_new_model)


def _list_library(ctx: Any, backend: LibraryBackend) -> tuple[list[Any], list[str], str]:
    try:
        return backend.documents(), backend.roots(), ""
    except Exception as exc:  # LibraryError (damaged or newer catalog) or a disk error
        return [], [], str(exc)


def _num(n: int) -> QStandardItem:
    item = QStandardItem()
    item.setData(int(n), Qt.ItemDataRole.DisplayRole)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item
