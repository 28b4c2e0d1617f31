"""``companion cca``: fit the CCA projection of a snippet or passage model on prepared data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from companion.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "cca",
        help="fit a CCA projection of a snippet or passage model's embeddings on prepared data",
        description="Embeds the (audio, sheet) items of a split with the model (a snippet model: the "
                    "centred pairs; a passage model: the system passages), fits a CCA (Dorfer et al. "
                    "2018) and writes the model with the projection; the app and `companion eval` "
                    "apply it. A library indexed with the model re-embeds on next use.",
    )
    p.add_argument("model", metavar="MODEL", help="snippet or passage model file (a CCA already in it is replaced)")
    p.add_argument("--pairs", required=True, metavar="DIR",
                   help="prepared pairs folder (PairSet; a passage model uses its passages/ folder)")
    p.add_argument("--out", metavar="FILE", help="write here instead of over MODEL")
    p.add_argument("--split", default="train", help="pairs of this split (default: train)")
    p.add_argument("--max-items", type=int, default=60000, help="at most this many pairs/passages, drawn at random")
    p.add_argument("--reg", type=float, default=None,
                   help="ridge added to each covariance (default: the best of 1e-5..1e-2 on --valid-split)")
    p.add_argument("--valid-split", default="valid", help="pairs that choose the ridge (default: valid)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print the fit summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    import torch

    from companion.models.cca import refit_checkpoint

    torch.set_num_threads(max(1, args.threads))
    out = Path(args.out) if args.out else Path(args.model)
    fit = refit_checkpoint(Path(args.model), Path(args.pairs), out, args.split, args.max_items,
                           args.reg, args.seed, valid_split=args.valid_split)
    if args.json:
        print(json.dumps(fit, indent=1))
    else:
        if "valid" in fit:
            v = fit["valid"]
            print(f"{fit['kind']} MRR on {v['items']} {v['split']} items: " + ", ".join(
                f"{'no CCA' if k == 'none' else 'ridge ' + k} {m:.3f}" for k, m in v["mrr"].items()))
        print(f"CCA (ridge {fit['reg']:g}) fitted on {fit['items']} {fit['kind']} items of {fit['pieces']} "
              f"pieces ({fit['split']} split); "
              f"canonical correlations {', '.join(f'{c:.3f}' for c in fit['corr_top'])}, ... "
              f"(mean {fit['corr_mean']:.3f}); wrote {out}")
    return 0
