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


def run_headless(cfg: Config) -> int:
    """The window smoke test, then the main job: index the demo library and identify the recording.

    Prints one JSON object: the window report (from the GUI) plus ``demo_job``
    (the index report and the identification, or the reason it could not run).
    """
    import contextlib
    import io
    import json

    from companion.engine.demo import run_demo_job
    from companion.gui.app import run_headless_smoke

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = run_headless_smoke(cfg)
    text = buf.getvalue()
    try:
        report = json.loads(text[text.index("{"):])
    except ValueError:
        sys.stdout.write(text)
        report = {}
    job = run_demo_job(cfg)
    report["demo_job"] = job
    print(json.dumps(report, indent=2))
    if "error" in job:
        print(f"companion: the demo could not identify the recording: {job['error']}", file=sys.stderr)
    return rc


def run(args: argparse.Namespace, cfg: Config) -> int:
    if args.headless or not has_display():
        return run_headless(cfg)
    from companion.gui.app import run_app

    return run_app(cfg)
