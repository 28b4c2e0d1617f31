"""The ``companion`` command line.

With no subcommand it opens the desktop app. Subcommands are contributed by the
modules in :mod:`companion.commands`, so each feature owns its own command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Sequence

from companion import __version__
from companion.commands import COMMAND_MODULES
from companion.config import Config, load_config
from companion.errors import CompanionError
from companion.logging_setup import setup_logging

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="companion",
        description=(
            "Score-following companion: index folders of scanned sheet music, "
            "identify the piece being played and follow it line by line. "
            "Run without a command to open the desktop app."
        ),
    )
    parser.add_argument("--version", action="version", version=f"companion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="print debug messages")
    parser.add_argument(
        "--settings", metavar="FILE", help="settings JSON to use instead of the user's settings"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = subparsers.add_parser(
        "bench", help="measure speed and accuracy", description="Benchmarks; see docs/benchmarks.md."
    )
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="TARGET")
    bench.set_defaults(func=lambda args, cfg: _missing_target(bench))
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "register"):
            module.register(subparsers)
        if hasattr(module, "register_bench"):
            module.register_bench(bench_sub)
    return parser


def _missing_target(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _open_gui(args: argparse.Namespace, cfg: Config) -> int:
    from companion.gui.app import run_app  # imported late: the core never needs Qt

    return run_app(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from pathlib import Path

    cfg = load_config(Path(args.settings) if args.settings else None)
    setup_logging(args.verbose, cfg.paths.log_file)
    func: Callable[[argparse.Namespace, Config], int] = getattr(args, "func", _open_gui)
    try:
        return int(func(args, cfg) or 0)
    except CompanionError as exc:
        print(f"companion: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("companion: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
