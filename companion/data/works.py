"""Which music a score file holds, whatever its file is called.

The same piece reaches the corpus under several names: the Chopin first-edition
collection names a file ``OPUS[_RANGE]-EDITION-PUBLISHER[-NUMBER][-PART]``, but
some publishers number a volume's pieces differently (Op. 72: one edition counts
nocturne, funeral march and three écossaises 1-5, the separate edition "072sep"
counts only the écossaises), some names carry a range with words ("009_1et2") or
a capitalised or hyphenated part ("Secondo", "marche-funebre"), and music21 names
the same works its own way ("chopin-mazurka06-2"). Splitting by file name put
editions of one work on both sides of the train/test line, and the exclusion
list (``op70``, ``op72 no1``) missed files whose metadata had no opus. One
identity for the music (:func:`music_identity`) fixes both: splits, exclusions
and the evaluation's check that a test piece was not heard in training use it.
"""

from __future__ import annotations

import re
from pathlib import Path

_HASH_SUFFIX = re.compile(r"-[0-9a-f]{6}$")
_OPUS = re.compile(r"^(?P<opus>\d{3})(?P<sep>sep)?$")
_MUSIC21_CHOPIN = re.compile(r"^music21-chopin-[a-z]+?(?P<opus>\d+)-(?P<no>\d+)$")
_MUTOPIA_CHOPIN = re.compile(r"^chopinff-o(?P<opus>\d+)-(?P<rest>.*)$")
_NAMED_WORKS = {"gdc", "meg", "vgna", "waltzem", "polgm", "polgsharpm"}
# Op. 72 (posthumous): No. 1 nocturne, No. 2 funeral march, No. 3 three écossaises. The
# complete edition numbers all five pieces 1-5; the separate edition ("072sep") only the écossaises.
_OP72 = (("nocturne", 1), ("marche", 2), ("funebre", 2), ("ecossaise", 3))


def _tokens(name: str) -> list[str]:
    """A file stem or a corpus piece id as lower-case tokens (``_`` and ``-`` both separate)."""
    s = Path(name).name if "/" in name else name
    s = re.sub(r"\.(krn|ly|xml|mxl|musicxml|mei)$", "", s, flags=re.I).lower()
    if s.startswith("kern-"):
        s = _HASH_SUFFIX.sub("", s[len("kern-"):])
    return [t for t in re.split(r"[-_]", s) if t]


def music_identity(name: str) -> str | None:
    """``chopin-op9-no1`` for any edition's file of Chopin's Op. 9 No. 1 (file stem, path or
    corpus piece id); ``chopin-op51`` for a work without numbers; None when the name is not
    one of the Chopin first editions or music21's Chopin files (other sources: their work key)."""
    base = Path(name).name if "/" in name else name
    low = _HASH_SUFFIX.sub("", base.lower())
    m = _MUSIC21_CHOPIN.match(low)
    if m:
        return f"chopin-op{int(m['opus'])}-no{int(m['no'])}"
    m = _MUTOPIA_CHOPIN.match(low)
    if m:  # Mutopia: ChopinFF/O28/Chop-28-8, O9/chopin-nocturne-op9-n3, O64/chopin_valse_op64_no1
        opus = int(m["opus"])
        rest = [int(n) for n in re.findall(r"\d+", m["rest"]) if int(n) != opus]
        return f"chopin-op{opus}" + (f"-no{rest[0]}" if rest else "")
    tok = _tokens(name)
    if not tok:
        return None
    if tok[0] in _NAMED_WORKS:
        return f"chopin-{tok[0]}"
    m = _OPUS.match(tok[0])
    if not m:
        return None
    opus, sep = int(m["opus"]), bool(m["sep"])
    # the publisher is the first all-letter token; before it: [range...] edition; after: [number] [part words]
    pub = next((i for i, t in enumerate(tok[1:], 1) if t.isalpha()), None)
    if pub is None:
        return None
    between, after = tok[1:pub], tok[pub + 1:]
    number = next((int(t) for t in after if t.isdigit() and len(t) == 3), None)
    if number is None and len(between) == 2 and between[0].isdigit():  # "034_2-1-BH": piece 2 of Op. 34
        number = int(between[0])
    words = [t for t in after if t.isalpha()]
    if opus == 72:
        named = next((n for w, n in _OP72 for t in words if t.startswith(w)), None)
        if named is not None:
            number = named
        elif sep or (number is not None and number >= 3):
            number = 3
    return f"chopin-op{opus}" + (f"-no{number}" if number is not None else "")


def chopin_work_key(identity: str) -> str:
    """The corpus work key of a Chopin identity, in the form the first-edition names give
    (``chopin-op9-no1`` -> ``chopin-009-001``, ``chopin-op73`` -> ``chopin-073-0``), so the
    pieces whose names were read right keep their key and their split."""
    m = re.match(r"^chopin-op(\d+)(?:-no(\d+))?$", identity)
    if m:
        return f"chopin-{int(m[1]):03d}-" + (f"{int(m[2]):03d}" if m[2] else "0")
    return f"{identity}-0"


def same_music(a: str, b: str) -> bool:
    """Two identities name the same music, or one names a whole opus the other is part of."""
    return a == b or a.startswith(b + "-") or b.startswith(a + "-")


def identity_words(name: str) -> list[str]:
    """The identity as the words an exclusion pattern is written in (``op70``, ``no3``)."""
    ident = music_identity(name)
    return ident.split("-") if ident else []


def trained_on(ckpt_data: object) -> list[str]:
    """Every piece id listed as ``trained_on`` in a checkpoint's data summary (an ensemble's
    members' summaries included): the pieces the model's weights were fitted to."""
    out: list[str] = []
    if isinstance(ckpt_data, dict):
        for k, v in ckpt_data.items():
            if k == "trained_on" and isinstance(v, list):
                out += [str(x) for x in v]
            else:
                out += trained_on(v)
    elif isinstance(ckpt_data, list):
        for v in ckpt_data:
            out += trained_on(v)
    return out


class HeardMusic:
    """The music a model was trained on, to tell whether an evaluation piece is new to it.

    A piece counts as heard when its identity (:func:`music_identity`, else its own
    name) is the same music as a training piece's, in any edition or engraving.
    """

    def __init__(self, training_pieces: list[str]) -> None:
        self.pieces = sorted(set(training_pieces))
        self._ids = {music_identity(p) or p for p in self.pieces}

    def __len__(self) -> int:
        return len(self.pieces)

    def heard(self, name: str) -> bool:
        ident = music_identity(name) or name
        return any(same_music(ident, t) for t in self._ids)
