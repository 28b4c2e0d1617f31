"""The library: a persistent, incremental, crash-safe index of folders of scanned PDFs.

Writing: :class:`~companion.library.indexer.Indexer` (``companion index``).
Reading and search: :class:`~companion.library.library.Library`
(``Library.open(dir, readonly=True)``), which always sees a consistent,
published generation even while an indexer runs.
"""

from companion.library.errors import DocumentError, LibraryBusy, LibraryError
from companion.library.indexer import IndexOptions, IndexReport, Indexer
from companion.library.library import HIT_COLUMNS, Library, Snapshot
from companion.library.progress import ProgressEvent, TerminalProgress
from companion.library.protocols import SheetEmbedder, SystemRecord

__all__ = [
    "DocumentError",
    "HIT_COLUMNS",
    "IndexOptions",
    "IndexReport",
    "Indexer",
    "Library",
    "LibraryBusy",
    "LibraryError",
    "ProgressEvent",
    "SheetEmbedder",
    "Snapshot",
    "SystemRecord",
    "TerminalProgress",
]
