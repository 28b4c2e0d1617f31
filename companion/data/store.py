"""The corpus on disk: per-piece folders, an index, a failure report, packed splits.

Layout (documented in docs/corpus-format.md)::

    DIR/corpus.json            kind (training | evaluation), format version
    DIR/index.json             every built piece: split, counts, check verdict
    DIR/report.json            failed and excluded pieces with reasons
    DIR/pieces/<id>/meta.json  written last: its presence means the piece is complete
    DIR/pieces/<id>/page_000.png ...  greyscale pages
    DIR/pieces/<id>/noteheads.npy     HEAD_DTYPE, one row per notehead *sounding*
    DIR/pieces/<id>/systems.npy       SYSTEM_DTYPE, one row per system
    DIR/pieces/<id>/spec.npy          float16 (frames, 92) log spectrogram, 20 fps
    DIR/pieces/<id>/audio.flac        22,050 Hz mono (optional), performance.mid
    DIR/packed/<split>/...            see :func:`pack`
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from companion.errors import DataError

FORMAT_VERSION = 1
HEAD_DTYPE = np.dtype([("note", "<i4"), ("page", "<i2"), ("system", "<i2"), ("x", "<f4"),
                       ("y", "<f4"), ("onset", "<f4"), ("pitch", "<i2")])
SYSTEM_DTYPE = np.dtype([("page", "<i2"), ("x0", "<f4"), ("y0", "<f4"), ("x1", "<f4"),
                         ("y1", "<f4"), ("start", "<f4"), ("end", "<f4")])


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def write_corpus_marker(out: Path, evaluation: bool) -> None:
    marker = out / "corpus.json"
    kind = "evaluation" if evaluation else "training"
    if marker.exists():
        current = json.loads(marker.read_text(encoding="utf-8")).get("kind")
        if current != kind:
            raise DataError(f"{out} holds a {current} corpus; use another --out for a {kind} build")
        return
    _write_json(marker, {"kind": kind, "format_version": FORMAT_VERSION})


def read_meta(piece_dir: Path) -> dict | None:
    try:
        return json.loads((piece_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def align_tables(score, perf) -> tuple[np.ndarray, np.ndarray]:
    """Join noteheads to performed onsets by note id (several rows if a note sounds
    several times) and give every system its audio start and end."""
    sounding: dict[str, list[tuple[float, int]]] = {}
    for n in perf.notes:
        sounding.setdefault(n.note_id, []).append((n.onset, n.pitch))
    rows = []
    note_index = 0
    for h in score.noteheads:
        times = sounding.get(h.note_id)
        if not times:
            continue
        for onset, pitch in sorted(times):
            rows.append((note_index, h.page, h.system, h.x, h.y, onset, pitch))
        note_index += 1
    heads = np.array(rows, dtype=HEAD_DTYPE)
    systems = np.zeros(len(score.systems), dtype=SYSTEM_DTYPE)
    for i, s in enumerate(score.systems):
        systems[i] = (s.page, s.x0, s.y0, s.x1, s.y1, np.nan, np.nan)
    _first_visits(heads, systems, max((n.offset for n in perf.notes), default=0.0))
    return heads, systems


def _first_visits(heads: np.ndarray, systems: np.ndarray, last_offset: float) -> None:
    """Set each system's start and end to its first *visit*: from its first onset
    to the first onset of another system after it (or past its last note).

    Why visits: with repeats a system sounds again later; "until the next system
    in page order starts" would then stretch the passage over a whole repeated
    section. Without repeats this is the span up to the next system's start.
    """
    if len(heads) == 0:
        return
    order = np.argsort(heads["onset"], kind="stable")
    onset = heads["onset"][order]
    system = heads["system"][order]
    for i in range(len(systems)):
        idx = np.flatnonzero(system == i)
        if not len(idx):
            continue
        first = idx[0]
        start = float(onset[first])
        # 0.1 s: a chord of the previous system played late (onset jitter) does not end the visit.
        other = np.flatnonzero((system != i) & (np.arange(len(system)) > first) & (onset > start + 0.1))
        systems["start"][i] = start
        if len(other):
            systems["end"][i] = float(onset[other[0]])
        else:
            last = float(onset[idx].max())
            systems["end"][i] = max(last + 0.5, min(last_offset, last + 4.0))


def write_piece(folder: Path, score, heads: np.ndarray, systems: np.ndarray, spec: np.ndarray,
                audio: np.ndarray | None, sample_rate: int, meta: dict) -> None:
    from PIL import Image

    for i, page in enumerate(score.pages):
        Image.fromarray(page).save(folder / f"page_{i:03d}.png", compress_level=6)
    np.save(folder / "noteheads.npy", heads)
    np.save(folder / "systems.npy", systems)
    np.save(folder / "spec.npy", spec.astype(np.float16))
    if audio is not None:
        import soundfile as sf

        sf.write(str(folder / "audio.flac"), np.clip(audio, -1, 1), sample_rate, subtype="PCM_16")
    _write_json(folder / "meta.json", meta)


def iter_pieces(out: Path):
    """(folder, meta) of every complete piece, in name order."""
    pieces = out / "pieces"
    if not pieces.is_dir():
        return
    for d in sorted(pieces.iterdir()):
        if d.name.startswith("."):
            continue
        meta = read_meta(d)
        if meta is not None:
            yield d, meta


def write_index(out: Path, evaluation: bool) -> dict:
    entries = []
    totals = {"pieces": 0, "pairs": 0, "noteheads": 0, "systems": 0, "pages": 0, "seconds_audio": 0.0,
              "checks_passed": 0}
    by_engraver: dict[str, int] = {}
    by_split: dict[str, int] = {}
    by_repeats: dict[str, int] = {}  # none | expanded | not-expanded | unknown (built before repeats were handled)
    skip = excluded_ids(out)
    for d, m in iter_pieces(out):
        if m["piece"] in skip:
            continue
        entries.append({k: m.get(k) for k in ("piece", "split", "engraver", "work", "title", "composer",
                                               "soundfont", "n_pairs", "n_noteheads", "n_systems",
                                               "duration_s")} | {"pages": len(m.get("pages", [])),
                                                                 "check_passed": m["check"]["passed"],
                                                                 "repeats": m.get("repeats", "unknown")})
        totals["pieces"] += 1
        totals["pairs"] += m.get("n_pairs", 0)
        totals["noteheads"] += m.get("n_noteheads", 0)
        totals["systems"] += m.get("n_systems", 0)
        totals["pages"] += len(m.get("pages", []))
        totals["seconds_audio"] += m.get("duration_s", 0.0)
        totals["checks_passed"] += int(m["check"]["passed"])
        by_engraver[m["engraver"]] = by_engraver.get(m["engraver"], 0) + 1
        by_split[m["split"]] = by_split.get(m["split"], 0) + 1
        rep = str(m.get("repeats", "unknown")).split(":")[0]
        by_repeats[rep] = by_repeats.get(rep, 0) + 1
    index = {"kind": "evaluation" if evaluation else "training", "format_version": FORMAT_VERSION,
             "totals": totals, "by_engraver": by_engraver, "by_split": by_split, "by_repeats": by_repeats,
             "pieces": entries}
    _write_json(out / "index.json", index)
    return index


def read_report(out: Path) -> dict:
    try:
        return json.loads((out / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_report(out: Path, failed: list[dict], excluded: list[dict], seconds: float) -> None:
    check_failures = [{"piece": m["piece"], "reasons": m["check"]["reasons"], "monotonic": m["check"]["monotonic"],
                       "onset_hits": m["check"]["onset_hits"]}
                      for _, m in iter_pieces(out)
                      if not m["check"]["passed"] and m["piece"] not in {e["piece"] for e in excluded}]
    _write_json(out / "report.json", {"failed": failed, "excluded": excluded,
                                      "alignment_check_failures": check_failures,
                                      "last_build_seconds": round(seconds, 1)})


# --- packed splits for fast training -----------------------------------------

def excluded_ids(out: Path) -> set[str]:
    """Pieces the last build excluded (reserved or on its --exclude-list); a corpus
    built before an exclusion list was given keeps their folders, but neither the
    index totals nor :func:`pack` use them."""
    return {e["piece"] for e in read_report(out).get("excluded", [])}


def pack(out: Path, splits: tuple[str, ...] = ("train", "valid", "test"), only_passed: bool = True,
         exclude_patterns: list[list[str]] | None = None) -> dict:
    """Concatenate each split into memory-mappable arrays::

        packed/<split>/spec.npy       float16 (total_frames, 92), all pieces back to back
        packed/<split>/noteheads.npy  HEAD_DTYPE + piece (int32) index, onsets in seconds
        packed/<split>/systems.npy    SYSTEM_DTYPE + piece index
        packed/<split>/pieces.json    per piece: id, folder, spec frame offset/length, pages

    Training loads ``spec.npy`` with ``mmap_mode="r"`` and slices by offset.
    """
    kinds = json.loads((out / "corpus.json").read_text(encoding="utf-8")).get("kind")
    if kinds == "evaluation":
        splits = ("evaluation",)
    skip = excluded_ids(out)
    result = {}
    for split in splits:
        members = [(d, m) for d, m in iter_pieces(out)
                   if m["split"] == split and (m["check"]["passed"] or not only_passed)
                   and m["piece"] not in skip and not _matches(m, exclude_patterns or [])]
        dest = out / "packed" / split
        dest.mkdir(parents=True, exist_ok=True)
        specs = [np.load(d / "spec.npy", mmap_mode="r") for d, _ in members]
        total = sum(len(s) for s in specs)
        bands = specs[0].shape[1] if specs else 92
        big = np.lib.format.open_memmap(dest / "spec.npy.tmp.npy", mode="w+", dtype=np.float16,
                                        shape=(total, bands))
        heads_all, systems_all, info = [], [], []
        offset = 0
        for i, ((d, m), s) in enumerate(zip(members, specs)):
            big[offset: offset + len(s)] = s
            h = np.load(d / "noteheads.npy")
            hp = np.zeros(len(h), dtype=HEAD_DTYPE.descr + [("piece", "<i4")])
            for name in HEAD_DTYPE.names:
                hp[name] = h[name]
            hp["piece"] = i
            heads_all.append(hp)
            sy = np.load(d / "systems.npy")
            sp = np.zeros(len(sy), dtype=SYSTEM_DTYPE.descr + [("piece", "<i4")])
            for name in SYSTEM_DTYPE.names:
                sp[name] = sy[name]
            sp["piece"] = i
            systems_all.append(sp)
            info.append({"piece": m["piece"], "folder": str(d.relative_to(out)), "spec_offset": offset,
                         "spec_frames": len(s), "pages": len(m["pages"]), "fps": m["fps"]})
            offset += len(s)
        big.flush()
        del big
        os.replace(dest / "spec.npy.tmp.npy", dest / "spec.npy")
        np.save(dest / "noteheads.npy", np.concatenate(heads_all) if heads_all else np.zeros(0, HEAD_DTYPE))
        np.save(dest / "systems.npy", np.concatenate(systems_all) if systems_all else np.zeros(0, SYSTEM_DTYPE))
        _write_json(dest / "pieces.json", info)
        result[split] = {"pieces": len(members), "frames": total}
    return result


def _matches(meta: dict, patterns: list[list[str]]) -> bool:
    from companion.data.sources import normalise

    from companion.data.works import identity_words

    source = str(meta.get("source", ""))
    words = set(normalise(" ".join([*(str(meta.get(k, "")) for k in ("composer", "title", "opus", "work")),
                                    source, *identity_words(Path(source).stem if source else "")])).split())
    return any(all(w in words for w in pat) for pat in patterns)


def load_packed(out: Path, split: str) -> dict:
    """The packed split: ``spec`` (memory-mapped), ``noteheads``, ``systems``, ``pieces``."""
    dest = out / "packed" / split
    if not (dest / "pieces.json").exists():
        raise DataError(f"no packed split {split!r} in {out}: run `companion data pack {out}`")
    return {"spec": np.load(dest / "spec.npy", mmap_mode="r"),
            "noteheads": np.load(dest / "noteheads.npy"),
            "systems": np.load(dest / "systems.npy"),
            "pieces": json.loads((dest / "pieces.json").read_text(encoding="utf-8"))}
