"""Audio queries for the real-scan benchmark, synthesised from the corpus's performances.

Why: `companion eval --scans` needs whole-piece spectrograms of the scanned works in a
SoundFont never used for training. The corpus already holds an expressive performance
(``performance.mid``) of every Chopin first-edition piece; re-synthesising those with the
held-out TimGM6mb takes seconds per piece, where engraving them again
(:mod:`companion.training.render_pairs`) takes minutes, and the queries keep the
corpus's expressive timing. The spectrograms are degraded as render_pairs degrades its
test audio, and named ``op<NNN>-<no>`` so :func:`companion.evaluation.scans.scan_work_for`
maps them to their scanned work.

    python -m companion.training.scan_queries /work/corpus /work/enc/scan_queries --per-work 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from companion.errors import CompanionError

KERN_DIR = Path("../shared/data/scores/chopin-first-editions/kern")


def scan_pieces(corpus: Path, kern_dir: Path, per_work: int) -> dict[str, Path]:
    """Query key (``op<NNN>-<no>``) -> corpus piece folder, at most ``per_work`` per scanned work."""
    from companion.evaluation.scans import scan_work_for
    from companion.training.render_pairs import chopin_pieces

    key_of = {path.name: key for key, path in chopin_pieces(kern_dir).items()}
    by_work: dict[str, list[tuple[str, Path]]] = {}
    for meta_path in sorted((Path(corpus) / "pieces").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        key = key_of.get(Path(str(meta.get("source", ""))).name)
        if key is None or not (meta_path.parent / "performance.mid").is_file():
            continue
        work = scan_work_for(key)
        if work is not None:
            by_work.setdefault(work, []).append((key, meta_path.parent))
    out: dict[str, Path] = {}
    for work in sorted(by_work):
        for key, folder in sorted(by_work[work])[:per_work]:
            out.setdefault(key, folder)
    return out


def build_queries(corpus: Path, out_dir: Path, soundfont: Path, kern_dir: Path = KERN_DIR,
                  per_work: int = 2, seed: int = 0) -> dict[str, object]:
    """Write one degraded whole-piece spectrogram (92 x frames, float16) per selected piece."""
    import torch

    from companion.audio import log_spectrogram
    from companion.data.synth import render
    from companion.training.augment import AudioAugment, augment_audio
    from companion.training.render_pairs import DEGRADE

    if not Path(soundfont).is_file():
        raise CompanionError(f"SoundFont not found: {soundfont}")
    pieces = scan_pieces(corpus, kern_dir, per_work)
    if not pieces:
        raise CompanionError(f"no corpus pieces of the scanned works in {corpus}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for i, (key, folder) in enumerate(sorted(pieces.items())):
        target = out_dir / f"{key}.npy"
        if target.is_file():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "audio.wav"
            render(folder / "performance.mid", Path(soundfont), wav, gain=0.7)
            spec = log_spectrogram(str(wav)).T.astype(np.float32)
        gen = torch.Generator().manual_seed(seed + i)
        x = torch.from_numpy(spec[None])
        spec = augment_audio(x, x.shape[2], AudioAugment(**DEGRADE), gen)[0].numpy()
        tmp_target = target.with_suffix(".tmp.npy")
        np.save(tmp_target, spec.astype(np.float16))
        tmp_target.replace(target)
    summary = {"pieces": {k: str(v) for k, v in sorted(pieces.items())}, "soundfont": Path(soundfont).name,
               "per_work": per_work, "seed": seed, "seconds": round(time.time() - t0, 1)}
    (out_dir / "queries.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--kern-dir", type=Path, default=KERN_DIR)
    ap.add_argument("--soundfont", type=Path, default=Path("/usr/share/sounds/sf2/TimGM6mb.sf2"))
    ap.add_argument("--per-work", type=int, default=2, help="pieces per scanned work (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    s = build_queries(args.corpus, args.out_dir, args.soundfont, args.kern_dir, args.per_work, args.seed)
    print(f"{len(s['pieces'])} query pieces written to {args.out_dir} in {s['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
