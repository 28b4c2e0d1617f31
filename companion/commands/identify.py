"""``companion identify``: which piece of the library is this recording, and where?

Also ``companion bench identify`` (see :mod:`companion.engine.bench`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from companion.config import Config
from companion.errors import CompanionError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "identify",
        help="identify the piece played in a recording and where it is in the score",
        description=(
            "Stream a recording through the identification engine and print the ranked "
            "pieces of the library and a timeline of (time, document, page, system). "
            "Pages and systems are 0-based in --json output and 1-based in the text output."
        ),
    )
    p.add_argument("recording", metavar="RECORDING", help="audio file (wav, flac, ogg, mp3, ...)")
    p.add_argument("--library", metavar="DIR", help="library folder (default: the configured library)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start this many seconds into the recording")
    p.add_argument("--duration", type=float, metavar="D", help="use only this many seconds")
    p.add_argument("--method", choices=("full", "align", "votes", "passages"), default=None,
                   help="default: the method fitted for the installed model (models/engine.json); "
                        "full = HMM over systems, align = online alignment over snippets, "
                        "votes = (a) snippet votes only, passages = (b) passage matching only")
    p.set_defaults(func=run)


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser(
        "identify",
        help="identification and following: R@1/MRR vs query length, time to identify, "
             "system accuracy, false identifications; baseline (a) vs full engine",
    )
    from companion.engine.bench import add_arguments

    add_arguments(p)
    p.set_defaults(func=run_bench)


def run(args: argparse.Namespace, cfg: Config) -> int:
    recording = Path(args.recording).expanduser()
    if not recording.is_file():
        raise CompanionError(f"recording {recording} not found")
    from companion.engine.identify import format_text, identify_file
    from companion.engine.session import open_engine

    library_dir = Path(args.library).expanduser() if args.library else cfg.paths.library_dir
    engine = open_engine(cfg, library_dir, method=args.method, threads=1)
    result = identify_file(engine, recording, args.start, args.duration, cfg.audio)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_text(result))
    sys.stdout.flush()
    return 0


def run_bench(args: argparse.Namespace, cfg: Config) -> int:
    from companion.engine.bench import run_bench as _run

    return _run(args, cfg)
