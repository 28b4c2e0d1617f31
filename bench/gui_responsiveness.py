"""GUI responsiveness: how long the GUI thread is ever blocked during a scripted session.

A :class:`companion.gui.watchdog.StallWatchdog` (10-ms timer) measures the
event loop's lateness while the app, offscreen, goes through:

1. indexing a generated library (vector scores plus "scanned" pages: full-page
   300-dpi JPEG images, the expensive kind to draw) in the indexing process;
2. opening a scanned score, zooming in and out 8 times, turning pages;
3. listening to a 10-s recording played in real time as the microphone,
   followed in the score (the tone-following engine double of the GUI tests);
4. looking up a dropped recording;
5. training: a synthetic snippet run in the Training tab (the real trainer in
   its child process, as the app runs it) for 20 s, then cancelled;
   activate: its best model compared with the installed one and activated
   (in a copy of the models folder), then the library re-indexed with it;
6. building a corpus from one symbolic score in the Training tab
   (corpus build and pack in a child process), when verovio and
   the soundfonts are installed (else the phase is left out and says so).

``--real`` replaces the generated library and the engine doubles with what a
user gets: the bundled demo scans (``resources/demo``) indexed with the real
sheet front end and the installed model, the demo recording followed by the
real live engine (``--listen-seconds`` of it, in real time) and looked up by the
real engine.

``--render-in-thread`` draws pages in a thread of the app's own process
instead of the helper process, to show why the helper exists;
``--training-in-thread`` likewise runs the trainer in a worker thread of the
app instead of its child process.

``--phases training,activate`` runs only the named phases (in their order
above; ``score``, ``listen`` and ``lookup`` need ``index``).

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_responsiveness.py [--json]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "gui"))  # the GUI tests' generated data and doubles


def make_scan_pdf(path: Path, n_pages: int, seed: int) -> Path:
    """Pages that are 300-dpi greyscale JPEG images of staves (like a scanner's output)."""
    import pymupdf
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    doc = pymupdf.open()
    for _ in range(n_pages):
        img = Image.new("L", (2480, 3508), 250)
        d = ImageDraw.Draw(img)
        for s in range(4):
            top = 350 + s * 780
            for staff in range(2):
                y0 = top + staff * 250
                for line in range(5):
                    d.line([(200, y0 + line * 25), (2280, y0 + line * 25)], fill=20, width=4)
                for _ in range(int(rng.integers(15, 30))):
                    x, y = float(rng.uniform(260, 2200)), y0 + float(rng.integers(0, 9)) * 12.5
                    d.ellipse([x - 11, y - 9, x + 11, y + 9], fill=10)
        noise = rng.normal(0, 6, (3508, 2480))
        arr = np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "JPEG", quality=85)
        page = doc.new_page(width=595, height=842)
        page.insert_image(page.rect, stream=buf.getvalue())
    doc.save(path)
    doc.close()
    return path


class ThreadRender:
    """Draw in the calling thread (the design the helper process replaces)."""

    def render(self, path: str, page: int, width_px: int):
        from companion.gui.render_service import render_rgb

        return render_rgb(path, page, width_px)

    def shutdown(self) -> None:
        pass


