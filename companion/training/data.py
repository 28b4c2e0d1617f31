"""Prepared training data held in memory.

Why prepared arrays: cutting snippets from page images and excerpts from
spectrograms on the fly costs more CPU than the (lean) network itself. All
pairs are extracted once (see :mod:`companion.training.prepare`) into a
folder of ``.npy`` files, memory-mapped or loaded whole, and every epoch only
crops and augments.

Folder layout (``PairSet``)::

    meta.json          {"version": 1, "pieces": [...], "splits": {...}, "context": {...}, "summary": {...}}
    sheet.npy          uint8   (N, 80, 80 + 2*sheet_ctx)   snippet centred on a notehead (255 = paper)
    audio.npy          float16 (N, 92, 42 + 2*audio_ctx)   excerpt centred on that note's onset frame
    piece.npy          int32   (N,)   index into meta["pieces"]
    onset.npy          float32 (N,)   onset time in seconds (for ordering / piece-id excerpts)
    passages/          optional system-level passages (see PassageSet)

The extra context (``sheet_ctx`` pixels, ``audio_ctx`` frames on each side)
lets training shift the crop (the papers' "time shift" and a horizontal
jitter) while evaluation takes the centre crop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from companion.errors import CompanionError
from companion.models.encoders import AUDIO_SHAPE, SHEET_SHAPE

PAIRSET_VERSION = 1


class DataError(CompanionError):
    """Training data is missing or malformed."""


@dataclass
class PairSet:
    """In-memory (sheet, audio) snippet pairs with piece labels."""

    sheet: np.ndarray  # uint8 (N, 80, Ws)
    audio: np.ndarray  # float16/float32 (N, 92, Wa)
    piece: np.ndarray  # int32 (N,)
    onset: np.ndarray  # float32 (N,)
    pieces: list[str]
    splits: dict[str, list[str]]
    summary: dict[str, Any]

    def __post_init__(self) -> None:
        n = len(self.sheet)
        if not (len(self.audio) == len(self.piece) == len(self.onset) == n):
            raise DataError("pair arrays have different lengths")
        if self.sheet.ndim != 3 or self.sheet.shape[1] != SHEET_SHAPE[0] or self.sheet.shape[2] < SHEET_SHAPE[1]:
            raise DataError(f"sheet array must be (N, {SHEET_SHAPE[0]}, >= {SHEET_SHAPE[1]}), got {self.sheet.shape}")
        if self.audio.ndim != 3 or self.audio.shape[1] != AUDIO_SHAPE[0] or self.audio.shape[2] < AUDIO_SHAPE[1]:
            raise DataError(f"audio array must be (N, {AUDIO_SHAPE[0]}, >= {AUDIO_SHAPE[1]}), got {self.audio.shape}")

    def __len__(self) -> int:
        return len(self.sheet)

    @property
    def sheet_ctx(self) -> int:
        return (self.sheet.shape[2] - SHEET_SHAPE[1]) // 2

    @property
    def audio_ctx(self) -> int:
        return (self.audio.shape[2] - AUDIO_SHAPE[1]) // 2

    def indices(self, split: str) -> np.ndarray:
        """Pair indices of the pieces in ``split`` ("train", "valid", "test", ...)."""
        names = set(self.splits.get(split, []))
        if not names:
            return np.zeros(0, dtype=np.int64)
        ids = np.array([i for i, p in enumerate(self.pieces) if p in names], dtype=np.int32)
        return np.flatnonzero(np.isin(self.piece, ids))

    def centre_sheet(self, idx: np.ndarray) -> np.ndarray:
        c = self.sheet_ctx
        return self.sheet[idx, :, c : c + SHEET_SHAPE[1]]

    def centre_audio(self, idx: np.ndarray) -> np.ndarray:
        c = self.audio_ctx
        return np.asarray(self.audio[idx, :, c : c + AUDIO_SHAPE[1]], dtype=np.float32)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "sheet.npy", self.sheet)
        np.save(folder / "audio.npy", self.audio)
        np.save(folder / "piece.npy", self.piece.astype(np.int32))
        np.save(folder / "onset.npy", self.onset.astype(np.float32))
        meta = {
            "version": PAIRSET_VERSION,
            "pieces": self.pieces,
            "splits": self.splits,
            "summary": self.summary,
        }
        (folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "PairSet":
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            raise DataError(
                f"no prepared training pairs in {folder} (meta.json missing); "
                "cut a corpus into pairs first: `companion data prepare CORPUS --out DIR`"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            mode = "r" if mmap else None
            arrays = {k: np.load(folder / f"{k}.npy", mmap_mode=mode) for k in ("sheet", "audio", "piece", "onset")}
        except (OSError, ValueError) as exc:
            raise DataError(f"prepared pairs in {folder} are unreadable: {exc}") from exc
        if meta.get("version") != PAIRSET_VERSION:
            raise DataError(f"prepared pairs in {folder} have version {meta.get('version')}, expected {PAIRSET_VERSION}")
        return cls(
            arrays["sheet"], arrays["audio"], np.asarray(arrays["piece"]), np.asarray(arrays["onset"]),
            list(meta["pieces"]), dict(meta["splits"]), dict(meta.get("summary", {})),
        )


@dataclass
class PassageSet:
    """System-level passages: a sheet strip (80 px high) and its audio, per system.

    Stored flat with offsets: ``sheet_flat`` (80, sum W) uint8, ``audio_flat``
    (92, sum T) float16, ``sheet_off``/``audio_off`` (M + 1,) and ``piece`` (M,).
    """

    sheet_flat: np.ndarray
    sheet_off: np.ndarray
    audio_flat: np.ndarray
    audio_off: np.ndarray
    piece: np.ndarray
    pieces: list[str]
    splits: dict[str, list[str]]

    def __len__(self) -> int:
        return len(self.piece)

    def strip(self, i: int) -> np.ndarray:
        return self.sheet_flat[:, self.sheet_off[i] : self.sheet_off[i + 1]]

    def spectrogram(self, i: int) -> np.ndarray:
        return np.asarray(self.audio_flat[:, self.audio_off[i] : self.audio_off[i + 1]], dtype=np.float32)

    def indices(self, split: str) -> np.ndarray:
        names = set(self.splits.get(split, []))
        ids = np.array([i for i, p in enumerate(self.pieces) if p in names], dtype=np.int32)
        return np.flatnonzero(np.isin(self.piece, ids))

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for k in ("sheet_flat", "sheet_off", "audio_flat", "audio_off", "piece"):
            np.save(folder / f"{k}.npy", getattr(self, k))
        (folder / "meta.json").write_text(
            json.dumps({"version": PAIRSET_VERSION, "pieces": self.pieces, "splits": self.splits}), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path) -> "PassageSet":
        folder = Path(folder)
        if not (folder / "meta.json").is_file():
            raise DataError(f"no prepared passages in {folder}")
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            arr = {k: np.load(folder / f"{k}.npy") for k in ("sheet_flat", "sheet_off", "audio_flat", "audio_off", "piece")}
        except (OSError, ValueError) as exc:
            raise DataError(f"prepared passages in {folder} are unreadable: {exc}") from exc
        return cls(pieces=list(meta["pieces"]), splits=dict(meta["splits"]), **arr)


def merge_pairsets(parts: list[Path], out: Path) -> dict:
    """One PairSet (and passages) from several, e.g. two preparations of one corpus with other seeds.

    Why: each preparation draws a different sample of onsets and different page and
    audio degradations from the same pieces; merged, training sees more variety.
    A piece keeps one index and must sit in the same split in every part (a piece
    in train in one part and test in another would leak). Written atomically.
    """
    import os
    import shutil

    sets = [PairSet.load(Path(p)) for p in parts]
    if not sets:
        raise DataError("nothing to merge")
    names: list[str] = []
    split_of: dict[str, str] = {}
    remaps = []
    for ps in sets:
        for split, members in ps.splits.items():
            for name in members:
                if split_of.setdefault(name, split) != split:
                    raise DataError(f"piece {name} is in split {split_of[name]} in one part and {split} in another")
        remap = np.zeros(len(ps.pieces), np.int32)
        for i, name in enumerate(ps.pieces):
            if name not in names:
                names.append(name)
            remap[i] = names.index(name)
        remaps.append(remap)
    splits: dict[str, list[str]] = {}
    for name in names:
        if name in split_of:
            splits.setdefault(split_of[name], []).append(name)
    sheet_w = {ps.sheet.shape[2] for ps in sets}
    audio_w = {ps.audio.shape[2] for ps in sets}
    if len(sheet_w) > 1 or len(audio_w) > 1:
        raise DataError(f"parts were cut with different context widths (sheet {sheet_w}, audio {audio_w})")
    piece = np.concatenate([r[ps.piece] for r, ps in zip(remaps, sets)])
    summary = {"merged_from": [str(p) for p in parts], "parts": [ps.summary for ps in sets],
               "pairs": int(len(piece)), "pieces": len(names),
               "per_split": {k: {"pieces": len(v), "pairs": int(np.isin(piece, [names.index(n) for n in v]).sum())}
                             for k, v in splits.items()}}
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    PairSet(np.concatenate([ps.sheet for ps in sets]), np.concatenate([ps.audio for ps in sets]), piece,
            np.concatenate([ps.onset for ps in sets]), names, splits, summary).save(tmp)
    with_passages = [(Path(p) / "passages", r) for p, r in zip(parts, remaps) if (Path(p) / "passages").is_dir()]
    if with_passages:
        psets = [(PassageSet.load(d), r) for d, r in with_passages]
        s_off, a_off = [0], [0]
        for ps, _ in psets:
            s_off += (ps.sheet_off[1:] + s_off[-1]).tolist()
            a_off += (ps.audio_off[1:] + a_off[-1]).tolist()
        PassageSet(np.concatenate([ps.sheet_flat for ps, _ in psets], axis=1), np.asarray(s_off, np.int64),
                   np.concatenate([ps.audio_flat for ps, _ in psets], axis=1), np.asarray(a_off, np.int64),
                   np.concatenate([r[ps.piece] for ps, r in psets]), names, splits).save(tmp / "passages")
        summary["passages"] = int(sum(len(ps) for ps, _ in psets))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return summary


def synthetic_pairs(
    n_pieces: int = 12,
    per_piece: int = 40,
    sheet_ctx: int = 10,
    audio_ctx: int = 4,
    seed: int = 0,
    splits: tuple[float, float] = (0.6, 0.2),
) -> PairSet:
    """Tiny synthetic pair set for tests and smoke runs.

    Each pair has a hidden label (one of 8 "pitches"); the sheet snippet draws a
    dark blob at a label-dependent height and the audio excerpt lights the
    matching frequency band, so a working model can learn the correspondence.
    """
    rng = np.random.default_rng(seed)
    n = n_pieces * per_piece
    labels = rng.integers(0, 8, n)
    hs, ws = SHEET_SHAPE[0], SHEET_SHAPE[1] + 2 * sheet_ctx
    ba, wa = AUDIO_SHAPE[0], AUDIO_SHAPE[1] + 2 * audio_ctx
    sheet = np.full((n, hs, ws), 255, np.uint8)
    audio = (rng.random((n, ba, wa)) * 0.1).astype(np.float32)
    for i, lab in enumerate(labels):
        y = 6 + int(lab) * 9
        x0 = ws // 2 - 8
        sheet[i, 20:60:8, :] = 40  # staff lines
        sheet[i, y : y + 7, x0 : x0 + 16] = 0
        b = 4 + int(lab) * 10
        audio[i, b : b + 4, :] += 1.0
    sheet = np.clip(sheet.astype(np.int16) - rng.integers(0, 30, sheet.shape), 0, 255).astype(np.uint8)
    piece = np.repeat(np.arange(n_pieces, dtype=np.int32), per_piece)
    onset = np.tile(np.arange(per_piece, dtype=np.float32) * 0.5, n_pieces)
    names = [f"piece{i:03d}" for i in range(n_pieces)]
    n_train = max(1, int(round(splits[0] * n_pieces)))
    n_valid = max(1, int(round(splits[1] * n_pieces)))
    split_map = {
        "train": names[:n_train],
        "valid": names[n_train : n_train + n_valid],
        "test": names[n_train + n_valid :],
    }
    return PairSet(sheet, audio.astype(np.float16), piece, onset, names, split_map,
                   {"source": "synthetic", "pairs": n, "pieces": n_pieces})


def synthetic_passages(n_pieces: int = 10, per_piece: int = 8, seed: int = 0) -> PassageSet:
    """Tiny synthetic passages: a label sequence drawn as blobs on a strip and as lit bands in audio."""
    rng = np.random.default_rng(seed)
    strips, specs, piece = [], [], []
    for p in range(n_pieces):
        for _ in range(per_piece):
            notes = rng.integers(0, 8, rng.integers(6, 14))
            strip = np.full((80, 30 + 25 * len(notes)), 255, np.uint8)
            strip[20:60:8, :] = 40
            spec = (rng.random((92, 12 * len(notes))) * 0.1).astype(np.float32)
            for k, lab in enumerate(notes):
                y = 6 + int(lab) * 9
                strip[y : y + 7, 20 + 25 * k : 34 + 25 * k] = 0
                spec[4 + int(lab) * 10 : 8 + int(lab) * 10, 12 * k : 12 * k + 12] += 1.0
            strips.append(strip)
            specs.append(spec)
            piece.append(p)
    names = [f"piece{i:03d}" for i in range(n_pieces)]
    n_train = int(0.6 * n_pieces)
    splits = {"train": names[:n_train], "valid": names[n_train : n_train + 2], "test": names[n_train + 2 :]}
    s_off = np.concatenate([[0], np.cumsum([s.shape[1] for s in strips])]).astype(np.int64)
    a_off = np.concatenate([[0], np.cumsum([s.shape[1] for s in specs])]).astype(np.int64)
    return PassageSet(np.concatenate(strips, axis=1), s_off, np.concatenate(specs, axis=1).astype(np.float16),
                      a_off, np.array(piece, np.int32), names, splits)
