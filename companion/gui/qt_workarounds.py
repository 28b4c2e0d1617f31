"""Work-arounds for bugs of the Qt bindings, applied once per process when the GUI loads.

**Signals steal a reference to ``True``** (PySide6 6.12.0 with Python 3.11,
found for issue #9): ``SignalInstance.emit()`` and ``.disconnect()`` return
``True`` without taking a reference to it, so every call made from Python
takes one reference away from the ``True`` singleton. pyqtgraph emits several
signals per curve update (about 9 per ``PlotDataItem.setData``), the workers
one per progress report. ``True`` starts with some 10,000-20,000 references,
so after that many emits its count reaches zero and CPython aborts with
"Fatal Python error: bool_dealloc: deallocating True or False": mid-session
in a long training or listening session, or at interpreter exit (how it showed
in the GUI test suite once training ran in a child process and reported
progress faster).

The fix does what Python 3.12 does for every such singleton (PEP 683,
immortal objects): when the bug is detected, ``True`` and ``False`` get a
reserve of references large enough never to be used up. They are static
objects that are never freed, so an extra count changes nothing else. Python
3.12+ (immortal bools) and fixed bindings are detected and left alone.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

RESERVE = 1 << 40
"""References added to ``True`` and ``False``: ~10^12 emits, centuries of signals."""

PROBE_EMITS = 64
"""Signals emitted to detect the bug (each takes one reference away when it is present)."""

_checked: bool | None = None


def emit_steals_true() -> bool:
    """Whether ``Signal.emit()`` of the loaded bindings takes a reference away from ``True``."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal()

    probe = _Probe()
    probe.ping.emit()  # first call: lazily created signal data must not count
    before = sys.getrefcount(True)
    for _ in range(PROBE_EMITS):
        probe.ping.emit()
    lost = before - sys.getrefcount(True)
    # other threads may take or give back a few references meanwhile; the bug takes all PROBE_EMITS
    return lost >= PROBE_EMITS // 2


def _refcount_cell(obj: object) -> ctypes.c_ssize_t | None:
    """The object's reference count field, when this interpreter's layout is the expected one."""
    if sys.implementation.name != "cpython" or hasattr(sys, "gettotalrefcount"):
        return None  # another interpreter, or a debug build (other object header)
    cell = ctypes.c_ssize_t.from_address(id(obj))
    if abs(cell.value - (sys.getrefcount(obj) - 1)) > 2:  # getrefcount counts its own argument
        return None
    return cell


def protect_bools() -> bool:
    """Apply the ``True``/``False`` work-around if needed; True when it was applied (idempotent)."""
    global _checked
    if _checked is not None:
        return _checked
    _checked = False
    if sys.version_info >= (3, 12) or not emit_steals_true():
        return False
    cells = [_refcount_cell(True), _refcount_cell(False)]
    if any(c is None for c in cells):
        log.warning("PySide6 signals leak references to True and this interpreter's object layout is unknown: "
                    "a long session may end with 'bool_dealloc'")
        return False
    for cell in cells:
        cell.value += RESERVE
    log.info("PySide6 signals leak references to True: True and False made effectively immortal")
    _checked = True
    return True
