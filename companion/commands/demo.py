"""``companion demo``: the app's main job on the bundled demo, with or without a screen."""

from __future__ import annotations

import argparse
import os
import sys

from companion.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the app on the bundled demo (headless when there is no display)",
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="no window: run the main job offscreen and print the result",
    )
    p.set_defaults(func=run)


def has_display() -> bool:
    """True when a window can be shown (X11/Wayland on Linux; always elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def run(args: argparse.Namespace, cfg: Config) -> int:
    if args.headless or not has_display():
        from companion.gui.app import run_headless_smoke

        return run_headless_smoke(cfg)
    from companion.gui.app import run_app

    return run_app(cfg)
