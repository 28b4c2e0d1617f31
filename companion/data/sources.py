"""Finding symbolic sources and describing them (title, composer, work).

Why: splits must be by *work*, not by file (the Chopin collection holds several
first editions of the same piece), and the reserved evaluation pieces and
user-given exclusion lists must be matched the same way everywhere.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from companion.data.works import chopin_work_key, identity_words, music_identity
from companion.errors import DataError

VEROVIO_SUFFIXES = {".krn": "humdrum", ".mxl": "musicxml", ".musicxml": "musicxml",
                    ".xml": "musicxml", ".mei": "mei", ".abc": "abc"}
LILYPOND_SUFFIXES = {".ly": "lilypond"}

# Parts of chamber works in the Chopin collection that are not the keyboard part.
NON_KEYBOARD_PARTS = {"violino", "violoncello", "violin", "cello", "viola", "flauto", "voce", "voice"}

# music21 corpus files that are solo keyboard works (checked by hand: part names
# are "Piano" or a single keyboard staff pair). Reserved pieces (Joplin, Mozart
# K.545) are deliberately absent; see docs/corpus-format.md.
MUSIC21_KEYBOARD = (
    "bach/bwv846.mxl",
    "chopin/mazurka06-2.krn",
    "schoenberg/opus19/movement2.mxl",
    "schoenberg/opus19/movement6.mxl",
    "schumann_clara/polonaise_op1n1.mxl",
    "schumann_clara/polonaise_op1n2.mxl",
    "schumann_clara/polonaise_op1n3.mxl",
    "schumann_clara/polonaise_op1n4.mxl",
)

# Reserved evaluation pieces in the music21 corpus: listed so that training builds
# report them as excluded and `--evaluation` builds can render them.
MUSIC21_RESERVED = ("joplin/maple_leaf_rag.mxl", "mozart/k545/movement1_exposition.mxl")

# Opus / Köchel numbers of the reserved evaluation works.
BEETHOVEN_SONATA_OPUS = {2, 7, 10, 13, 14, 22, 26, 27, 28, 31, 49, 53, 54, 57, 78, 79, 81, 90,
                         101, 106, 109, 110, 111}
MOZART_SONATA_K = {279, 280, 281, 282, 283, 284, 309, 310, 311, 330, 331, 332, 333, 457, 475,
                   494, 533, 545, 570, 576}


@dataclass(frozen=True)
class Source:
    """One symbolic score file and what we know about it."""

    path: Path
    kind: str  # humdrum | musicxml | mei | abc | lilypond
    piece_id: str  # stable, filesystem-safe, unique within a build
    work: str  # grouping key for splits (editions of one work share it)
    composer: str = ""
    title: str = ""
    opus: str = ""
    extra_files: tuple[Path, ...] = field(default=())  # included files (hashing)

    @property
    def engraver(self) -> str:
        return "lilypond" if self.kind == "lilypond" else "verovio"

    def descriptor(self) -> str:
        """Normalised text used to match exclusion lists and reserved pieces (with the music's
        identity as words, ``chopin op70 no3``, for files whose metadata names no opus)."""
        return normalise(" ".join([self.composer, self.title, self.opus, self.work,
                                   str(self.path.with_suffix("")), *identity_words(self.path.stem)]))

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for p in (self.path, *self.extra_files):
            try:
                h.update(p.read_bytes())
            except OSError:
                h.update(str(p).encode())
        return h.hexdigest()[:16]


def normalise(text: str) -> str:
    """Lower case, no accents, ``op. 10`` -> ``op10``, ``no. 2`` -> ``no2``, single spaces."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[_/\\\-.,;:()\[\]]+", " ", text)
    text = re.sub(r"\b0+(\d)", r"\1", text)
    text = re.sub(r"\b(opus|op|no|nr|kv|k|bwv|d|hob|woo)\s*(?=\d)",
                  lambda m: {"opus": "op", "kv": "k", "nr": "no"}.get(m.group(1), m.group(1)), text)
    return " ".join(text.split())


def slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:120] or "piece"


# --- metadata ----------------------------------------------------------------

def _kern_refs(text: str) -> dict[str, str]:
    refs: dict[str, str] = {}
    for line in text.splitlines()[:400]:
        m = re.match(r"^!!!([A-Za-z0-9@]+):\s*(.*)$", line)
        if m and m.group(1) not in refs:
            refs[m.group(1)] = m.group(2).strip()
    return refs


