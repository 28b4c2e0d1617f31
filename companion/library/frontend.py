"""The real sheet front end for indexing: :mod:`companion.sheets` behind the indexer's protocol.

Why an adapter: the indexer talks to a small protocol (open, detect, cut) so
that its crash-safety and incremental logic do not depend on the detector's
types; this module maps the protocol onto :mod:`companion.sheets` and turns a
stored :class:`SystemRecord` back into the detector's ``System`` (box, staff
lines, skew angle, tight staff box), so a model change re-embeds the very same
strips without detecting again.

Strips and snippets are the sheets module's (Dorfer et al. 2018): the system
band, deskewed, scaled to 160 px high; snippets 200 px wide every 50 px,
downscaled to 80 x 100; the passage strip is the strip at 80 px high.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from companion.config import SheetConfig
from companion.errors import SheetError
from companion.library.protocols import SystemRecord


class SheetsFrontEnd:
    """``SheetFrontEnd`` over :mod:`companion.sheets` (picklable, for worker processes)."""

    def __init__(self, cfg: SheetConfig | None = None) -> None:
        self.cfg = cfg or SheetConfig()

    def open(self, path: Path):
        from companion.sheets import open_document

        return open_document(Path(path), self.cfg)

    def detect(self, image: np.ndarray, page: int) -> list[SystemRecord]:
        from companion.sheets import detect_page

        try:
            systems = detect_page(image, self.cfg)
        except SheetError as exc:
            raise SheetError(f"system detection gave up ({exc})") from exc
        return [
            SystemRecord(page=page, box=tuple(map(float, s.box)), n_staves=s.n_staves,  # type: ignore[arg-type]
                         staff_lines=tuple(tuple(map(float, lines)) for lines in s.staff_lines),
                         angle=float(s.angle), staff_box=tuple(map(float, s.staff_box)))  # type: ignore[arg-type]
            for s in systems
        ]

    def cut(self, image: np.ndarray, system: SystemRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from companion.sheets import cut_snippets, passage_strip, system_strip

        c = self.cfg
        strip = system_strip(image, to_sheets_system(system), c.strip_height)
        snippets, xs = cut_snippets(strip, c.snippet_width, c.snippet_hop, tuple(c.snippet_size))
        return snippets, xs, passage_strip(strip, c.snippet_size[0])


def to_sheets_system(record: SystemRecord):
    """The detector's ``System`` from a stored record (for re-embedding without detection)."""
    from companion.sheets import System

    if not record.staff_lines:
        raise SheetError("this system was stored without staff lines; index the file again")
    staff_box = record.staff_box if any(record.staff_box) else record.box
    return System(box=tuple(record.box), staff_lines=tuple(tuple(s) for s in record.staff_lines),
                  angle=record.angle, staff_box=tuple(staff_box))