def _data_tools_missing() -> str:
    """Why the build-data phase cannot run here ("" when it can)."""
    try:
        import verovio  # noqa: F401

        from companion.data.synth import available_soundfonts
    except ImportError as exc:
        return f"{exc.name} not installed"
    return "" if available_soundfonts(("FluidR3_GM.sf2",)) else "FluidR3_GM soundfont not installed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--stacks", action="store_true", help="print where the GUI thread was during each stall")
    ap.add_argument("--render-in-thread", action="store_true", help="draw pages in a thread of the app process")
    ap.add_argument("--training-in-thread", action="store_true",
                    help="run the trainer in a worker thread of the app instead of a child process")
    ap.add_argument("--no-build", action="store_true", help="leave out the build-data phase")
    ap.add_argument("--phases", default="", help="comma-separated phases to run (default: all), e.g. training")
    ap.add_argument("--real", action="store_true",
                    help="demo scans, installed model and the real engine instead of generated data and doubles")
    ap.add_argument("--listen-seconds", type=float, default=30.0, help="with --real: seconds of the demo "
                    "recording to listen to (default 30)")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="gui-bench-"))
    os.environ["COMPANION_HOME"] = str(home)

    from gui_helpers import NoMicrophone, ProjectionFrontEnd, ToneEngine, hash_embedder, make_score_pdf, write_tones
    from PySide6.QtCore import QCoreApplication

    import companion.engine
    import companion.gui.listen_panel as lp
    from companion.config import load_config
    from companion.gui.app import create_application
    from companion.gui.library_service import LibraryBackend
    from companion.gui.main_window import MainWindow
    from companion.gui.watchdog import StallWatchdog

    app = create_application(headless=True)
    if args.training_in_thread:
        import companion.gui.training_view as tv
        from companion.gui.training_jobs import train_job

        def run_training_in_thread(ctx, mode, data, out_dir, epochs, batch_size, steps_per_epoch, resume,
                                   valid_pairs=2000):
            return train_job(mode, data, str(out_dir), epochs, batch_size, steps_per_epoch, resume, valid_pairs,
                             progress=ctx.progress, cancel=ctx.cancel_event)

        tv.run_training = run_training_in_thread
    # a copy of the installed models: the activate phase replaces the model in it, never the real one
    import shutil

    models = home / "models"
    shutil.copytree(ROOT / "models", models)
    cfg = load_config(models_dir=models)
    if args.real:
        folder = ROOT / "resources" / "demo"
        audio = folder / "recording.ogg"
        backend = LibraryBackend.default(cfg)
    else:
        folder = home / "scores"
        folder.mkdir()
        for i in range(6):
            make_score_pdf(folder / f"vector score {i}.pdf", 3, seed=i, systems_per_page=4, title=f"Piece {i}")
        for i in range(2):
            make_scan_pdf(folder / f"scanned score {i}.pdf", 3, seed=100 + i)
        audio = write_tones(home / "performance.wav", seconds_per_tone=1.5)
        backend = LibraryBackend(home / "library", ProjectionFrontEnd, hash_embedder)
    w = MainWindow(cfg, backend=backend, audio_backend=NoMicrophone())
    if args.render_in_thread:
        w.cache.pool = ThreadRender()
    w.resize(1280, 800)
    w.show()

    def pump(seconds: float, until=None) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)
            if until is not None and until():
                return

    pump(0.5)
    dog = StallWatchdog(threshold_ms=50, log_stalls=False, capture_stacks=args.stacks)
    results: dict[str, dict[str, float]] = {}
    notes: dict[str, object] = {"library": "demo scans, installed model, real engine" if args.real
                                else "generated scores, engine doubles"}

    def phase(name: str, fn) -> None:
        dog.start()
        lateness: list[float] = []
        last = [time.perf_counter()]

        def tick(ms: float) -> None:
            lateness.append(ms)

        dog.stalled.connect(tick)
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        dog.stop()
        dog.stalled.disconnect(tick)
        if args.stacks:
            for st in dog.stalls:
                print(f"--- {name}: {st.ms:.0f} ms\n{st.stack or '(not captured)'}", file=sys.stderr)
        results[name] = {"seconds": round(wall, 2), "ticks": dog.ticks, "max_stall_ms": round(dog.max_stall_ms, 1),
                         "stalls_over_50ms": len(dog.stalls)}
        del last

    def index() -> None:
        w.library.start_indexing([folder])
        pump(300, until=lambda: not w.library.busy)

    def score() -> None:
        rows = w.library.document_rows()
        row = rows[0] if args.real else next(d for d in rows if "scanned score 0" in d.path)
        w.open_library_document(row)
        pump(20, until=lambda: w.cache.pending == 0)
        for _ in range(4):
            w.score.set_zoom(w.score.canvas.zoom * 1.3)
            pump(0.3)
        for _ in range(4):
            w.score.set_zoom(w.score.canvas.zoom / 1.3)
            pump(0.3)
        for _ in range(2):
            w.score.next_page()
            pump(0.5)
        w.score.set_two_pages(True)
        pump(20, until=lambda: w.cache.pending == 0)

    def listen_real() -> None:
        w.show_view(2)
        w.listen.set_input_file(audio)
        w.listen.start(speed=1.0)
        pump(10, until=lambda: w.listen.listening)
        pump(args.listen_seconds)
        w.listen.stop()
        pump(10, until=lambda: not w.listen.listening)
        li = w.listen.last_identification
        notes["listen"] = ("last identification: " + (f"{li.pieces[0].title} (sure={li.sure})"
                                                        if li is not None and li.pieces else "none"))

    def lookup_real() -> None:
        w.look_up(audio)
        pump(300, until=lambda: w.lookup.result is not None and w.lookup.task is None)
        r = w.lookup.result
        notes["lookup"] = (f"{len(r.hops)} hops, ranked {r.ranked()[:2]}" if r is not None else "no result")

    def listen() -> None:
        row = next(d for d in w.library.document_rows() if d.title == "Piece 0")
        pages = [s.page for s in backend.systems(row.id)]
        engine = ToneEngine(row.id, row.title, pages)
        lp.live_engine = lambda cfg, lib: (engine, "")
        w.show_view(2)
        w.listen.set_input_file(audio)
        w.listen.start(speed=1.0)
        pump(5, until=lambda: w.listen.listening)
        pump(30, until=lambda: not w.listen.listening)

    def lookup() -> None:
        row = next(d for d in w.library.document_rows() if d.title == "Piece 0")
        pages = [s.page for s in backend.systems(row.id)]

        def lookup_recording(cfg, library_dir, audio_path, progress=None, cancel=None):
            from companion.audio import log_spectrogram

            spec = log_spectrogram(audio_path)
            eng = ToneEngine(row.id, row.title, pages)
            return [eng.on_frames(spec[i : i + 10], i / 20.0) for i in range(0, len(spec) - 9, 10)]

        companion.engine.lookup_recording = lookup_recording
        w.look_up(audio)
        pump(60, until=lambda: w.lookup.result is not None and w.lookup.task is None)

    def training() -> None:
        v = w.training
        w.show_view(4)
        v.synthetic.setChecked(True)
        v.mode_box.setCurrentIndex(v.mode_box.findData("snippet"))
        v.epochs.setValue(50)
        v.batch.setValue(32)
        v.steps.setValue(20)
        v.valid_pairs.setValue(64)
        v.run_dir.setText(str(home / "runs"))
        v.start()
        pump(20, until=lambda: v.task is None)
        v.cancel()
        pump(60, until=lambda: v.task is None)
        notes["training_loss_points"] = len(v.losses)

    def activate() -> None:
        v = w.training
        if not (v.out_dir / "best.pt").is_file():
            notes["activate"] = "skipped: the training phase finished no epoch"
            return
        v.compare()
        pump(60, until=lambda: v.model_task is None)
        w.library.last_report = None
        if v.activate() is None:
            notes["activate"] = "not started: " + v.report.text()[:200]
            return
        pump(60, until=lambda: v.model_task is None)
        pump(600, until=lambda: w.library.last_report is not None and not w.library.busy)
        r = w.library.last_report
        notes["activate"] = (f"activated; library re-embedded {r.reembedded} documents" if r is not None
                             else "activated; " + v.status.text()[:200])

    def build_data() -> None:
        v = w.training
        v.scores_edit.setText(str(scores))
        v.build_from_scores()
        pump(300, until=lambda: v.build_task is None)
        notes["build_status"] = v.status.text()

    # one symbolic score for the build-data phase (written now: loading the data tests' fixtures
    # imports pytest, which is not the app's work)
    import importlib.util

    spec = importlib.util.spec_from_file_location("data_fixtures", ROOT / "tests" / "data" / "conftest.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    scores = home / "symbolic"
    scores.mkdir(exist_ok=True)
    (scores / "kern-test.krn").write_text(fixtures.KERN, encoding="utf-8")

    phases = [("index", index), ("score", score), ("listen", listen_real if args.real else listen),
              ("lookup", lookup_real if args.real else lookup), ("training", training),
              ("activate", activate)]
    if args.no_build or _data_tools_missing():
        notes["build data"] = "skipped: " + ("--no-build" if args.no_build else _data_tools_missing())
    else:
        phases.append(("build data", build_data))
    wanted = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(wanted) - {name for name, _ in phases} - {"build data"}
    if unknown:
        ap.error(f"unknown phases: {', '.join(sorted(unknown))}")
    for name, fn in phases:
        if not wanted or name in wanted:
            phase(name, fn)
    w.close()
    QCoreApplication.processEvents()
    summary = {
        "render": "thread" if args.render_in_thread else "process",
        "training": "thread" if args.training_in_thread else "process",
        "real": bool(args.real),
        "phases": results,
        "max_stall_ms": max(r["max_stall_ms"] for r in results.values()),
        "stalls_over_50ms": sum(r["stalls_over_50ms"] for r in results.values()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "notes": notes,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name, r in results.items():
            print(f"{name:10s} {r['seconds']:6.1f} s  max stall {r['max_stall_ms']:6.1f} ms  "
                  f"stalls > 50 ms: {r['stalls_over_50ms']}")
        print(f"load average at the end: {summary['load_average']}; {notes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
