"""``companion bench audio``: what the audio front end costs per second of audio.

Measures, on synthetic audio (content does not change the cost):

* offline spectrogram of an in-memory 22,050 Hz signal;
* offline spectrogram of a file (44.1 kHz stereo FLAC: decode, downmix,
  resample, spectrogram) - the library-indexing path;
* streaming at 22,050 Hz and from a 48 kHz device (resampling on the way)
  in chunks of ``--chunk`` samples - the live path, with the time per chunk.

Each figure is the best of ``--repeat`` runs (least disturbed by other jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from companion.config import Config


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser(
        "audio",
        help="cost of the audio front end (offline and streaming spectrogram)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=60.0, help="audio length (default 60)")
    p.add_argument("--chunk", type=int, default=1024, help="streaming chunk size (default 1024)")
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _synthetic(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    x = 0.05 * rng.standard_normal(n)
    for f in (110.0, 262.0, 440.0, 1320.0):
        x += 0.1 * np.sin(2 * np.pi * f * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
    x = x.astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _stream(x: np.ndarray, rate: int, chunk: int, cfg: Config) -> tuple[float, float, int]:
    """Total seconds, worst seconds per chunk, frames produced."""
    from companion.audio import StreamingSpectrogram

    proc = StreamingSpectrogram(cfg.audio, input_rate=rate)
    worst, frames = 0.0, 0
    t_start = time.perf_counter()
    for i in range(0, len(x), chunk):
        t0 = time.perf_counter()
        frames += len(proc.process(x[i : i + chunk]))
        worst = max(worst, time.perf_counter() - t0)
    frames += len(proc.flush())
    return time.perf_counter() - t_start, worst, frames


def measure(cfg: Config, seconds: float, chunk: int, repeat: int) -> dict[str, object]:
    """Run the measurements; every cost is in milliseconds per second of audio."""
    import soundfile as sf

    from companion.audio import log_spectrogram

    sr = cfg.audio.sample_rate
    x = _synthetic(seconds, sr)
    log_spectrogram(x[: sr])  # warm-up: filterbank, FFT plans
    results: dict[str, object] = {"audio_seconds": seconds, "chunk": chunk, "repeat": repeat}

    t = _best(lambda: log_spectrogram(x, cfg.audio), repeat)
    results["offline_signal_ms_per_s"] = 1000 * t / seconds

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.flac"
        sf.write(str(path), _synthetic(seconds, 44100, channels=2, seed=1), 44100)
        t = _best(lambda: log_spectrogram(path, cfg.audio), repeat)
    results["offline_file_flac_44k_stereo_ms_per_s"] = 1000 * t / seconds

    for label, rate in (("stream_22k", sr), ("stream_48k", 48000)):
        sig = x if rate == sr else _synthetic(seconds, rate, seed=2)
        runs = [_stream(sig, rate, chunk, cfg) for _ in range(max(1, repeat))]
        total, worst, frames = min(runs)
        results[f"{label}_ms_per_s"] = 1000 * total / seconds
        results[f"{label}_mean_ms_per_chunk"] = 1000 * total / max(1, -(-len(sig) // chunk))
        results[f"{label}_worst_ms_per_chunk"] = 1000 * worst
        results[f"{label}_chunk_ms_of_audio"] = 1000 * chunk / rate
        results[f"{label}_frames"] = frames

    results["machine"] = {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    return results


def run(args: argparse.Namespace, cfg: Config) -> int:
    if args.seconds <= 0 or args.chunk <= 0:
        from companion.errors import CompanionError

        raise CompanionError("--seconds and --chunk must be positive")
    res = measure(cfg, args.seconds, args.chunk, args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    s = res
    print(f"audio front end, {s['audio_seconds']:.0f} s of audio, best of {s['repeat']}")
    print(f"  offline, 22,050 Hz signal      : {s['offline_signal_ms_per_s']:7.2f} ms per s of audio")
    print(f"  offline, 44.1 kHz stereo FLAC  : {s['offline_file_flac_44k_stereo_ms_per_s']:7.2f} ms per s of audio")
    for label, name in (("stream_22k", "22,050 Hz"), ("stream_48k", "48 kHz -> 22,050 Hz")):
        print(
            f"  streaming {name:<20} : {s[f'{label}_ms_per_s']:7.2f} ms per s of audio; "
            f"chunk of {args.chunk} ({s[f'{label}_chunk_ms_of_audio']:.1f} ms of audio): "
            f"mean {s[f'{label}_mean_ms_per_chunk']:.3f} ms, worst {s[f'{label}_worst_ms_per_chunk']:.3f} ms"
        )
    return 0
