"""``companion data build|inspect|pack|prepare|merge-pairs|summary``: the aligned audio–sheet training corpus."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from companion.config import Config
from companion.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="build and inspect the aligned audio-sheet training corpus",
                              description="Training corpus builder; see docs/corpus-format.md.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    p.set_defaults(func=lambda args, cfg: (p.print_help(), 2)[1])

    b = sub.add_parser("build", help="engrave, perform and align symbolic scores into a corpus")
    b.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="score files or folders (kern, MusicXML, MEI, ABC, LilyPond); "
                        "the word 'music21' adds the music21 corpus's keyboard pieces")
    b.add_argument("--out", required=True, type=Path, help="output folder (keep it outside the repository)")
    b.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    b.add_argument("--seed", type=int, default=0, help="seed for splits and variation (default 0)")
    b.add_argument("--exclude-list", type=Path, metavar="FILE",
                   help="works to leave out (one pattern per line, e.g. 'chopin op10'); "
                        "companion/data/real_scan_works.txt lists the works of shared/data/scans")
    b.add_argument("--evaluation", action="store_true",
                   help="build ONLY the reserved evaluation pieces (Beethoven/Mozart sonatas, Joplin) "
                        "into --out, which is then marked as an evaluation corpus")
    b.add_argument("--soundfonts", default="FluidR3_GM.sf2,MuseScore_General.sf3,TimGM6mb.sf2",
                   help="comma-separated soundfont names or paths")
    b.add_argument("--held-out-soundfont", default="TimGM6mb.sf2",
                   help="soundfont used only for the test (and evaluation) split")
    b.add_argument("--tempo", default="0.8,1.25", help="global tempo factor range (default 0.8,1.25)")
    b.add_argument("--fonts", default="Leipzig,Bravura,Petaluma,Leland,Gootville", help="verovio music fonts")
    b.add_argument("--page-width", type=int, default=1200, help="stored page width in pixels")
    b.add_argument("--no-audio", action="store_true", help="do not keep audio.flac (spectrograms only)")
    b.add_argument("--limit", type=int, default=0, help="build at most N pieces (0: all)")
    b.add_argument("--splits", default="",
                   help="build only the pieces of these splits, e.g. 'test' (default: all; splits are by work)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=run_build)

    i = sub.add_parser("inspect", help="draw a page with onset-coloured noteheads and its spectrogram")
    i.add_argument("piece", type=Path, help="a piece folder (DIR/pieces/<id>)")
    i.add_argument("--png", type=Path, required=True, help="output image")
    i.add_argument("--page", type=int, default=0, help="page number (0-based)")
    i.set_defaults(func=run_inspect)

    k = sub.add_parser("pack", help="concatenate each split into memory-mappable arrays for training")
    k.add_argument("corpus", type=Path)
    k.add_argument("--include-failed", action="store_true", help="also pack pieces that failed the checks")
    k.add_argument("--exclude-list", type=Path, metavar="FILE",
                   help="leave out works matching this list (same format as for build)")
    k.set_defaults(func=run_pack)

    r = sub.add_parser("prepare", help="cut a corpus into training pairs and passages (the encoders' input)")
    r.add_argument("corpus", type=Path, help="a corpus folder built by `companion data build`")
    r.add_argument("--out", required=True, type=Path, help="output pair-set folder (written atomically)")
    r.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    r.add_argument("--exclude-list", type=Path, metavar="FILE",
                   help="works kept out of train and valid (companion/data/real_scan_works.txt: the real scans)")
    r.add_argument("--max-pairs", type=int, default=0,
                   help="pairs per training piece (default 300; valid 120, test 150)")
    r.add_argument("--seed", type=int, default=0,
                   help="seed for the pairs drawn and the degradations (default 0; another seed, another sample)")
    r.add_argument("--splits", default="train,valid,test", help="splits to cut (default train,valid,test)")
    r.add_argument("--limit", type=int, default=0, help="prepare at most N pieces (0: all)")
    r.set_defaults(func=run_prepare)

    g = sub.add_parser("merge-pairs", help="merge prepared pair sets (e.g. preparations with other seeds)")
    g.add_argument("parts", nargs="+", type=Path, metavar="PAIRS", help="folders written by `data prepare`")
    g.add_argument("--out", required=True, type=Path, help="merged pair-set folder")
    g.set_defaults(func=run_merge_pairs)

    s = sub.add_parser("summary", help="print the corpus totals and failures")
    s.add_argument("corpus", type=Path)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=run_summary)


def _pair(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise DataError(f"expected two numbers like 0.8,1.25, got {text!r}") from exc
    if not 0 < lo <= hi:
        raise DataError(f"bad range {text!r}")
    return lo, hi


def run_build(args: argparse.Namespace, cfg: Config) -> int:
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources

    sources = find_sources([Path(s) for s in args.sources])
    if args.limit:
        sources = sources[: args.limit]
    if not sources:
        raise DataError("no score files found in the given sources")
    opts = BuildOptions(
        out=args.out, seed=args.seed,
        soundfonts=tuple(s.strip() for s in args.soundfonts.split(",") if s.strip()),
        held_out_soundfont=args.held_out_soundfont, tempo_range=_pair(args.tempo),
        fonts=tuple(f.strip() for f in args.fonts.split(",") if f.strip()),
        page_width_px=args.page_width, evaluation=args.evaluation, keep_audio=not args.no_audio)
    only = {x.strip() for x in args.splits.split(",") if x.strip()}
    unknown = only - {"train", "valid", "test"}
    if unknown:
        raise DataError(f"unknown split(s) {', '.join(sorted(unknown))}: choose from train, valid, test")
    summary = build(sources, opts, workers=max(1, args.workers), exclude_list=args.exclude_list,
                    progress=not args.no_progress, only_splits=only or None)
    other = f", {summary.other_splits} of other splits left out" if only else ""
    print(f"built {summary.built}, unchanged {summary.skipped_unchanged}, failed {len(summary.failed)}, "
          f"excluded {len(summary.excluded)}{other} in {summary.seconds:.0f} s")
    for f in summary.failed:
        print(f"  failed: {f['piece']}: {f['reason']}")
    return run_summary(argparse.Namespace(corpus=args.out, json=False), cfg)


def run_summary(args: argparse.Namespace, cfg: Config) -> int:
    from companion.data import store

    if not (args.corpus / "corpus.json").exists():
        raise DataError(f"{args.corpus} is not a corpus folder (no corpus.json)")
    kind = json.loads((args.corpus / "corpus.json").read_text(encoding="utf-8")).get("kind")
    index = store.write_index(args.corpus, evaluation=kind == "evaluation")  # current, even mid-build
    report = store.read_report(args.corpus)
    if args.json:
        print(json.dumps({"totals": index["totals"], "by_engraver": index["by_engraver"],
                          "by_split": index["by_split"], "by_repeats": index["by_repeats"],
                          "report": report}, indent=1))
        return 0
    t = index["totals"]
    print(f"{args.corpus}: {t['pieces']} pieces, {t['pairs']} notehead/onset pairs, {t['systems']} systems, "
          f"{t['pages']} pages, {t['seconds_audio'] / 3600:.1f} h audio; checks passed "
          f"{t['checks_passed']}/{t['pieces']}; engravers {index['by_engraver']}; splits {index['by_split']}; "
          f"repeats {index['by_repeats']}")
    for e in index["pieces"]:
        if str(e.get("repeats", "")).startswith("not-expanded"):
            print(f"  repeats not expanded: {e['piece']}: {e['repeats'].split(':', 1)[1].strip()}")
    for f in report.get("alignment_check_failures", []):
        print(f"  check failed: {f['piece']}: {'; '.join(f['reasons'])}")
    return 0


def run_inspect(args: argparse.Namespace, cfg: Config) -> int:
    from companion.data.inspect import inspect_piece

    info = inspect_piece(args.piece, args.png, page=args.page)
    repeats = (f", {info.repeated} sounding more than once (rings), {len(info.jumps)} repeat jump(s) marked"
               if info.repeated or info.jumps else "")
    print(f"wrote {args.png}: {info.noteheads} noteheads, {info.soundings} soundings{repeats}")
    return 0


def run_pack(args: argparse.Namespace, cfg: Config) -> int:
    from companion.data.store import pack

    from companion.data.sources import read_exclude_list

    patterns = read_exclude_list(args.exclude_list) if args.exclude_list else None
    for split, info in pack(args.corpus, only_passed=not args.include_failed,
                            exclude_patterns=patterns).items():
        print(f"{split}: {info['pieces']} pieces, {info['frames']} spectrogram frames")
    return 0


def run_prepare(args: argparse.Namespace, cfg: Config) -> int:
    from companion.training.prepare import PrepareOptions, prepare_pairs

    opts = PrepareOptions(exclude_list=str(args.exclude_list or ""), seed=args.seed,
                          splits=tuple(x.strip() for x in args.splits.split(",") if x.strip()))
    if args.max_pairs:
        opts.max_pairs["train"] = args.max_pairs

    def progress(done: int, total: int, name: str) -> None:
        print(f"\r{done}/{total} {name[:60]:<60}", end="" if done < total else "\n", flush=True)

    s = prepare_pairs(args.corpus, args.out, opts, workers=max(1, args.workers), progress=progress,
                      limit=args.limit)
    per = ", ".join(f"{k} {v['pieces']} pieces / {v['pairs']} pairs" for k, v in s["per_split"].items())
    st = s["stats"]
    print(f"{args.out}: {s['pairs']} pairs, {s.get('passages', 0)} passages ({per}); systems matched "
          f"{st.get('systems_matched', 0)}/{st.get('systems', 0)}; {s['seconds']:.0f} s")
    for f in s["failed"]:
        print(f"  failed: {f['piece']}: {f['error']}")
    return 0


def run_merge_pairs(args: argparse.Namespace, cfg: Config) -> int:
    from companion.training.data import merge_pairsets

    s = merge_pairsets(list(args.parts), args.out)
    per = ", ".join(f"{k} {v['pieces']} pieces / {v['pairs']} pairs" for k, v in s["per_split"].items())
    print(f"{args.out}: {s['pairs']} pairs, {s['pieces']} pieces, {s.get('passages', 0)} passages ({per})")
    return 0
