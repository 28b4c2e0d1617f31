"""Pages the sheet tests make themselves: synthetic staves (numpy or vector PDF) and verovio scores."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pymupdf


@dataclass
class SynthSystem:
    staff_tops: list[float]  # y of each staff's top line (analysis pixels)
    space: float
    x0: float
    x1: float

    @property
    def top(self) -> float:
        return self.staff_tops[0]

    @property
    def bottom(self) -> float:
        return self.staff_tops[-1] + 4 * self.space


@dataclass
class SynthPage:
    image: np.ndarray
    systems: list[SynthSystem] = field(default_factory=list)


def layout(staves_per_system: list[int], space: float = 8.0, width: int = 835, height: int = 1181,
           top: float = 90.0, staff_gap: float = 7.0, system_gap: float = 11.0,
           x0: float = 60.0, x1: float = 790.0) -> list[SynthSystem]:
    """Systems stacked from ``top`` down; gaps in staff spaces."""
    systems, y = [], top
    for n in staves_per_system:
        tops = []
        for _ in range(n):
            tops.append(y)
            y += 4 * space + staff_gap * space
        y -= staff_gap * space
        systems.append(SynthSystem(tops, space, x0, x1))
        y += system_gap * space
    assert y < height, "layout does not fit the page"
    return systems


def draw_page(systems: list[SynthSystem], width: int = 835, height: int = 1181, seed: int = 0,
              thickness: int = 1, notes: bool = True, title: bool = True) -> SynthPage:
    """A greyscale page: staves, a systemic barline and bar lines joining each system's
    staves, note heads with stems and ledger lines, some text-like blobs."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width), 255, np.uint8)
    if title:  # a title: blocky "letters"
        for i in range(12):
            x = 250 + i * 28
            img[30:52, x : x + 18] = 0
            img[36:46, x + 4 : x + 14] = 255
    for s in systems:
        sp = s.space
        xa, xb = int(s.x0), int(s.x1)
        for t in s.staff_tops:
            for k in range(5):
                y = int(round(t + k * sp))
                img[y : y + thickness, xa:xb] = 0
        ya, yb = int(round(s.top)), int(round(s.bottom)) + thickness
        img[ya:yb, xa : xa + 2] = 0  # systemic barline
        for bx in np.linspace(xa, xb - 2, 5)[1:]:
            img[ya:yb, int(bx) : int(bx) + 2] = 0  # bar lines through all staves
        if notes:
            for t in s.staff_tops:
                for x in range(xa + 40, xb - 20, int(3.2 * sp)):
                    step = int(rng.integers(-4, 13))  # half spaces from the top line (ledger lines too)
                    cy = t + step * sp / 2
                    r = int(sp) + 1
                    ya, xa0 = max(0, int(cy) - r), max(0, x - r)
                    yy, xx = np.ogrid[ya : int(cy) + r + 1, xa0 : x + r + 1]
                    head = ((xx - x) / (0.65 * sp)) ** 2 + ((yy - cy) / (0.45 * sp)) ** 2 <= 1
                    img[ya : ya + head.shape[0], xa0 : xa0 + head.shape[1]][head] = 0
                    img[int(cy - 3.2 * sp) : int(cy), int(x + 0.55 * sp) : int(x + 0.55 * sp) + 1] = 0
                    if step < 0 or step > 8:
                        for ledger in range(-2, step - 1, -2) if step < 0 else range(10, step + 1, 2):
                            ly = int(round(t + ledger * sp / 2))
                            img[ly : ly + thickness, int(x - sp) : int(x + sp)] = 0
            # a dynamic mark under the system
            img[int(s.bottom + 2 * sp) : int(s.bottom + 3 * sp), xa + 100 : xa + 120] = 0
    return SynthPage(img, systems)


