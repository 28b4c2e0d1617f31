"""A 3-piece corpus built once per session from the tiny scores in score_sources."""

from __future__ import annotations

import pytest

from score_sources import tools_missing, write_sources


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory):
    """Build kern + ABC (verovio) + LilyPond, plus a Joplin piece that must be excluded."""
    why = tools_missing()
    if why:
        pytest.skip(why)
    from companion.data.build import BuildOptions, build
    from companion.data.sources import find_sources

    root = tmp_path_factory.mktemp("corpus-src")
    src = write_sources(root / "scores", joplin=True)
    out = root / "corpus"
    opts = BuildOptions(out=out, soundfonts=("FluidR3_GM.sf2", "TimGM6mb.sf2"),
                        held_out_soundfont="TimGM6mb.sf2", page_width_px=800)
    summary = build(find_sources([src]), opts, workers=1, progress=False)
    return {"out": out, "src": src, "opts": opts, "summary": summary}
