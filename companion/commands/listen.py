"""``companion listen``: follow the microphone (or a file played as one) in the terminal.

Prints the capture state as it changes (with what to do about failures),
a level line every second (level, silence gate, clipping, dropped buffers),
and -- once the identification engine provides a live consumer -- the
identified piece and the current system as they change.

The engine plugs in through ``companion.engine.create_live_consumer(cfg,
library_dir) -> FrameConsumer`` (see :class:`companion.live.FrameConsumer`).
Until that exists, the command says so and shows level, silence and state only:
it never prints an identification it did not make.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from companion.config import Config
from companion.errors import AudioError, CompanionError
from companion.live import (
    CaptureSession,
    CaptureState,
    LevelEvent,
    ResultEvent,
    SessionParams,
    StatusEvent,
    list_input_devices,
)
from companion.live.devices import NoAudioSystem, get_backend, probe_sample_rates, remember_device
from companion.live.file_source import FileBackend

ENGINE_HOOK = "create_live_consumer"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "listen",
        help="listen to the microphone and print the piece and system as they change",
        description=(
            "Listen to an input device (or an audio file played in real time as if it "
            "were the microphone) and print the capture state, the input level and, "
            "when the identification engine is available, the piece and system."
        ),
    )
    p.add_argument("--device", metavar="NAME", help="input device: name, part of it, or number "
                   "(default: the remembered one, else the system default); remembered once it works")
    p.add_argument("--input-file", metavar="FILE", help="play this audio file as if it were the microphone")
    p.add_argument("--library", metavar="DIR", help="library to identify against (default: the configured one)")
    p.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    p.add_argument("--speed", type=float, default=1.0,
                   help="with --input-file: playback speed (1 = real time, 0 = as fast as possible)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--level-interval", type=float, default=1.0, metavar="SECONDS",
                   help="print the input level this often (0: never)")
    p.set_defaults(func=run)


def load_engine_consumer(cfg: Config, library_dir: Path) -> tuple[Any | None, str]:
    """The engine's live consumer, or (None, why identification is unavailable)."""
    try:
        engine = importlib.import_module("companion.engine")
    except ImportError as exc:
        return None, f"the identification engine is not installed ({exc})"
    factory = getattr(engine, ENGINE_HOOK, None)
    if factory is None:
        return None, (
            "the identification engine does not offer live listening yet "
            f"(companion.engine.{ENGINE_HOOK} is missing)"
        )
    try:
        return factory(cfg, library_dir), ""
    except CompanionError as exc:  # e.g. no library yet: listening still works, without identification
        return None, str(exc)


def _describe_result(result: Any) -> str:
    """One line for a result: ``piece: TITLE | page 2, system 3`` or why there is none."""
    if not (hasattr(result, "piece") or hasattr(result, "system")):
        return str(result)
    piece = getattr(result, "piece", None)
    system = getattr(result, "system", None)
    if piece is None:
        status = getattr(result, "status", None)
        why = getattr(status, "value", status)
        return f"no piece identified ({why})" if why is not None else "no piece identified"
    line = f"piece: {piece}"
    if system is not None:
        line += f" | system {system}" if isinstance(system, int) else f" | {system}"
    return line


def run(args: argparse.Namespace, cfg: Config, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    settings_file = Path(args.settings) if getattr(args, "settings", None) else cfg.paths.settings_file
    if args.input_file:
        if args.speed < 0:
            raise CompanionError(f"--speed must be >= 0, got {args.speed}")
        backend: Any = FileBackend(args.input_file, speed=args.speed)
    else:
        try:
            backend = get_backend()
        except NoAudioSystem as exc:
            if args.list_devices:
                raise
            backend = None  # the session reports "no device" and keeps retrying
            print(f"companion: {exc}", file=sys.stderr)
    if args.list_devices:
        devices = list_input_devices(backend)
        if not devices:
            print("no input devices found (is a microphone connected and enabled?)", file=out)
        for d in devices:
            rates = probe_sample_rates(d, backend)
            usable = ", ".join(f"{r / 1000:g}k" for r in rates) if rates else "none right now (in use?)"
            print(f"{d.describe()}  rates: {usable}", file=out)
        return 0
    if args.duration is not None and args.duration <= 0:
        raise CompanionError(f"--duration must be > 0, got {args.duration}")

    library_dir = Path(args.library).expanduser() if args.library else cfg.paths.library_dir
    if args.library and not library_dir.is_dir():
        raise CompanionError(f"library folder {library_dir} does not exist")
    consumer, why = load_engine_consumer(cfg, library_dir)
    if consumer is None:
        print(f"identification is not available: {why}. Showing level, silence and state only.", file=out)

    session = CaptureSession(
        cfg.audio,
        backend=backend,
        device=args.device,
        consumer=consumer,
        params=SessionParams(),
        settings_file=settings_file,
    )
    remember = bool(args.device) and not args.input_file
    session.start()
    started = time.monotonic()
    next_level = 0.0
    last_result = ""
    last_state: CaptureState | None = None
    try:
        while True:
            for event in session.channel.poll():
                if isinstance(event, StatusEvent):
                    if event.state != last_state or event.detail:
                        line = f"[{event.state.value}] {event.message}"
                        if event.detail and event.state != CaptureState.STARTING:
                            line += f" ({event.detail})"
                        if event.retry_in:
                            line += f" Retrying in {event.retry_in:.0f} s."
                        print(line, file=out, flush=True)
                    last_state = event.state
                    if event.state == CaptureState.RUNNING and remember and session.device:
                        remember_device(session.device.name, settings_file)
                        print(f"input device {session.device.name!r} remembered", file=out)
                        remember = False
                elif isinstance(event, LevelEvent):
                    lv = event.level
                    if args.level_interval > 0 and lv.t >= next_level:
                        next_level = lv.t + args.level_interval
                        flags = ["sound" if lv.sound else "silence"]
                        if lv.clipping:
                            flags.append("CLIPPING: lower the input gain")
                        if lv.dead_input:
                            flags.append("input is all zeros: muted or no permission?")
                        print(
                            f"{lv.t:7.1f} s  level {lv.rms_dbfs:6.1f} dBFS  peak {lv.peak_dbfs:6.1f} dBFS  "
                            f"{', '.join(flags)}  dropped {event.dropped_blocks}",
                            file=out,
                            flush=True,
                        )
                elif isinstance(event, ResultEvent):
                    text = _describe_result(event.result)
                    if text != last_result:
                        print(f"{event.t:7.1f} s  {text}", file=out, flush=True)
                        last_result = text
            if not session.running:
                break
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
            time.sleep(0.05)
    finally:
        session.stop()
    for event in session.channel.poll():  # the final state
        if isinstance(event, StatusEvent) and event.state != last_state:
            print(f"[{event.state.value}] {event.message}", file=out)
    stats = session.stats
    print(
        f"processed {stats.samples / session.sample_rate if session.sample_rate else 0:.1f} s of audio, "
        f"{stats.frames} frames, dropped buffers: {stats.dropped_blocks}",
        file=out,
    )
    if session.state == CaptureState.ERROR:
        raise AudioError(session.channel.status.detail or "listening failed")
    return 0
