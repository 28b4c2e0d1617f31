"""``companion eval``: retrieval and piece-identification metrics of the encoders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from companion.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate the encoders (snippet / passage retrieval, piece identification)",
        description="Recall@1/5/10/25, MRR and median rank in both directions; writes eval.json and ranks.png.",
    )
    p.add_argument("--model", metavar="FILE", help="snippet model (default: models/snippet.pt)")
    p.add_argument("--pairs", metavar="DIR", help="prepared pairs folder (PairSet) with the split")
    p.add_argument("--passage-model", metavar="FILE", help="passage model (default: models/passage.pt if present)")
    p.add_argument("--passages", metavar="DIR", help="prepared passages folder")
    p.add_argument("--scans", metavar="DIR", help="real-scan library folder (PDF + .systems.json)")
    p.add_argument("--scan-queries", metavar="DIR", help="whole-piece spectrograms (.npy) of the scanned works")
    p.add_argument("--query-seconds", type=float, default=30.0)
    p.add_argument("--scan-systems", choices=("detected", "annotated"), default="detected",
                   help="systems of the scan library: the app's detector (default) or the annotated boxes")
    p.add_argument("--split", default="test")
    p.add_argument("--candidates", type=int, default=2000)
    p.add_argument("--excerpts", type=int, default=100, help="audio excerpts per query piece")
    p.add_argument("--top", type=int, default=25, help="nearest neighbours voting per excerpt")
    p.add_argument("--out", metavar="DIR", default="out/eval", help="where eval.json and ranks.png go")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-cca", action="store_true",
                   help="embed without the model's CCA projection (when it has one; see `companion cca`)")
    p.add_argument("--include-heard", action="store_true",
                   help="keep test pieces whose music the models were trained on (another edition or "
                        "engraving of a training piece); by default they are left out and listed")
    p.add_argument("--trained-on", metavar="DIR",
                   help="the pairs folder the models were trained on (for checkpoints that do not list "
                        "their training pieces, evaluated on another folder): its training music is left out too")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    from companion.errors import CompanionError
    from companion.evaluation.run import evaluate

    model = Path(args.model) if args.model else cfg.models_dir / "snippet.pt"
    passage_model = Path(args.passage_model) if args.passage_model else cfg.models_dir / "passage.pt"
    if not args.pairs and not args.passages and not args.scans:
        raise CompanionError("give --pairs DIR (prepared pairs with a test split), --passages DIR and/or --scans DIR")
    if bool(args.scans) != bool(args.scan_queries):
        raise CompanionError("--scans and --scan-queries go together")
    result = evaluate(
        model,
        Path(args.pairs) if args.pairs else None,
        passage_model if (args.passages and passage_model.is_file()) else None,
        Path(args.passages) if args.passages else None,
        args.split, args.candidates, args.excerpts, args.top, 0, Path(args.out), args.threads,
        Path(args.scans) if args.scans else None, Path(args.scan_queries) if args.scan_queries else None,
        args.query_seconds, args.scan_systems, not args.no_cca, args.include_heard,
        Path(args.trained_on) if args.trained_on else None,
    )
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key in ("snippet_retrieval", "passage_retrieval"):
            if key in result:
                r = result[key]
                for d in ("audio_to_sheet", "sheet_to_audio"):
                    m = r[d]
                    print(f"{key:18s} {d:15s} R@1 {m['R@1']:.3f} R@10 {m['R@10']:.3f} MRR {m['MRR']:.3f} "
                          f"median {m['median_rank']:.0f} (n={m['n']})")
        if "piece_identification" in result:
            m = result["piece_identification"]["metrics"]
            print(f"piece identification R@1 {m['R@1']:.3f} R@5 {m['R@5']:.3f} MRR {m['MRR']:.3f} (pieces={m['n']})")
        if "real_scans" in result:
            m = result["real_scans"]["metrics"]
            print(f"real scans piece id R@1 {m['R@1']:.3f} R@5 {m['R@5']:.3f} MRR {m['MRR']:.3f} "
                  f"(queries={m['n']}, works={result['real_scans']['works']})")
            if "alignment" in result["real_scans"]:
                m = result["real_scans"]["alignment"]["metrics"]
                print(f"real scans piece id, aligned R@1 {m['R@1']:.3f} R@5 {m['R@5']:.3f} MRR {m['MRR']:.3f}")
            if "alignment_hub" in result["real_scans"]:
                m = result["real_scans"]["alignment_hub"]["metrics"]
                print(f"real scans piece id, aligned, hubness off R@1 {m['R@1']:.3f} R@5 {m['R@5']:.3f} "
                      f"MRR {m['MRR']:.3f}")
        left = (result.get("heard") or {}).get("left_out") or {}
        for what, names in left.items():
            if names:
                print(f"left out, heard in training ({what.replace('_', ' ')}): {', '.join(names)}")
        print(f"wrote {Path(args.out) / 'eval.json'}")
    return 0
