"""Training data from the user's own symbolic scores: build a corpus, pack it, cut training pairs.

Why one function: the training tab runs the three steps as one job in a child
process (:mod:`companion.gui.process_job`, cooperative mode) with one progress
bar and one Cancel. Everything is resumable: a cancelled corpus build keeps its
finished pieces (the next run builds only the rest), packing is cheap and
redone.

Layout of ``work_dir``: ``corpus/`` (see docs/corpus-format.md, with
``packed/``) and ``pairs/``, the snippet pairs and ``pairs/passages`` the
encoders train on (:mod:`companion.training.prepare`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from companion.errors import DataError

Progress = Callable[[float | None, str], None]
"""``progress(fraction or None, text)``."""

BUILD_SHARE = 0.8
"""Share of the progress bar for building the corpus."""
PACK_SHARE = 0.85
"""Where packing ends; cutting the training pairs takes the rest."""


def build_training_data(sources: Sequence[Path | str], work_dir: Path | str, *, workers: int = 1, limit: int = 0,
                        seed: int = 0, progress: Progress | None = None, cancel: Any = None) -> dict[str, Any]:
    """Build ``work_dir/corpus`` from score files/folders and pack it.

    Returns a small summary; ``status`` is ``"done"`` or ``"cancelled"``
    (``cancel``: a threading or multiprocessing event). Raises
    :class:`~companion.errors.DataError` when no source is usable.
    """
    from companion.data import store
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources

    report = progress or (lambda fraction, text: None)
    work_dir = Path(work_dir).expanduser()
    paths = [Path(s).expanduser() for s in sources]
    if not paths:
        raise DataError("choose at least one folder of symbolic scores")
    found = find_sources(paths)
    if limit:
        found = found[:limit]
    if not found:
        raise DataError("no score files (kern, MusicXML, MEI, ABC, LilyPond) in " + ", ".join(map(str, paths)))
    corpus = work_dir / "corpus"
    report(0.0, f"{len(found)} score files found; building the corpus…")
    failed: list[str] = []

    def on_piece(done: int, total: int, piece: str, ok: bool) -> None:
        if not ok:
            failed.append(piece)
        bad = f", {len(failed)} failed" if failed else ""
        report(BUILD_SHARE * done / max(1, total), f"Building the corpus: {done} of {total} pieces{bad} ({piece})")

    summary = build(found, BuildOptions(out=corpus, seed=seed), workers=max(1, workers), progress=False,
                    on_piece=on_piece, cancel=cancel)
    result: dict[str, Any] = {
        "status": "cancelled" if summary.cancelled else "done",
        "work_dir": str(work_dir),
        "corpus": str(corpus),
        "sources": len(found),
        "built": summary.built,
        "unchanged": summary.skipped_unchanged,
        "failed": [{"piece": f["piece"], "reason": f["reason"]} for f in summary.failed],
        "excluded": [{"piece": e["piece"], "reason": e["reason"]} for e in summary.excluded],
    }
    if summary.cancelled:
        return result
    totals = store.write_index(corpus, evaluation=False)["totals"]
    result["pieces"] = totals["pieces"]
    if not totals["pieces"]:
        reasons = "; ".join(f"{f['piece']}: {f['reason']}" for f in summary.failed[:3])
        raise DataError(f"none of the {len(found)} score files could be built"
                        + (f" ({reasons})" if reasons else " (all were excluded)"))
    report(BUILD_SHARE, f"Packing {totals['pieces']} pieces…")
    packed = store.pack(corpus)
    result["packed"] = {split: info["pieces"] for split, info in packed.items()}

    from companion.training.prepare import PrepareCancelled, prepare_pairs

    def on_pair(done: int, total: int, piece: str) -> None:
        report(PACK_SHARE + (1 - PACK_SHARE) * done / max(1, total),
               f"Cutting training pairs: {done} of {total} pieces ({piece})")

    try:
        pairs = prepare_pairs(corpus, work_dir / "pairs", workers=max(1, workers), progress=on_pair, cancel=cancel)
    except PrepareCancelled:
        result["status"] = "cancelled"
        return result
    result["pairs_dir"] = str(work_dir / "pairs")
    result["pairs"] = pairs["pairs"]
    result["pairs_per_split"] = {k: v["pairs"] for k, v in pairs["per_split"].items()}
    report(1.0, f"Training data ready: {totals['pieces']} pieces, {pairs['pairs']} pairs")
    return result


def build_job(sources: Sequence[str], work_dir: str, workers: int, progress: Progress | None = None,
              cancel: Any = None) -> dict[str, Any]:
    """:func:`build_training_data` with positional arguments, for a child process (picklable, Qt-free)."""
    return build_training_data(sources, work_dir, workers=workers, progress=progress, cancel=cancel)
