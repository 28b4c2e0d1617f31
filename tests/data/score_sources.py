"""Tiny symbolic scores (kern, ABC, LilyPond) that the data tests write at test time.

A module with its own name, not conftest: several test folders have a conftest.py and
`from conftest import ...` picks whichever was imported first."""

from __future__ import annotations

import shutil
from pathlib import Path


KERN = """!!!COM: Tester, Tom
!!!OTL: Kern test piece
**kern\t**kern
*clefF4\t*clefG2
*M4/4\t*M4/4
*MM100\t*MM100
=1\t=1
4C\t4c
4E\t4e
4G\t4g
4c\t4cc
=2\t=2
4A\t4a
4F\t4f
4D\t4d
4B\t4b
=3\t=3
4C\t4cc
4G\t4g
4E\t4e
4C\t4c
=4\t=4
2G\t2g
2C\t2c
==\t==
*-\t*-
"""

ABC = """X:1
T:ABC test tune
C:Tester
M:4/4
L:1/8
Q:1/4=110
K:G
GABc dedB | dedB dedB | c2ec B2dB | c2A2 A2BA |
GABc dedB | dedB dedB | c2ec B2dB | A2F2 G4 |]
"""

JOPLIN_ABC = """X:1
T:Maple Leaf Rag
C:Scott Joplin
M:2/4
L:1/16
K:Ab
A,CEA cAEC | A,CEA cAEC | EGBe gecA | A8 |]
"""

# The music lives in an included file one folder up, as in Mutopia collections.
LILYPOND_MUSIC = r"""\version "2.18.2"
upper = \relative c'' { \tempo 4 = 96 c4 d e f | g a b c | c b a g | f e d c~ | c1 \bar "|." }
lower = \relative c { \clef bass c2 g | c2 g | a2 e | f2 g | c,1 }
"""

LILYPOND = r"""\version "2.18.2"
\include "../common/music.ily"
\header { title = "LilyPond test piece" composer = "Tester" }
\score {
  \new PianoStaff << \new Staff \upper \new Staff \lower >>
  \layout { }
}
"""


def write_sources(folder: Path, joplin: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kern-test.krn").write_text(KERN, encoding="utf-8")
    (folder / "abc-test.abc").write_text(ABC, encoding="utf-8")
    ly = folder / "lily" / "lily-test"
    ly.mkdir(parents=True, exist_ok=True)
    (ly / "lily-test.ly").write_text(LILYPOND, encoding="utf-8")
    (folder / "lily" / "common").mkdir(exist_ok=True)
    (folder / "lily" / "common" / "music.ily").write_text(LILYPOND_MUSIC, encoding="utf-8")
    if joplin:
        (folder / "maple-leaf.abc").write_text(JOPLIN_ABC, encoding="utf-8")
    return folder


def tools_missing() -> str | None:
    for exe in ("lilypond", "convert-ly"):
        if shutil.which(exe) is None:
            return f"{exe} not installed"
    try:
        import verovio  # noqa: F401
    except ImportError:
        return "verovio not installed"
    from companion.data.synth import available_soundfonts

    if len(available_soundfonts(("FluidR3_GM.sf2", "TimGM6mb.sf2"))) < 2:
        return "FluidR3_GM / TimGM6mb soundfonts not installed"
    return None

