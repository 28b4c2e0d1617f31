"""Piece identification on real scans (the Chopin works in shared/data/scans).

Library: every system of every Chopin scan as the app indexes a PDF — found by
the sheets module's detector, cut into 160-px strips and 200-px snippets (hop
50) downscaled to 80 x 100 (or, for comparison, the hand-annotated boxes). Queries: 30-s excerpts of the held-out-SoundFont renders
of the same works (``render_pairs --part test`` writes the whole-piece
spectrograms); every 30-s query is cut into 42-frame excerpts (hop 10 frames),
each excerpt's 25 nearest library snippets vote for their work, and the work
with most votes is the answer. Reported beside it: the same excerpts aligned in
order with each work's snippets (:func:`align_ranks`, the engine's "align"
method run over the whole query), which uses the order of the music.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from companion.errors import CompanionError
from companion.evaluation.metrics import retrieval_metrics
from companion.engine.align import AlignParams, SnippetAligner
from companion.evaluation.retrieval import vote_ranks
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE
from companion.training.scans import snippets_from_scan

# Opus -> scan work (file stem in shared/data/scans); op. 72 only for its No. 1 (the nocturne).
_OPUS_TO_SCAN = {
    10: "chopin-frederic-etudes-op-10", 25: "chopin-frederic-etudes-op-25",
    66: "chopin-frederic-fantaisie-impromptu-op-66",
    17: "chopin-frederic-mazurkas-op-17", 24: "chopin-frederic-mazurkas-op-24", 41: "chopin-frederic-mazurkas-op-41",
    50: "chopin-frederic-mazurkas-op-50", 56: "chopin-frederic-mazurkas-op-56", 63: "chopin-frederic-mazurkas-op-63",
    67: "chopin-frederic-mazurkas-op-67", 68: "chopin-frederic-mazurkas-op-68",
    15: "chopin-frederic-nocturnes-op-15", 27: "chopin-frederic-nocturnes-op-27", 48: "chopin-frederic-nocturnes-op-48",
    55: "chopin-frederic-nocturnes-op-55", 62: "chopin-frederic-nocturnes-op-62",
    71: "chopin-frederic-polonaises-op-71", 28: "chopin-frederic-preludes-op-28",
    34: "chopin-frederic-waltzes-op-34", 64: "chopin-frederic-waltzes-op-64", 69: "chopin-frederic-waltzes-op-69",
    70: "chopin-frederic-waltzes-op-70",
}


def scan_work_for(piece_key: str) -> str | None:
    m = re.match(r"op(\d+)(?:-(\d+))?", piece_key)
    if not m:
        return None
    opus = int(m.group(1))
    if opus == 72:
        return "chopin-frederic-nocturne-in-e-minor-op-72-no-1" if m.group(2) in (None, "001") else None
    return _OPUS_TO_SCAN.get(opus)


def detected_snippets(pdf: Path) -> np.ndarray:
    """Snippets of every system the app's sheet front end finds in ``pdf`` (as indexing does)."""
    from companion.errors import SheetError
    from companion.sheets import detect_page, open_document, snippets_for

    out = []
    with open_document(pdf) as doc:
        for page in range(doc.n_pages):
            image = doc.render_analysis(page)
            try:
                systems = detect_page(image)
            except SheetError:
                continue
            for system in systems:
                snips, _ = snippets_for(image, system)
                out.append(snips)
    return np.concatenate(out) if out else np.zeros((0, *SHEET_SHAPE), np.uint8)


def scan_library(scans_dir: Path, works: list[str], systems: str = "detected") -> tuple[np.ndarray, np.ndarray]:
    """(snippets (N, 80, 100) uint8, work index (N,)) for ``works``.

    ``systems="detected"`` runs the app's own system detector and strip cutter
    (:mod:`companion.sheets`); ``"annotated"`` uses the hand-annotated boxes.
    """
    snips, labels = [], []
    for i, work in enumerate(works):
        if systems == "detected":
            s = detected_snippets(Path(scans_dir) / f"{work}.pdf")
            snips.append(s)
            labels.append(np.full(len(s), i, np.int32))
            continue
        js = Path(scans_dir) / f"{work}.systems.json"
        if not js.is_file():
            raise CompanionError(f"scan {work} not found in {scans_dir}")
        data = json.loads(js.read_text(encoding="utf-8"))
        boxes = data.get("systems", []) if isinstance(data, dict) else data
        s = snippets_from_scan(Path(scans_dir) / f"{work}.pdf", boxes, ctx=0, hop=25)
        snips.append(s)
        labels.append(np.full(len(s), i, np.int32))
    return np.concatenate(snips), np.concatenate(labels)


def query_excerpts(spec: np.ndarray, start: int, seconds: float = 30.0, hop: int = 10, fps: float = 20.0) -> np.ndarray:
    """42-frame excerpts (hop ``hop``) of ``seconds`` of a (92, T) spectrogram from frame ``start``."""
    length = int(seconds * fps)
    seg = spec[:, start : start + length]
    w = AUDIO_SHAPE[1]
    if seg.shape[1] < w:
        seg = np.pad(seg, ((0, 0), (0, w - seg.shape[1])))
    starts = range(0, seg.shape[1] - w + 1, hop)
    return np.stack([seg[:, s : s + w] for s in starts]).astype(np.float32)


