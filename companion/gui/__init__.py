"""The desktop app: a thin PySide6 layer over the Qt-free core.

Only modules in this package may import PySide6 or pyqtgraph.

Modules: :mod:`~companion.gui.app` (start-up, headless run),
:mod:`~companion.gui.main_window` (sidebar of views, menus, drag and drop,
settings, layout memory), :mod:`~companion.gui.workers` (tasks with progress,
cancel and errors), :mod:`~companion.gui.watchdog` (GUI-thread stall
detector), :mod:`~companion.gui.render_service` and
:mod:`~companion.gui.page_cache` (pages drawn in a helper process, cached),
:mod:`~companion.gui.process_job` (core jobs in a child process),
:mod:`~companion.gui.library_service` / :mod:`~companion.gui.library_view`
(the library; indexing in the indexing process),
:mod:`~companion.gui.score_view` (pages, systems, highlight, page turns via
:mod:`companion.engine.page_turn`), :mod:`~companion.gui.listen_panel`,
:mod:`~companion.gui.lookup_view`, :mod:`~companion.gui.training_view`,
:mod:`~companion.gui.identification` (what the views show of the engine's
results), :mod:`~companion.gui.settings_dialog`, :mod:`~companion.gui.theme`,
:mod:`~companion.gui.widgets`, :mod:`~companion.gui.qt_workarounds` (bugs of the
Qt bindings worked around: PySide6 6.12's signals leak references to True).

Modules the helper processes import (render_service, process_job,
library_service) must stay free of Qt at import time.
"""
