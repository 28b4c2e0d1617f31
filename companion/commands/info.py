"""``companion info``: where settings, logs, the library and models live."""

from __future__ import annotations

import argparse
import json

from companion import __version__
from companion.config import Config, to_dict


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="show configuration and file locations")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: Config) -> int:
    data = {"version": __version__, "config": to_dict(cfg)}
    data["settings_file"] = str(cfg.paths.settings_file)
    data["log_file"] = str(cfg.paths.log_file)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"companion {__version__}")
        print(f"  settings : {cfg.paths.settings_file}")
        print(f"  log file : {cfg.paths.log_file}")
        print(f"  library  : {cfg.paths.library_dir}")
        print(f"  models   : {cfg.models_dir}")
        print(f"  resources: {cfg.resources_dir}")
    return 0