def rotate(img: np.ndarray, degrees: float) -> np.ndarray:
    from scipy import ndimage

    out = ndimage.rotate(img.astype(np.float32), degrees, reshape=False, order=1, cval=255.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def image_pdf(pages: list[np.ndarray], bilevel: bool = False, rotate_page: int = 0) -> bytes:
    """A PDF holding each greyscale page as an image (PNG, or 1-bit when ``bilevel``)."""
    doc = pymupdf.open()
    for img in pages:
        h, w = img.shape
        if bilevel:
            img = np.where(img < 128, 0, 255).astype(np.uint8)
        pix = pymupdf.Pixmap(pymupdf.csGRAY, w, h, np.ascontiguousarray(img).tobytes(), False)
        page = doc.new_page(width=w * 72 / 100, height=h * 72 / 100)
        page.insert_image(page.rect, pixmap=pix)
        if rotate_page:
            page.set_rotation(rotate_page)
    data = doc.tobytes()
    doc.close()
    return data


def vector_pdf(systems: list[SynthSystem], width: int = 835, height: int = 1181) -> bytes:
    """An engraved (vector) page with the same staves, drawn with PDF paths; 1 pt = 1 px."""
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    page.insert_text((300, 50), "Sonatina", fontsize=24)
    for s in systems:
        for t in s.staff_tops:
            for k in range(5):
                y = t + k * s.space + 0.5
                page.draw_line((s.x0, y), (s.x1, y), width=1.0)
        for bx in np.linspace(s.x0, s.x1 - 1, 5):
            page.draw_line((bx + 0.5, s.top), (bx + 0.5, s.bottom + 1), width=1.5)
        for t in s.staff_tops:
            for i, x in enumerate(range(int(s.x0) + 50, int(s.x1) - 20, 30)):
                cy = t + (i % 9) * s.space / 2
                page.draw_oval(pymupdf.Rect(x - 5, cy - 3.5, x + 5, cy + 3.5), color=(0, 0, 0), fill=(0, 0, 0))
    data = doc.tobytes()
    doc.close()
    return data


KERN_HEADER = "**kern\t**kern\n*staff2\t*staff1\n*clefF4\t*clefG2\n*k[]\t*k[]\n*M4/4\t*M4/4\n"


def kern_piano(measures: int = 24, seed: int = 1) -> str:
    """A small two-staff piano piece in Humdrum **kern."""
    rng = np.random.default_rng(seed)
    lo = ["C", "D", "E", "F", "G", "A", "B", "c"]
    hi = ["c", "d", "e", "f", "g", "a", "b", "cc", "dd"]
    lines = [KERN_HEADER.rstrip("\n")]
    for m in range(1, measures + 1):
        lines.append(f"={m}\t={m}")
        for _ in range(4):
            lines.append(f"4{lo[rng.integers(len(lo))]}\t8{hi[rng.integers(len(hi))]}")
            lines.append(f".\t8{hi[rng.integers(len(hi))]}")
    lines.append("==\t==")
    lines.append("*-\t*-")
    return "\n".join(lines) + "\n"


def _inline_uses(svg: str) -> str:
    """Replace verovio's glyph ``<use>`` references by the glyph paths (MuPDF mis-scales them)."""
    import re

    defs = dict(re.findall(r'<g id="([^"]+)">\s*(<path[^>]*/>)\s*</g>', svg))

    def repl(m: "re.Match[str]") -> str:
        body = defs.get(m.group(1))
        if body is None:
            return ""
        return f'<g transform="{m.group(2)}">{body}</g>'

    svg = re.sub(r'<use xlink:href="#([^"]+)" transform="([^"]*)"\s*/>', repl, svg)
    svg = svg.replace("currentColor", "black")  # MuPDF's SVG reader does not resolve it
    svg = svg.replace('stroke-width="', 'stroke="black" stroke-width="')
    # the nested <svg viewBox> that scales verovio's units to the page becomes a plain scale
    outer = re.search(r'<svg width="([\d.]+)px"', svg)
    inner = re.search(r'<svg class="definition-scale"[^>]*viewBox="0 0 ([\d.]+) [\d.]+">', svg)
    if outer and inner:
        k = float(outer.group(1)) / float(inner.group(1))
        svg = svg[: inner.start()] + f'<g transform="scale({k})">' + svg[inner.end():]
        last = svg.rfind("</svg>")
        prev = svg.rfind("</svg>", 0, last)
        svg = svg[:prev] + "</g>" + svg[prev + 6 :]
    return svg


def verovio_pdf(kern: str, scale: int = 40) -> tuple[bytes, list[list[int]]]:
    """Engrave ``kern`` with verovio; the PDF and, per page, each system's number of staves."""
    import re

    import verovio

    tk = verovio.toolkit()
    tk.setOptions({"pageWidth": 2100, "pageHeight": 2970, "scale": scale, "adjustPageHeight": False,
                   "inputFrom": "humdrum"})
    assert tk.loadData(kern)
    out = pymupdf.open()
    layout_: list[list[int]] = []
    for p in range(1, tk.getPageCount() + 1):
        svg = tk.renderToSVG(p)
        systems = svg.split('class="system"')[1:]
        # staves of a system = staff groups in its first measure
        layout_.append([len(re.findall(r'<g[^>]*class="staff"', s.split('class="measure"')[1]))
                        for s in systems])
        src = pymupdf.open("svg", _inline_uses(svg).encode("utf-8"))
        pdf = pymupdf.open("pdf", src.convert_to_pdf())
        out.insert_pdf(pdf)
    data = out.tobytes()
    out.close()
    return data, layout_