ALIGN_EVAL = AlignParams(decay=1.0, max_step=3, jump_penalty=1e9)
"""A 30-s query is one stretch of music: its path through the score, from its first excerpt on."""
ALIGN_HUB_WEIGHT = 0.5
"""Hubness taken off with reference audio in the second, measured variant (the engine fits its own weight
per model: models/engine.json)."""


def query_sources(spectrogram_dir: Path) -> dict[str, str]:
    """Query piece (``op010-001``) -> the corpus piece it was rendered from (``queries.json``)."""
    path = Path(spectrogram_dir) / "queries.json"
    try:
        pieces = json.loads(path.read_text(encoding="utf-8")).get("pieces", {})
    except (OSError, ValueError):
        return {}
    return {k: Path(str(v)).name for k, v in pieces.items()} if isinstance(pieces, dict) else {}


def evaluate_scans(
    embed_sheet: Callable[[np.ndarray], np.ndarray],
    embed_audio: Callable[[np.ndarray], np.ndarray],
    scans_dir: Path,
    spectrogram_dir: Path,
    seconds: float = 30.0,
    queries_per_piece: int = 3,
    top: int = 25,
    seed: int = 0,
    systems: str = "detected",
    reference: np.ndarray | None = None,
    hub_weight: float = ALIGN_HUB_WEIGHT,
    heard: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Votes and alignment ranks of 30-s queries against the scans' snippets.

    ``heard``: true for a corpus piece the models were trained on; its queries are left
    out (the others keep the start positions they have without the check).

    ``reference``: audio embeddings of other music (not the queries); when given, the
    alignment is also reported with each snippet's hubness taken off, as the engine does.
    """
    specs = sorted(Path(spectrogram_dir).glob("*.npy"))
    piece_work = {p.stem: scan_work_for(p.stem) for p in specs}
    works = sorted({w for w in piece_work.values() if w})
    if not works:
        raise CompanionError(f"no rendered spectrograms of scan works in {spectrogram_dir}")
    lib, lib_work = scan_library(scans_dir, works, systems)
    z_lib = embed_sheet(lib)
    rng = np.random.default_rng(seed)
    sources = query_sources(spectrogram_dir)
    q_emb, q_true, q_names, skipped = [], [], [], []
    for p in specs:
        work = piece_work[p.stem]
        if work is None:
            continue
        spec = np.load(p).astype(np.float32)
        length = int(seconds * 20)
        n_q = queries_per_piece if spec.shape[1] > length else 1
        leave_out = heard is not None and heard(sources.get(p.stem, p.stem))
        if leave_out:
            skipped.append(p.stem)
        for _ in range(n_q):
            start = int(rng.integers(0, max(1, spec.shape[1] - length)))
            if leave_out:
                continue
            q_emb.append(embed_audio(query_excerpts(spec, start, seconds)))
            q_true.append(works.index(work))
            q_names.append(p.stem)
    ranks = vote_ranks(q_emb, q_true, z_lib, lib_work, len(works), top)
    a_ranks = align_ranks(q_emb, q_true, z_lib, lib_work, len(works))
    hub_ranks = None
    if reference is not None and len(reference):
        hub_ranks = align_ranks(q_emb, q_true, z_lib, lib_work, len(works),
                                replace(ALIGN_EVAL, hub_weight=hub_weight), reference)
    per_work: dict[str, list[int]] = {}
    for name, r in zip(q_names, ranks):
        per_work.setdefault(piece_work[name], []).append(int(r))
    return {
        "works": len(works),
        "systems": systems,
        "library_snippets": int(len(lib)),
        "query_pieces": len(set(q_names)),
        "heard_query_pieces": skipped,
        "queries": len(q_names),
        "query_seconds": seconds,
        "top": top,
        "metrics": retrieval_metrics(ranks),
        "alignment": {"method": "online snippet alignment (companion.engine.align), whole query, no decay",
                      "metrics": retrieval_metrics(a_ranks)},
        **({"alignment_hub": {"method": f"the same alignment with {hub_weight:g} x each snippet's hubness taken "
                                        f"off (mean cosine with its {ALIGN_EVAL.hub_k} nearest of "
                                        f"{len(reference)} reference excerpts), as the engine does",
                              "metrics": retrieval_metrics(hub_ranks)}} if hub_ranks is not None else {}),
        "per_work_R@1": {w: float(np.mean(np.asarray(r) == 1)) for w, r in per_work.items()},
        "ranks": ranks.tolist(),
        "alignment_ranks": a_ranks.tolist(),
        **({"alignment_hub_ranks": hub_ranks.tolist()} if hub_ranks is not None else {}),
    }


def align_ranks(query_emb: list[np.ndarray], query_piece: list[int], library_emb: np.ndarray,
                library_piece: np.ndarray, n_pieces: int, params: AlignParams = ALIGN_EVAL,
                reference: np.ndarray | None = None) -> np.ndarray:
    """Piece rank per query from the best path of its excerpts (in order) through each piece's snippets.

    The library's snippets must be in reading order within each piece (as :func:`scan_library` gives them).
    ``reference`` (audio embeddings) is used when ``params.hub_weight`` > 0.
    """
    n = len(library_emb)
    aligner = SnippetAligner(library_emb, np.arange(n), np.zeros(n), np.asarray(library_piece)[np.arange(n)],
                             n_pieces, params, reference)
    ranks = []
    for z, true in zip(query_emb, query_piece):
        aligner.reset()
        for e in z:
            aligner.update(e[None, :])
        scores = aligner.document_scores()
        ranks.append(int((scores >= scores[true]).sum()))
    return np.asarray(ranks)
