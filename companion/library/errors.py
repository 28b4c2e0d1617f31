"""Library errors: messages a librarian can act on."""

from companion.errors import CompanionError


class LibraryError(CompanionError):
    """The library directory cannot be used (missing, locked, corrupt, wrong version)."""


class LibraryBusy(LibraryError):
    """Another process is writing to the library right now."""


class DocumentError(CompanionError):
    """One PDF could not be indexed; the batch goes on and the reason is recorded."""
