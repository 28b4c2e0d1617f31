"""``companion bench listen``: what live listening costs, and whether it keeps up.

Two runs of the whole live path -- callback -> ring buffer -> worker
(level meter, silence gate, resampling 44.1 kHz -> 22,050 Hz, streaming
spectrogram) -> channel -- fed by a :class:`~companion.live.FileBackend`
(a file played as if it were the microphone), while the main thread polls
the channel every 50 ms as the GUI does:

1. **real time** (``--seconds``, default 60): CPU share of one core (worker
   thread alone, and the whole process including the file "sound card"
   thread), latency from the capture of each frame's last sample to its
   publication (p50/p95/max), dropped buffers; ``--device NAME`` takes the
   audio from a real input instead (PortAudio's callbacks then count too);
2. **long** (``--long-seconds`` of audio, default 3600, at ``--long-speed``,
   default 0 = as fast as possible): memory (RSS) growth from the warmed-up
   state to the end, dropped buffers. ``--long-speed 1`` makes it a true
   real-time hour.

Without ``--input-file`` the input is a synthetic piano-like piece (decaying
harmonic chords with pauses, 44.1 kHz). The identification engine is not part
of the path unless ``--library DIR`` attaches it (it needs a trained model and
an indexed library) or ``--synthetic-pages N`` attaches it on a library of N
synthetic pages (random unit embeddings in the installed model's dimensions,
stamped with its version: the engine's cost does not depend on the values, so
this measures what listening costs with a library of that size); frames are
published either way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from companion.config import Config
from companion.errors import CompanionError


def register_bench(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser(
        "listen",
        help="live listening: CPU share, hop latency, dropped buffers, memory over a long run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=60.0, help="real-time run length (default 60; 0 skips)")
    p.add_argument("--long-seconds", type=float, default=3600.0,
                   help="audio streamed in the long run (default 3600; 0 skips)")
    p.add_argument("--long-speed", type=float, default=0.0,
                   help="speed of the long run: 0 = as fast as possible (default), 1 = real time")
    p.add_argument("--input-file", metavar="FILE", help="audio to play (default: synthetic piano-like piece)")
    p.add_argument("--device", metavar="NAME",
                   help="real-time run from this input device instead of the file (play something into it)")
    p.add_argument("--library", metavar="DIR",
                   help="attach the identification engine on this library (default: no engine)")
    p.add_argument("--synthetic-pages", type=int, metavar="N",
                   help="attach the engine on a temporary synthetic library of N pages in the installed "
                        "model's dimensions (cost only: the embeddings are random)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def synthetic_piece(path: Path, seconds: float = 60.0, rate: int = 44100, seed: int = 0) -> Path:
    """Piano-like test audio: random triads of decaying harmonics, a pause every 8 chords."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    chord_s = 0.5
    n = int(rate * chord_s)
    t = np.arange(n) / rate
    env = np.exp(-4.0 * t) * np.minimum(1.0, t / 0.005)
    parts = []
    for k in range(int(seconds / chord_s)):
        x = np.zeros(n)
        if k % 8 != 7:  # every 8th slot is a pause
            root = int(rng.integers(48, 72))
            for midi in (root, root + 4, root + 7):
                f0 = 440.0 * 2 ** ((midi - 69) / 12)
                for h in range(1, 7):
                    x += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) * 0.5**h
        parts.append(x * env * float(rng.uniform(0.1, 0.3)))
    signal = np.concatenate(parts)
    signal += 1e-3 * rng.standard_normal(len(signal))  # a quiet room
    sf.write(str(path), signal.astype(np.float32), rate, subtype="PCM_16")
    return path


