"""``companion train --config FILE`` and ``companion bench encoders``."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

from companion.config import Config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the encoders (snippet, passage or SimCLR pre-training)",
        description="Train from a JSON config (see companion/training/configs/); relative paths are "
        "relative to the current folder. Resumes from the run folder's state.pt unless --no-resume.",
    )
    p.add_argument("--config", required=True, metavar="FILE", help="training config JSON")
    p.add_argument("--no-resume", action="store_true", help="start over even if a saved state exists")
    p.add_argument("--max-hours", type=float, default=None, help="pause (resumably) after this many hours")
    p.add_argument("--epochs", type=int, default=None, help="override the config's epoch count")
    p.add_argument("--data", metavar="DIR", help="override the config's data folder")
    p.add_argument("--out-dir", metavar="DIR", help="override the config's run folder")
    p.add_argument("--init-from", metavar="FILES", help="override the config's init_from (comma-separated)")
    p.add_argument("--threads", type=int, default=None, help="override the config's torch thread count")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=run_train)


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser("encoders", help="training pairs/s of encoder widths (2 threads)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--only", metavar="TEXT", help="only variants whose name contains TEXT")
    p.add_argument("--no-channels-last", action="store_true", help="skip the channels_last runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_bench)


def run_train(args: argparse.Namespace, cfg: Config) -> int:
    from tqdm import tqdm

    from companion.training.config import TrainConfig
    from companion.training.trainer import Progress, train

    tcfg = TrainConfig.load(Path(args.config))
    if args.max_hours is not None:
        tcfg.max_hours = args.max_hours
    if args.epochs is not None:
        tcfg.epochs = args.epochs
    for key in ("data", "out_dir", "init_from", "threads"):
        if getattr(args, key) is not None:
            setattr(tcfg, key, getattr(args, key))
    tcfg.validate()
    cancel = threading.Event()
    bar: list[tqdm] = []

    def on_progress(p: Progress) -> None:
        if p.phase == "train" and args.no_progress:
            if p.step % 50 == 0:  # a heartbeat line for logs
                print(f"epoch {p.epoch} step {p.step}/{p.steps}  loss {p.loss:.3f}  {p.pairs_per_s:.0f} pairs/s",
                      flush=True)
        elif p.phase == "train":
            if not bar or bar[0].desc != f"epoch {p.epoch}":
                if bar:
                    bar[0].close()
                    bar.clear()
                bar.append(tqdm(total=p.steps, initial=p.step - 1, desc=f"epoch {p.epoch}", unit="step", leave=False))
            bar[0].update(1)
            bar[0].set_postfix(loss=f"{p.loss:.3f}", pairs_s=f"{p.pairs_per_s:.0f}", lr=f"{p.lr:.1e}")
        elif p.phase == "epoch":
            if bar:
                bar[0].close()
                bar.clear()
            print(f"{p.message}  loss {p.loss:.3f}  lr {p.lr:.1e}  {p.pairs_per_s:.0f} pairs/s", flush=True)
        elif p.phase == "cca":
            print(p.message, flush=True)

    def on_term(signum, frame) -> None:  # SIGTERM: save and stop like a cancel
        cancel.set()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        result = train(tcfg, [on_progress], cancel, resume=not args.no_resume)
    finally:
        signal.signal(signal.SIGTERM, old)
        if bar:
            bar[0].close()
    print(json.dumps({"status": result.status, "epochs_done": result.epochs_done,
                      "best_valid_score": result.best_score, "best": str(result.best_path),
                      "pairs_per_s": round(result.pairs_per_s, 1), "wall_s": round(result.wall_s, 1)}))
    return 0


def run_bench(args: argparse.Namespace, cfg: Config) -> int:
    from companion.training.throughput import DEFAULT_VARIANTS, measure

    rows = []
    for name, arch in DEFAULT_VARIANTS.items():
        if args.only and args.only not in name:
            continue
        for cl in (False,) if args.no_channels_last else (False, True):
            r = measure(name, arch, args.batch_size, args.threads, args.steps, cl)
            rows.append(r.__dict__)
            if not args.json:
                print(f"{name:24s} params {r.params:7d}  channels_last {str(cl):5s}  "
                      f"{r.pairs_per_s:7.1f} pairs/s  audio inference {r.infer_ms_per_snippet:.2f} ms/excerpt", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0
