"""Render the app icon (``resources/icons/companion.svg``, drawn by hand) to PNG sizes and a Windows .ico.

Why committed outputs: the desktop build and the ``.desktop`` file need PNGs,
and the build machine should not need cairo. Re-run after editing the SVG:
``.venv/bin/python packaging/make_icons.py`` (needs the ``data`` extra: cairosvg, Pillow).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

SIZES = (16, 24, 32, 48, 64, 128, 256)
ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def main() -> int:
    try:
        import cairosvg
        from PIL import Image
    except ImportError as exc:
        print(f"make_icons: {exc.name} is missing; install the data extra (pip install -e '.[data]')", file=sys.stderr)
        return 1
    svg = ICONS / "companion.svg"
    images = []
    for size in SIZES:
        png = cairosvg.svg2png(url=str(svg), output_width=size, output_height=size)
        out = ICONS / f"companion-{size}.png"
        out.write_bytes(png)
        images.append(Image.open(io.BytesIO(png)).convert("RGBA"))
        print(out)
    ico = ICONS / "companion.ico"
    images[-1].save(ico, format="ICO", sizes=[(s, s) for s in SIZES])
    print(ico)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