def synthetic_engine_library(cfg: Config, directory: Path, pages: int, seed: int = 0) -> dict[str, Any]:
    """A library of ``pages`` synthetic pages that the engine accepts with the installed model.

    Why not ``companion bench library-synthetic``: its libraries carry a model
    version of their own, which the engine rightly refuses with a real model.
    Same shape as there (20 pages a document, 6 systems a page, 20 snippets a
    system), in the installed model's snippet and passage dimensions.
    """
    from companion.library.bench import synthetic_document
    from companion.library.catalog import Catalog
    from companion.library.publish import publish
    from companion.models.embedder import Embedder

    if pages < 1:
        raise CompanionError("--synthetic-pages must be >= 1")
    encoder = Embedder(cfg.models_dir, threads=1)
    dim = encoder.snippet_dim
    pdim = int(encoder.passage.cfg.embed_dim) if encoder.passage is not None else 64
    rng = np.random.default_rng(seed)
    per_doc = min(20, pages)
    n_docs = max(1, pages // per_doc)
    directory.mkdir(parents=True, exist_ok=True)
    with Catalog(directory) as catalog:
        for d in range(n_docs):
            doc = synthetic_document(d, per_doc, 6, 20, rng, dim=dim, pdim=pdim)
            doc.model_version = encoder.model_version
            catalog.write_document(doc)
        publish(catalog, directory, encoder.model_version)
    return {"pages": n_docs * per_doc, "documents": n_docs, "systems": n_docs * per_doc * 6,
            "snippet_vectors": n_docs * per_doc * 6 * 20, "snippet_dim": dim,
            "passage_model": encoder.passage is not None, "model_version": encoder.model_version}


def rss_mb() -> float:
    """Resident memory of this process (MB); Linux /proc, else peak RSS."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _session(cfg: Config, path: Path, speed: float, seconds: float, consumer: Any = None) -> Any:
    from companion.audio import audio_info
    from companion.live import CaptureSession, FileBackend, SessionParams

    duration = audio_info(path).duration
    repeat = max(1, math.ceil(seconds / duration)) if duration > 0 else 1
    backend = FileBackend(path, speed=speed, repeat=repeat)
    return CaptureSession(
        cfg.audio, backend=backend, consumer=consumer, params=SessionParams(publish_frames=True)
    )


def _drain(session: Any, result_latencies: list[float] | None = None) -> int:
    """Empty the channel as the GUI does; collect the latency of each published engine result."""
    events = session.channel.poll()
    if result_latencies is not None:
        from companion.live.channel import ResultEvent

        result_latencies.extend(e.latency_s for e in events
                                if isinstance(e, ResultEvent) and e.latency_s is not None)
    return len(events)


def run_realtime(
    cfg: Config, path: Path, seconds: float, consumer: Any = None, device: str | None = None
) -> dict[str, Any]:
    """The real-time run: from the file played as a microphone, or from a real input ``device``."""
    if device is not None:
        from companion.live import CaptureSession, SessionParams
        from companion.live.devices import get_backend

        session = CaptureSession(
            cfg.audio, backend=get_backend(), device=device, consumer=consumer,
            params=SessionParams(publish_frames=True),
        )
    else:
        session = _session(cfg, path, 1.0, seconds, consumer)
    rss0 = rss_mb()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    session.start()
    rss_warm: float | None = None
    result_lat: list[float] = []
    while session.running and time.perf_counter() - wall0 < seconds:
        _drain(session, result_lat)
        if rss_warm is None and time.perf_counter() - wall0 >= 0.05 * seconds:
            rss_warm = rss_mb()
        time.sleep(0.05)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    worker_cpu = session.stats.worker_cpu_s
    session.stop()
    _drain(session, result_lat)
    rss_end = rss_mb()
    lat = session.latencies.values() * 1000.0
    rlat = np.asarray(result_lat) * 1000.0
    stats = session.stats
    if stats.frames == 0:
        raise CompanionError(f"no audio arrived in {seconds:.0f} s: {session.channel.status.message} "
                             f"{session.channel.status.detail}")
    return {
        "audio_s": stats.samples / session.sample_rate if session.sample_rate else 0.0,
        "wall_s": wall,
        "device_rate": session.sample_rate,
        "worker_cpu_share": worker_cpu / wall,
        "process_cpu_share": cpu / wall,
        "latency_ms_p50": float(np.percentile(lat, 50)) if len(lat) else None,
        "latency_ms_p95": float(np.percentile(lat, 95)) if len(lat) else None,
        "latency_ms_max": float(lat.max()) if len(lat) else None,
        # engine results only: from the capture of a hop's last sample to its published result
        "result_latency_ms_p50": float(np.percentile(rlat, 50)) if len(rlat) else None,
        "result_latency_ms_p95": float(np.percentile(rlat, 95)) if len(rlat) else None,
        "result_latency_ms_max": float(rlat.max()) if len(rlat) else None,
        "frames": stats.frames,
        "results": stats.results,
        "dropped_blocks": stats.dropped_blocks,
        "overflows": stats.overflows,
        "rss_mb_start": rss0,
        "rss_mb_warm": rss_warm,
        "rss_mb_end": rss_end,
        "rss_growth_pct": 100.0 * (rss_end - rss_warm) / rss_warm if rss_warm else None,
    }


def run_long(cfg: Config, path: Path, seconds: float, speed: float, consumer: Any = None) -> dict[str, Any]:
    session = _session(cfg, path, speed, seconds, consumer)
    rate = session._backend.info.sample_rate
    wall0 = time.perf_counter()
    session.start()
    warm_at = 0.05 * seconds  # the first 5% of the stream: allocator and caches settle
    rss_warm: float | None = None
    samples: list[tuple[float, float]] = []
    next_sample = 0.0
    while session.running:
        _drain(session)
        t_audio = session.stats.samples / rate
        if rss_warm is None and t_audio >= warm_at:
            rss_warm = rss_mb()
        if t_audio >= next_sample:
            samples.append((t_audio, rss_mb()))
            next_sample += seconds / 20
        time.sleep(0.05)
    wall = time.perf_counter() - wall0
    _drain(session)
    rss_end = rss_mb()
    stats = session.stats
    audio_s = stats.samples / rate
    if rss_warm is None:
        rss_warm = samples[0][1] if samples else rss_end
    return {
        "audio_s": audio_s,
        "wall_s": wall,
        "speed": audio_s / wall if wall > 0 else None,
        "worker_cpu_s": stats.worker_cpu_s,
        "rss_mb_warm": rss_warm,
        "rss_mb_end": rss_end,
        "rss_growth_pct": 100.0 * (rss_end - rss_warm) / rss_warm,
        "rss_mb_trace": [(round(t), round(m, 1)) for t, m in samples],
        "frames": stats.frames,
        "dropped_blocks": stats.dropped_blocks,
        # no latency here: faster than real time, "capture" waits on the worker by design
    }


def run(args: argparse.Namespace, cfg: Config) -> int:
    if args.seconds < 0 or args.long_seconds < 0 or args.long_speed < 0:
        raise CompanionError("--seconds, --long-seconds and --long-speed must be >= 0")
    if args.library and args.synthetic_pages:
        raise CompanionError("give --library or --synthetic-pages, not both")
    consumer = None
    engine = "not included (no identification consumer attached; pass --library DIR or --synthetic-pages N)"
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(args.library) if args.library else None
        if args.synthetic_pages:
            library = Path(tmp) / "library"
            made = synthetic_engine_library(cfg, library, args.synthetic_pages)
            engine = (f"included, synthetic library of {made['pages']} pages ({made['systems']} systems, "
                      f"{made['snippet_vectors']} snippet vectors of {made['snippet_dim']}-d; passage model "
                      f"{'installed' if made['passage_model'] else 'not installed'})")
        elif library is not None:
            engine = f"included, library {library}"
        if library is not None:
            from companion.commands.listen import load_engine_consumer

            consumer, why = load_engine_consumer(cfg, library)
            if consumer is None:
                raise CompanionError(f"cannot attach the engine: {why}")
        if args.input_file:
            path = Path(args.input_file)
        elif args.device and not args.long_seconds:
            path = Path(tmp) / "unused.wav"  # everything comes from the device
        else:
            path = synthetic_piece(Path(tmp) / "piece.wav", seconds=60.0)
        report: dict[str, Any] = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "input": str(args.input_file or "synthetic piano-like piece, 60 s, 44.1 kHz"),
            "engine": engine,
        }
        if args.seconds > 0:
            report["realtime"] = run_realtime(cfg, path, args.seconds, consumer, args.device)
            if args.device:
                report["input"] = f"input device {args.device!r}"
        if args.long_seconds > 0:
            report["long"] = run_long(cfg, path, args.long_seconds, args.long_speed, consumer)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"machine: {report['machine']}; input: {report['input']}; engine: {report['engine']}")
    rt = report.get("realtime")
    if rt:
        print(
            f"real time, {rt['audio_s']:.0f} s at {rt['device_rate']:.0f} Hz: worker CPU "
            f"{100 * rt['worker_cpu_share']:.2f}% of one core (whole process "
            f"{100 * rt['process_cpu_share']:.2f}%), latency p50 {rt['latency_ms_p50']:.1f} ms, "
            f"p95 {rt['latency_ms_p95']:.1f} ms, max {rt['latency_ms_max']:.1f} ms, "
            f"dropped buffers {rt['dropped_blocks']}, RSS {rt['rss_mb_warm'] or 0:.1f} MB after 5% -> "
            f"{rt['rss_mb_end']:.1f} MB at the end"
        )
        if rt["result_latency_ms_p95"] is not None:
            print(
                f"  engine results: {rt['results']}, hop end -> published result p50 "
                f"{rt['result_latency_ms_p50']:.1f} ms, p95 {rt['result_latency_ms_p95']:.1f} ms, "
                f"max {rt['result_latency_ms_max']:.1f} ms"
            )
    lg = report.get("long")
    if lg:
        print(
            f"long run, {lg['audio_s']:.0f} s of audio in {lg['wall_s']:.0f} s ({lg['speed']:.1f}x): RSS "
            f"{lg['rss_mb_warm']:.1f} MB warm -> {lg['rss_mb_end']:.1f} MB at the end "
            f"({lg['rss_growth_pct']:+.2f}%), dropped buffers {lg['dropped_blocks']}"
        )
        print(f"  RSS trace (audio s, MB): {lg['rss_mb_trace']}")
    return 0
