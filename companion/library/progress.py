"""Progress of an indexing run: events for the GUI, a tqdm bar for the terminal."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

from tqdm import tqdm


@dataclass(frozen=True)
class ProgressEvent:
    """One step of an indexing run.

    ``kind``: ``plan`` (files found, totals known), ``file`` (a file finished,
    ``status`` says how), ``page`` (a page of the current file finished; only
    with one worker), ``publish`` (a new generation became searchable),
    ``done`` (the run finished).
    """

    kind: str
    path: str = ""
    status: str = ""
    error: str = ""
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    pages_done: int = 0
    file_pages_done: int = 0
    file_pages_total: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    generation: int = 0

    @property
    def fraction(self) -> float:
        if self.bytes_total <= 0:
            return 1.0 if self.files_total == self.files_done else 0.0
        return min(1.0, self.bytes_done / self.bytes_total)


ProgressCallback = Callable[[ProgressEvent], None]


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class TerminalProgress:
    """A per-file and overall progress bar on stderr (quiet when not a terminal)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar: tqdm | None = None

    def __call__(self, ev: ProgressEvent) -> None:
        if not self.enabled:
            if ev.kind == "file" and ev.status == "error":
                print(f"error: {ev.path}: {ev.error}", file=sys.stderr)
            return
        if ev.kind == "plan":
            self.bar = tqdm(total=ev.files_total, unit="file", dynamic_ncols=True, file=sys.stderr,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} files {postfix}")
        if self.bar is None:
            return
        if ev.kind in ("file", "page"):
            if ev.kind == "file":
                self.bar.update(ev.files_done - self.bar.n)
                if ev.status == "error":
                    self.bar.write(f"error: {ev.path}: {ev.error}")
            name = ev.path.rsplit("/", 1)[-1][:40]
            current = f"{name} p{ev.file_pages_done}/{ev.file_pages_total} " if ev.kind == "page" else ""
            self.bar.set_postfix_str(f"{current}{ev.pages_done} pages, ETA {format_eta(ev.eta_s)}")
        elif ev.kind == "done":
            self.bar.close()
            self.bar = None
