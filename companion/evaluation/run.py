"""One evaluation run: the numbers behind ``companion eval`` and docs/benchmarks.md."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from companion.data.works import HeardMusic, trained_on
from companion.errors import CompanionError
from companion.evaluation.plot import plot_rank_distributions
from companion.evaluation.retrieval import passage_retrieval, piece_identification, snippet_retrieval
from companion.models.cca import apply_cca
from companion.models.checkpoint import load_model, weights_hash
from companion.models.encoders import SHEET_SHAPE, SnippetModel
from companion.models.ensemble import SnippetEnsemble
from companion.models.passage import PassageModel
from companion.training.data import PairSet, PassageSet
from companion.training.trainer import PassageTask
from companion.training.config import TrainConfig


def _embedder(fn, batch: int = 512):
    def run(x: np.ndarray) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch):
                t = torch.from_numpy(np.ascontiguousarray(x[i : i + batch]))
                if t.dtype == torch.float16:
                    t = t.float()
                out.append(fn(t).numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    return run


def _with_cca(fn, mean: torch.Tensor, proj: torch.Tensor):
    def run(x: np.ndarray) -> np.ndarray:
        z = fn(x)
        return apply_cca(z, mean, proj) if len(z) else z

    return run


def unheard(indices: np.ndarray, piece: np.ndarray, names: list[str], heard: HeardMusic | None) -> np.ndarray:
    """``indices`` without the items whose piece is music the models were trained on."""
    if heard is None or len(indices) == 0:
        return indices
    bad = np.array([heard.heard(n) for n in names], bool)
    return indices[~bad[piece[indices]]]


def strip_library(passages: PassageSet, split: str, hop: int = 25,
                  heard: HeardMusic | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Snippets (N, 80, 100) cut along every system strip of ``split``, with piece labels."""
    from companion.training.scans import strip_windows

    snips, labels = [], []
    for i in unheard(passages.indices(split), passages.piece, passages.pieces, heard):
        w = strip_windows(passages.strip(int(i)), SHEET_SHAPE[1], hop)
        snips.append(w)
        labels.append(np.full(len(w), passages.piece[i], np.int32))
    return np.concatenate(snips), np.concatenate(labels)


REFERENCE_EXCERPTS = 1000
"""Reference audio excerpts for hubness (the engine's reference holds ~1,100)."""


