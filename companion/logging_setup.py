"""Logging to stderr and to a rotating log file in the platform's log directory."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time.

    A handler that keeps the stream it was created with breaks when that
    stream is later replaced and closed (test runners, embedding hosts).
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbose: bool = False, log_file: Path | None = None) -> Path | None:
    """Configure the root logger; return the log file actually used (or None).

    A log file that cannot be opened (read-only home, full disk) is reported on
    stderr and skipped: logging must never stop the app.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.DEBUG)
    console = _CurrentStderrHandler()
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    used: Path | None = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
            )
            handler.setLevel(logging.DEBUG if verbose else logging.INFO)
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s")
            )
            root.addHandler(handler)
            used = log_file
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot write log file %s: %s", log_file, exc)
    for noisy in ("matplotlib", "PIL", "numba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return used
