"""Repeats in the corpus builder, checked against the engravers' own unfolding.

Why: the builder unfolds repeats itself in two places where no engraver does it
for us, and a wrong unfolding would be a silent, consistent (so check-passing)
but musically wrong performance. Two independent references:

* ``ly FILE...``: LilyPond sources. Our unfolding of the folded score (volta
  events -> :func:`companion.data.engraving.unfold_segments`) against LilyPond's
  own ``\\unfoldRepeats``, inserted after every ``\\score {`` in a copy of the
  source folder.
* ``kern FILE...``: kern files *with* a ``*>[...]`` expansion list. verovio's
  expansion of the file against our bar-line unfolding of the same file with
  the list line removed.

Both compare every sounded note (pitch, onset within 30 ms). Prints one line
per file; ``--json`` prints the records.

Run: ``.venv/bin/python bench/repeats_check.py ly ../shared/data/scores/mutopia-keyboard/BachJS/BWV933/bwv933/bwv933.ly``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from companion.errors import DataError


def _same(a: list, b: list, tolerance_s: float = 0.03) -> bool:
    """Same notes at the same times: pitches equal, onsets within ``tolerance_s``."""
    sa = sorted((e.pitch, e.onset) for e in a)
    sb = sorted((e.pitch, e.onset) for e in b)
    return len(sa) == len(sb) and all(p == q and abs(x - y) < tolerance_s for (p, x), (q, y) in zip(sa, sb))


def check_ly(path: Path) -> dict:
    from companion.data import engrave_lilypond

    ours = engrave_lilypond.engrave(path, {}, 400)
    with tempfile.TemporaryDirectory() as tmp:
        # Keep two folder levels above the piece: Mutopia sources include "../common" files.
        copy = Path(tmp) / "a" / "b" / path.parent.name
        shutil.copytree(path.parent, copy)
        entry = copy / path.name
        text, n = re.subn(r"\\score\s*\{", r"\\score { \\unfoldRepeats ", entry.read_text("utf-8", "replace"))
        entry.write_text(text, "utf-8")
        reference = engrave_lilypond.engrave(entry, {}, 400)
    return {"file": str(path), "ours": ours.repeats, "ours_notes": len(ours.events),
            "reference_notes": len(reference.events), "scores": n, "same": _same(ours.events, reference.events)}


def check_kern(path: Path) -> dict:
    from companion.data import engrave_verovio

    text = path.read_text("utf-8", "replace")
    if not re.search(r"^\*>\[", text, re.MULTILINE):
        raise DataError(f"{path.name} has no *>[...] expansion list to compare with")
    listed = engrave_verovio.engrave(path, {"max_pages": 200}, 200)
    with tempfile.TemporaryDirectory() as tmp:
        stripped = Path(tmp) / path.name
        stripped.write_text("".join(line + "\n" for line in text.splitlines() if not line.startswith("*>[")),
                            "utf-8")
        ours = engrave_verovio.engrave(stripped, {"max_pages": 200}, 200)
    return {"file": str(path), "verovio": listed.repeats, "ours": ours.repeats,
            "ours_source": ours.params.get("repeat_source"), "verovio_notes": len(listed.events),
            "ours_notes": len(ours.events),
            "same": ours.repeats == "expanded" and _same(ours.events, listed.events)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=("ly", "kern"))
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    records = []
    for f in args.files:
        try:
            rec = check_ly(f) if args.kind == "ly" else check_kern(f)
        except DataError as exc:
            rec = {"file": str(f), "error": str(exc)}
        records.append(rec)
        if not args.json:
            print(" ".join(f"{k}={v}" for k, v in rec.items()), flush=True)
    if args.json:
        print(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
