"""``companion ensemble``: join snippet models into one model file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from companion.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ensemble",
        help="join two or more trained snippet models into one snippet model file",
        description="Writes one snippet model whose embedding concatenates the members' unit "
                    "embeddings (scaled so a cosine is the mean of the members' cosines). With "
                    "--pairs it measures the result on the validation pairs (stored as the file's "
                    "validation metrics, as training stores them) and fits a CCA over the joint "
                    "embedding like `companion cca`. Install it like any snippet model.",
    )
    p.add_argument("members", nargs="+", metavar="MODEL", help="snippet model files (each with its CCA, if any)")
    p.add_argument("--no-member-cca", action="store_true", help="leave out the CCAs the members carry")
    p.add_argument("--out", required=True, metavar="FILE", help="the ensemble model file to write")
    p.add_argument("--pairs", metavar="DIR", help="prepared pairs folder: measure on its validation pairs")
    p.add_argument("--valid-pairs", type=int, default=2000, help="validation pairs measured (default 2000)")
    p.add_argument("--seed", type=int, default=1234, help="draws the validation pairs (as training does)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print a summary as JSON")
    p.set_defaults(func=run)


def validation_metrics(model_path: Path, pairs_dir: Path, n: int, seed: int) -> dict:
    """Both directions' metrics on ``n`` validation pairs drawn as a training run draws them."""
    import numpy as np
    import torch

    from companion.evaluation.metrics import cross_modal_ranks, retrieval_metrics
    from companion.models.checkpoint import load_model
    from companion.training.data import PairSet

    model, _ = load_model(model_path)
    pairs = PairSet.load(pairs_dir, mmap=True)
    valid = pairs.indices("valid")
    if len(valid) < 2:
        raise ValueError(f"{pairs_dir} has no validation pairs")
    idx = np.sort(np.random.default_rng(seed).choice(valid, size=min(n, len(valid)), replace=False))
    za, zs = [], []
    with torch.inference_mode():
        for i in range(0, len(idx), 256):
            r = idx[i : i + 256]
            za.append(model.embed_audio(torch.from_numpy(np.asarray(pairs.centre_audio(r), np.float32))).numpy())
            zs.append(model.embed_sheet(torch.from_numpy(np.ascontiguousarray(pairs.centre_sheet(r)))).numpy())
    r_as, r_sa = cross_modal_ranks(np.concatenate(za), np.concatenate(zs))
    m_as, m_sa = retrieval_metrics(r_as), retrieval_metrics(r_sa)
    return {"audio_to_sheet": m_as, "sheet_to_audio": m_sa, "score": 0.5 * (m_as["MRR"] + m_sa["MRR"]),
            "pairs_dir": str(pairs_dir)}


def run(args: argparse.Namespace, cfg: Config) -> int:
    import torch

    from companion.models.checkpoint import atomic_torch_save, read_checkpoint
    from companion.models.ensemble import build_ensemble

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out)
    build_ensemble([Path(m) for m in args.members], out, member_cca=not args.no_member_cca)
    summary: dict = {"out": str(out), "members": args.members}
    if args.pairs:
        valid = validation_metrics(out, Path(args.pairs), args.valid_pairs, args.seed)
        ckpt = read_checkpoint(out)
        ckpt["metrics"] = {"valid": valid}
        # where the metrics come from, as a training run records it (the training tab shows it)
        ckpt["recipe"].update(data=str(args.pairs), valid_pairs=args.valid_pairs, seed=args.seed)
        atomic_torch_save(ckpt, out)
        summary["valid"] = {"MRR": [round(valid["audio_to_sheet"]["MRR"], 4), round(valid["sheet_to_audio"]["MRR"], 4)]}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"wrote {out}: {len(args.members)} snippet models as one")
        if "valid" in summary:
            a, s = summary["valid"]["MRR"]
            print(f"validation MRR: audio -> sheet {a:.3f}, sheet -> audio {s:.3f}")
    return 0
