"""The bundled demo: a small library of rendered public-domain pieces and one recording.

``resources/demo/`` holds scanned-looking PDFs of a few public-domain piano
pieces (engraved by the project from the music21 corpus, see its README for
sources and licences), ``recording.ogg`` (one of them played with expressive
timing in a soundfont the encoders were not trained with) and ``demo.json``
(which piece the recording is and the time span of each system in it).

:func:`run_demo_job` is the headless quick start: index the demo PDFs into a
library under the user's data folder (incremental: a second run only checks
them) and identify the recording with the engine, returning a JSON-ready
result that says whether the right piece and systems were found.
:func:`build_demo_assets` (re)creates the folder (``python -m companion.engine.demo``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from companion.config import Config
from companion.errors import CompanionError

DEMO_PIECES: tuple[tuple[str, str, str, str], ...] = (
    # (music21 corpus work, file name, title, composer)
    ("schumann_clara/polonaise_op1n1.mxl", "Clara_Schumann_-_Polonaise_Op1_No1", "Polonaise in E-flat, Op. 1 No. 1", "Clara Schumann"),
    ("schumann_clara/polonaise_op1n2.mxl", "Clara_Schumann_-_Polonaise_Op1_No2", "Polonaise in C, Op. 1 No. 2", "Clara Schumann"),
    ("schumann_clara/polonaise_op1n3.mxl", "Clara_Schumann_-_Polonaise_Op1_No3", "Polonaise in D, Op. 1 No. 3", "Clara Schumann"),
    ("schumann_clara/polonaise_op1n4.mxl", "Clara_Schumann_-_Polonaise_Op1_No4", "Polonaise in C, Op. 1 No. 4", "Clara Schumann"),
    ("cpebach/h186.mxl", "CPE_Bach_-_H186", "Keyboard piece H. 186", "C. P. E. Bach"),
    ("schubert/Lindenbaum.xml", "Schubert_-_Der_Lindenbaum", "Der Lindenbaum (Winterreise No. 5)", "Franz Schubert"),
)
RECORDING_PIECE = 2
"""Index in DEMO_PIECES of the piece the demo recording plays."""
RECORDING_SECONDS = 75.0


def demo_dir(cfg: Config) -> Path:
    return cfg.resources_dir / "demo"


def build_demo_assets(out_dir: Path, seed: int = 7) -> dict[str, Any]:
    """Render the demo PDFs and the recording (needs the ``data`` extra, FluidSynth and the soundfonts)."""
    from companion.data.pieces import HELD_OUT_SOUNDFONT, render_piece

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"pieces": [], "recording": None}
    for i, (work, name, title, composer) in enumerate(DEMO_PIECES):
        is_rec = i == RECORDING_PIECE
        # the recorded piece's repeat signs give the recording its jump back
        piece = render_piece(work, out_dir, name, seed=seed + i, title=title, composer=composer,
                             page_width_px=1000, audio=is_rec, max_seconds=RECORDING_SECONDS)
        meta["pieces"].append({"pdf": Path(piece.pdf).name, "title": title, "composer": composer,
                               "source": f"music21 corpus: {work}", "pages": piece.n_pages})
        if is_rec:
            rec = out_dir / "recording.ogg"
            Path(piece.audio).replace(rec)
            meta["recording"] = {"audio": rec.name, "pdf": Path(piece.pdf).name, "title": title,
                                 "soundfont": HELD_OUT_SOUNDFONT, "systems": [list(s) for s in piece.systems]}
    (out_dir / "demo.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta


def _default_frontend(cfg: Config):
    from companion.commands.library import default_frontend

    return default_frontend(cfg)


def index_demo(cfg: Config, library_dir: Path) -> dict[str, Any]:
    """Index the demo PDFs (incremental) with the shipped sheet front end and model."""
    from companion.library import Indexer
    from companion.models.embedder import Embedder

    folder = demo_dir(cfg)
    frontend = _default_frontend(cfg)
    models_dir = cfg.models_dir
    with Indexer(library_dir, frontend, lambda: Embedder(models_dir)) as indexer:
        report = indexer.run([folder])
    return {"added": report.added, "unchanged": report.unchanged, "errors": report.errors,
            "pages": report.pages, "seconds": round(report.seconds, 2)}


def run_demo_job(cfg: Config) -> dict[str, Any]:
    """Index the demo library and identify the demo recording; never raises for a missing part."""
    started = time.perf_counter()
    folder = demo_dir(cfg)
    out: dict[str, Any] = {"demo": str(folder)}
    meta_path = folder / "demo.json"
    if not meta_path.is_file():
        out["error"] = f"the bundled demo is missing ({meta_path}); reinstall companion"
        return out
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    library_dir = cfg.paths.data_dir / "demo-library"
    try:
        out["index"] = index_demo(cfg, library_dir)
        from companion.engine.identify import identify_file
        from companion.engine.session import open_engine

        engine = open_engine(cfg, library_dir, threads=1)
        result = identify_file(engine, folder / meta["recording"]["audio"], cfg=cfg.audio)
    except CompanionError as exc:
        out["error"] = str(exc)
        return out
    except ImportError as exc:  # a part of the app that is not installed yet
        out["error"] = f"a part of companion is missing: {exc}"
        return out
    expected = meta["recording"]["pdf"]
    top = result["pieces"][0]["document"] if result["pieces"] else None
    out["identify"] = result
    out["expected_piece"] = expected
    out["identified_correctly"] = bool(top and Path(top).name == expected)
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def main() -> int:
    from companion.config import load_config

    cfg = load_config()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else demo_dir(cfg)
    meta = build_demo_assets(target)
    print(json.dumps(meta["recording"] and {k: v for k, v in meta["recording"].items() if k != "systems"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
