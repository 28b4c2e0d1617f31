"""``companion gui``: open the desktop app, optionally following an audio file as the microphone."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from companion.config import Config
from companion.errors import CompanionError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gui",
        help="open the desktop app (the same as running companion with no command)",
        description="Open the desktop app. With --input-file the Listen tab plays that audio file as if it "
        "were the microphone (press Start listening), for demos and for trying the app without a microphone.",
    )
    p.add_argument("--input-file", metavar="FILE", help="audio file the Listen tab plays as the microphone")
    p.add_argument("--library", metavar="DIR", help="library folder to open (default: the configured one)")
    p.add_argument("--listen", action="store_true", help="start listening at once (with --input-file or the microphone)")
    p.add_argument("--quit-when-shown", action="store_true",
                   help="print the start-up time (JSON) once the window is visible, then quit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    input_file = Path(args.input_file).expanduser() if args.input_file else None
    if input_file is not None and not input_file.is_file():
        raise CompanionError(f"the audio file {input_file} does not exist")
    if args.library:
        cfg = dataclasses.replace(cfg, paths=dataclasses.replace(cfg.paths, library_dir=Path(args.library).expanduser()))
    from companion.gui.app import run_app

    return run_app(cfg, input_file=input_file, listen=args.listen, quit_when_shown=args.quit_when_shown)