def evaluate(
    snippet_model: Path,
    pairs_dir: Path | None,
    passage_model: Path | None = None,
    passages_dir: Path | None = None,
    split: str = "test",
    candidates: int = 2000,
    excerpts: int = 100,
    top: int = 25,
    seed: int = 0,
    out_dir: Path | None = None,
    threads: int = 2,
    scans_dir: Path | None = None,
    scan_queries: Path | None = None,
    query_seconds: float = 30.0,
    scan_systems: str = "detected",
    use_cca: bool = True,
    include_heard: bool = False,
    trained_pairs: Path | None = None,
) -> dict[str, Any]:
    """Retrieval, piece identification and real-scan numbers of the models on ``split``.

    Pieces whose music the models were trained on (the checkpoints' ``trained_on`` lists and
    the pairs folder's training split: another edition or engraving of a training piece counts,
    see companion.data.works) are left out of every task unless ``include_heard``; which ones
    is reported under ``"heard"``. ``trained_pairs``: the pairs folder the models were trained on,
    for checkpoints made before they listed their pieces, evaluated on another folder.
    """
    torch.set_num_threads(max(1, threads))
    t0 = time.perf_counter()
    model, ckpt = load_model(snippet_model)
    if not isinstance(model, (SnippetModel, SnippetEnsemble)):
        raise CompanionError(f"{snippet_model} is not a snippet model")
    result: dict[str, Any] = {
        "split": split,
        "snippet_model": {"path": str(snippet_model), "version": weights_hash(ckpt["state_dict"]),
                          "created": ckpt.get("created")},
    }
    plots: dict[str, list[int]] = {}
    es, ea = _embedder(model.embed_sheet), _embedder(model.embed_audio)
    cca = (ckpt.get("extra") or {}).get("cca") if use_cca else None
    if cca is not None:  # as the app embeds (companion.models.embedder.Embedder)
        es, ea = _with_cca(es, cca["y_mean"], cca["y_proj"]), _with_cca(ea, cca["x_mean"], cca["x_proj"])
    result["snippet_model"]["cca"] = (ckpt.get("extra") or {}).get("cca_fit", True) if cca is not None else None
    reference: np.ndarray | None = None
    pairs = PairSet.load(pairs_dir) if pairs_dir is not None else None
    pmodel = pckpt = None
    if passage_model is not None and passages_dir is not None:
        pmodel, pckpt = load_model(passage_model)
        if not isinstance(pmodel, PassageModel):
            raise CompanionError(f"{passage_model} is not a passage model")
    heard: HeardMusic | None = None
    if not include_heard:
        listed = trained_on(ckpt.get("data")) + trained_on((pckpt or {}).get("data"))
        if pairs is not None:
            listed += list(pairs.splits.get("train", []))
        if trained_pairs is not None:
            listed += list(PairSet.load(trained_pairs, mmap=True).splits.get("train", []))
        heard = HeardMusic(listed)
        result["heard"] = {"training_pieces": len(heard), "left_out": {}}
    if pairs is not None:
        idx = pairs.indices(split)
        if heard is not None:
            names = sorted({pairs.pieces[i] for i in np.unique(pairs.piece[idx])})
            result["heard"]["left_out"]["test_pieces"] = [n for n in names if heard.heard(n)]
            idx = unheard(idx, pairs.piece, pairs.pieces, heard)
        if len(idx) < 2:
            raise CompanionError(f"split {split!r} of {pairs_dir} has no pairs")
        sheet = np.ascontiguousarray(pairs.centre_sheet(idx))
        audio = pairs.centre_audio(idx)
        snip = snippet_retrieval(es, ea, sheet, audio, candidates, seed)
        result["snippet_retrieval"] = {k: v for k, v in snip.items() if k != "ranks"}
        plots["snippet audio→sheet"] = snip["ranks"]["audio_to_sheet"]
        plots["snippet sheet→audio"] = snip["ranks"]["sheet_to_audio"]
        # Piece identification among the split's pieces. Library: snippets cut from the
        # system strips with a 25-px hop, as the app indexes a PDF (when passages are
        # given); else the notehead-centred snippets of the pairs.
        piece = pairs.piece[idx]
        lib_sheet, lib_piece, lib_kind = sheet, piece, "notehead-centred pair snippets"
        if passages_dir is not None:
            lib_sheet, lib_piece = strip_library(PassageSet.load(passages_dir), split, heard=heard)
            lib_kind = "system strips, 100-px windows, 25-px hop"
        pid = piece_identification(es, ea, lib_sheet, lib_piece, audio, piece, excerpts, top, seed, pairs.pieces)
        pid["library"] = lib_kind
        result["piece_identification"] = {k: v for k, v in pid.items() if k != "ranks"}
        plots["piece identification"] = pid["ranks"]
        # audio of music in general for the real-scan alignment's hubness (as the engine's
        # reference): the validation split, never the test split's or the queries' audio
        ref_idx = pairs.indices("valid")
        if len(ref_idx):
            ref_idx = np.sort(np.random.default_rng(seed).permutation(ref_idx)[:REFERENCE_EXCERPTS])
            reference = ea(pairs.centre_audio(ref_idx))
        result["data"] = {"pairs_dir": str(pairs_dir), "pairs": int(len(idx)),
                          "pieces": int(len(np.unique(piece))), "summary": pairs.summary}
    if pmodel is not None and pckpt is not None and passages_dir is not None:
        passages = PassageSet.load(passages_dir)
        pidx = unheard(passages.indices(split), passages.piece, passages.pieces, heard)
        if len(pidx) < 2:
            raise CompanionError(f"split {split!r} of {passages_dir} has no passages")
        cfg = TrainConfig(mode="passage", data=str(passages_dir), batch_size=2)
        task = PassageTask.__new__(PassageTask)
        task.cfg, task.passages, task.model = cfg, passages, pmodel
        zs, za = [], []
        with torch.inference_mode():
            for i in range(0, len(pidx), 32):
                (s, ls), (a, la) = task.sequences(pidx[i : i + 32], None, False)
                zs.append(pmodel.sheet(s, ls).numpy())
                za.append(pmodel.audio(a, la).numpy())
        z_a, z_s = np.concatenate(za), np.concatenate(zs)
        pcca = (pckpt.get("extra") or {}).get("cca") if use_cca else None
        if pcca is not None:  # as the app embeds passages
            z_a, z_s = apply_cca(z_a, pcca["x_mean"], pcca["x_proj"]), apply_cca(z_s, pcca["y_mean"], pcca["y_proj"])
        pr = passage_retrieval(z_a, z_s, candidates, seed)
        result["passage_retrieval"] = {k: v for k, v in pr.items() if k != "ranks"}
        result["passage_model"] = {"path": str(passage_model), "version": weights_hash(pckpt["state_dict"]),
                                   "cca": (pckpt.get("extra") or {}).get("cca_fit", True) if pcca is not None else None}
        plots["passage audio→sheet"] = pr["ranks"]["audio_to_sheet"]
        plots["passage sheet→audio"] = pr["ranks"]["sheet_to_audio"]
    if scans_dir is not None and scan_queries is not None:
        from companion.evaluation.scans import evaluate_scans

        sc = evaluate_scans(es, ea, scans_dir, scan_queries, query_seconds, top=top, seed=seed,
                            systems=scan_systems, reference=reference,
                            heard=heard.heard if heard is not None else None)
        if heard is not None:
            result["heard"]["left_out"]["scan_query_pieces"] = sc.get("heard_query_pieces", [])
        result["real_scans"] = {k: v for k, v in sc.items()
                                if k not in ("ranks", "alignment_ranks", "alignment_hub_ranks")}
        plots["real scans piece id"] = sc["ranks"]
        plots["real scans piece id, aligned"] = sc["alignment_ranks"]
        if "alignment_hub_ranks" in sc:
            plots["real scans piece id, aligned, hubness off"] = sc["alignment_hub_ranks"]
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "eval.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        if plots:
            plot_rank_distributions(plots, out_dir / "ranks.png", f"companion eval ({split} split)")
            result["plot"] = str(out_dir / "ranks.png")
    return result