_CHOPIN_NAME = re.compile(
    r"^(?P<opus>[0-9A-Za-z]+?)(?:_[0-9\-]+)?-(?P<edition>[0-9]+[a-z]*)-(?P<pub>[A-Za-z]+)"
    r"(?:-(?P<mvt>\d{3}))?(?:-(?P<part>[a-z]+))?$")


def _lily_header(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in ("title", "composer", "opus", "mutopiatitle", "mutopiacomposer", "mutopiaopus", "piece"):
        m = re.search(rf'\b{key}\s*=\s*"([^"]*)"', text)
        if m:
            out[key] = m.group(1)
    return out


def describe(path: Path, root: Path | None = None) -> Source | None:
    """A :class:`Source` for ``path``, or None when it is not a usable score file."""
    suffix = path.suffix.lower()
    kind = VEROVIO_SUFFIXES.get(suffix) or LILYPOND_SUFFIXES.get(suffix)
    if kind is None:
        return None
    rel = path.relative_to(root) if root and path.is_relative_to(root) else Path(path.name)
    stem = path.stem
    composer = title = opus = ""
    work = slug(str(rel.with_suffix("")))
    try:
        head = path.read_bytes()[:200_000].decode("utf-8", "replace") if suffix != ".mxl" else ""
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if kind == "humdrum":
        refs = _kern_refs(head)
        composer, title = refs.get("COM", ""), refs.get("OTL", "")
        opus = " ".join(v for v in (refs.get("OPS", ""), refs.get("ONM", "")) if v)
        m = _CHOPIN_NAME.match(stem)
        if m:
            if m.group("part") in NON_KEYBOARD_PARTS:
                return None
            work = slug(f"chopin-{m.group('opus')}-{m.group('mvt') or '0'}")
            if refs.get("ONM") and not m.group("mvt"):
                work = slug(f"chopin-{m.group('opus')}-{refs['ONM']}")
        if (m is None or m.group("opus").startswith("072")) and music_identity(stem):
            # names the pattern above misses ("009_1et2-...", "073-1x-Sam-Secondo", "...-marche-funebre")
            # and Op. 72, whose editions number its pieces differently: the work from the music's identity
            # (companion.data.works), so every edition of a piece lands in one split
            if any(t in NON_KEYBOARD_PARTS for t in re.split(r"[-_]", stem.lower())):
                return None
            work = chopin_work_key(str(music_identity(stem)))
    elif kind == "lilypond":
        hdr = _lily_header(head)
        composer = hdr.get("composer") or hdr.get("mutopiacomposer", "")
        title = hdr.get("title") or hdr.get("mutopiatitle", "")
        opus = hdr.get("opus") or hdr.get("mutopiaopus", "")
        if len(rel.parts) > 1:  # Mutopia: Composer (e.g. "ChopinFF") / Opus / piece / ...
            composer = f"{re.sub(r'[A-Z]+$', '', rel.parts[0])} {composer}".strip()
        # Mutopia layout: Composer/Opus/piece[/piece-lys]/file.ly -- one work per piece folder.
        parent = rel.parent.parent if rel.parent.name.endswith("-lys") else rel.parent
        work = slug(str(parent)) if len(rel.parts) > 1 else slug(stem)
    elif kind in ("musicxml", "mei"):
        m = re.search(r"<work-title>([^<]*)", head) or re.search(r"<title[^>]*>([^<]*)", head)
        title = m.group(1).strip() if m else ""
        m = re.search(r'<creator type="composer">([^<]*)', head) or re.search(r"<persName[^>]*>([^<]*)", head)
        composer = m.group(1).strip() if m else ""
        m = re.search(r"<work-number>([^<]*)", head)
        opus = m.group(1).strip() if m else ""
    elif kind == "abc":
        m = re.search(r"^T:\s*(.*)$", head, re.M)
        title = m.group(1).strip() if m else ""
        m = re.search(r"^C:\s*(.*)$", head, re.M)
        composer = m.group(1).strip() if m else ""
    piece_id = slug(str(rel.with_suffix(""))) + "-" + hashlib.sha1(str(rel).encode()).hexdigest()[:6]
    return Source(path=path, kind=kind, piece_id=piece_id, work=work, composer=composer,
                  title=title, opus=opus)


def _lilypond_entry_points(folder: Path) -> list[Path]:
    """The .ly files that make a score: those with a \\score or a top-level music
    block, skipping files that another file in the same folder \\includes."""
    files = sorted(folder.glob("*.ly"))
    included: set[str] = set()
    for f in files:
        try:
            text = f.read_text("utf-8", "replace")
        except OSError:
            continue
        included.update(Path(m).name for m in re.findall(r'\\include\s+"([^"]+)"', text))
    out = []
    names = {f.stem for f in files}
    for f in files:
        if f.name in included:
            continue
        # Mutopia ships the same piece for A4 and US letter paper: keep A4.
        m = re.match(r"^(.*)-(let|letter)$", f.stem)
        if m and any(n in names for n in (m.group(1) + "-a4", m.group(1))):
            continue
        # MIDI-only variants, test files and shared include folders are not scores.
        if re.search(r"(-midi|-mid)$", f.stem) or f.stem.startswith("test") or \
                f.parent.name.lower() in ("common", "include", "includes", "lib"):
            continue
        text = f.read_text("utf-8", "replace")
        if "\\score" in text or "\\book" in text:
            out.append(f)
    return out


def find_sources(paths: list[Path]) -> list[Source]:
    """All usable score files under the given files/folders, in a stable order."""
    found: list[Source] = []
    seen: set[Path] = set()
    for given in paths:
        given = given.expanduser()
        if given.name == "music21":
            found.extend(music21_sources())
            continue
        if not given.exists():
            raise DataError(f"source not found: {given}")
        if given.is_file():
            src = describe(given, given.parent)
            if src:
                found.append(src)
            continue
        ly_dirs: set[Path] = set()
        for p in sorted(given.rglob("*")):
            if not p.is_file() or p in seen:
                continue
            suffix = p.suffix.lower()
            if suffix == ".ly":
                ly_dirs.add(p.parent)
            elif suffix in VEROVIO_SUFFIXES:
                src = describe(p, given)
                if src:
                    found.append(src)
                    seen.add(p)
        for d in sorted(ly_dirs):
            entries = _lilypond_entry_points(d)
            for p in entries:
                src = describe(p, given)
                if src is None:
                    continue
                extras = tuple(sorted(q for q in d.glob("*.ly") if q != p))
                found.append(Source(path=src.path, kind=src.kind, piece_id=src.piece_id,
                                    work=src.work, composer=src.composer, title=src.title,
                                    opus=src.opus, extra_files=extras))
    uniq: dict[str, Source] = {}
    for s in found:
        uniq.setdefault(s.piece_id, s)
    return list(uniq.values())


def music21_sources() -> list[Source]:
    """The music21 corpus's solo keyboard pieces (see :data:`MUSIC21_KEYBOARD`)."""
    try:
        import music21  # noqa: F401
    except ImportError as exc:
        raise DataError("the music21 corpus needs `pip install music21`") from exc
    root = Path(music21.__path__[0]) / "corpus"
    out = []
    for rel in MUSIC21_KEYBOARD + MUSIC21_RESERVED:
        p = root / rel
        if p.exists():
            src = describe(p, root)
            if src:
                out.append(Source(path=p, kind=src.kind, piece_id="music21-" + src.piece_id,
                                  work="music21-" + src.work, composer=src.composer or rel.split("/")[0],
                                  title=src.title or Path(rel).stem, opus=src.opus))
    return out


# --- reserved pieces and exclusion lists --------------------------------------

def reserved_reason(src: Source) -> str | None:
    """Why ``src`` is a reserved evaluation piece (Beethoven/Mozart sonatas, Joplin), or None."""
    d = src.descriptor()
    words = set(d.split())
    if "joplin" in words:
        return "Joplin (reserved for evaluation)"
    is_beethoven = "beethoven" in words or "beethovenlv" in words
    is_mozart = "mozart" in words or "mozartwa" in words
    if not (is_beethoven or is_mozart):
        return None
    if "sonata" in d or "sonate" in d or "sonatina" in d:
        return f"{'Beethoven' if is_beethoven else 'Mozart'} sonata (reserved for evaluation)"
    numbers = {int(n) for n in re.findall(r"\b(?:op|k)(\d+)\b", d)}
    if is_beethoven and numbers & BEETHOVEN_SONATA_OPUS:
        return "Beethoven sonata opus (reserved for evaluation)"
    if is_mozart and numbers & MOZART_SONATA_K:
        return "Mozart sonata K. number (reserved for evaluation)"
    return None


def read_exclude_list(path: Path) -> list[list[str]]:
    """Patterns from an exclusion file: one per line, ``#`` comments; each line is a
    set of words that must all occur in a piece's normalised descriptor."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read exclusion list {path}: {exc}") from exc
    pats = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            pats.append(normalise(line).split())
    return pats


def excluded_by(src: Source, patterns: list[list[str]]) -> str | None:
    words = set(src.descriptor().split())
    for pat in patterns:
        if all(w in words for w in pat):
            return "excluded by list: " + " ".join(pat)
    return None
