"""Errors that carry a message meant for the user.

Everything the user can cause (a missing file, a corrupt PDF, an odd audio
format) raises a subclass of :class:`CompanionError`; the command line prints
its message without a traceback and the GUI shows it in a dialog.
"""


class CompanionError(Exception):
    """An error with a message a user can act on."""


class AudioError(CompanionError):
    """An audio file or stream could not be used."""


class SheetError(CompanionError):
    """A PDF or page could not be used."""


class DataError(CompanionError):
    """A training-corpus source, option or output folder could not be used."""
