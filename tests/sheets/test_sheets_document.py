"""Opening and rendering PDFs: scans, vector pages, rotation, odd sizes, and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymupdf
import pytest
from sheets_helpers import draw_page, image_pdf, layout, vector_pdf

from companion.config import SheetConfig
from companion.errors import SheetError
from companion.sheets import detect_page, detect_systems, open_bytes, open_document


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_scanned_greyscale_and_bilevel_pages(tmp_path):
    systems = layout([2, 2, 2, 2])
    page = draw_page(systems, seed=4).image
    for bilevel in (False, True):
        doc = open_document(_write(tmp_path, f"s{bilevel}.pdf", image_pdf([page], bilevel=bilevel)))
        img = doc.render_analysis(0)
        assert img.dtype == np.uint8 and img.ndim == 2 and img.shape[1] == 835
        assert abs(img.shape[0] - 1181) <= 1
        assert [s.n_staves for s in detect_systems(img)] == [2, 2, 2, 2]
        doc.close()


def test_vector_pdf_and_metadata(tmp_path):
    systems = layout([2, 2, 2], space=8.0)
    data = vector_pdf(systems)
    src = pymupdf.open("pdf", data)
    src.set_metadata({"title": "Sonatina", "author": "Anon"})
    path = _write(tmp_path, "v.pdf", src.tobytes())
    with open_document(path) as doc:
        assert doc.n_pages == 1 and doc.title == "Sonatina" and doc.author == "Anon"
        found = detect_systems(doc.render_analysis(0))
    assert [s.n_staves for s in found] == [2, 2, 2]
    for s, e in zip(found, systems):
        assert abs(s.staff_lines[0][0] - e.top) < 2


def test_rotated_and_landscape_pages_render_upright(tmp_path):
    img = draw_page(layout([2, 2, 2]), seed=1).image
    # the page is stored sideways and shown upright through /Rotate
    sideways = np.ascontiguousarray(np.rot90(img, 1))
    doc = open_bytes(image_pdf([sideways], rotate_page=90))
    up = doc.render_analysis(0)
    assert up.shape[1] == 835 and up.shape[0] > up.shape[1]
    assert [s.n_staves for s in detect_systems(up)] == [2, 2, 2]
    # a landscape page: still 835 px wide, shorter than wide
    wide = np.full((600, 1400), 255, np.uint8)
    land = open_bytes(image_pdf([wide])).render_analysis(0)
    assert land.shape[1] == 835 and land.shape[0] < 835


def test_very_large_page_renders_at_analysis_width():
    doc = pymupdf.open()
    page = doc.new_page(width=14400, height=14400)  # the largest page PDF allows (200 inches)
    for i in range(5):
        y = 3000 + i * 120
        page.draw_line((1000, y), (13000, y), width=12)
    d = open_bytes(doc.tobytes())
    img = d.render_analysis(0)
    assert img.shape == (835, 835)
    disp = d.render_display(0, dpi=72)  # would be 14400 px square; capped
    assert disp.shape[0] * disp.shape[1] <= 40_000_000


def test_display_rendering_is_cached():
    d = open_bytes(image_pdf([draw_page(layout([2])).image] * 3))
    a = d.render_display(1, dpi=50)
    b = d.render_display(1, dpi=50)
    assert a is b and not a.flags.writeable
    c = d.render_display(1, dpi=100)
    assert c.shape[1] == pytest.approx(2 * a.shape[1], abs=2)
    for p in range(3):
        for dpi in (40, 41, 42):
            d.render_display(p, dpi=dpi)
    assert d.render_display(1, dpi=50) is not a  # evicted, re-rendered


def test_encrypted_pdf_gives_clear_message(tmp_path):
    src = pymupdf.open("pdf", image_pdf([draw_page(layout([2])).image]))
    data = src.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="owner")
    with pytest.raises(SheetError, match="password"):
        open_document(_write(tmp_path, "locked.pdf", data))
    # only an owner password (no user password): opens normally
    data2 = src.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner",
                        permissions=pymupdf.PDF_PERM_PRINT)
    with open_document(_write(tmp_path, "owner.pdf", data2)) as doc:
        assert doc.n_pages == 1


def _zero_page_pdf() -> bytes:
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 3\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 3 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return out


def test_bad_files_raise_sheet_errors(tmp_path):
    with pytest.raises(SheetError, match="no such file"):
        open_document(tmp_path / "missing.pdf")
    with pytest.raises(SheetError, match="folder"):
        open_document(tmp_path)
    with pytest.raises(SheetError, match="no pages"):
        open_document(_write(tmp_path, "zero.pdf", _zero_page_pdf()))
    with pytest.raises(SheetError):
        open_document(_write(tmp_path, "text.pdf", b"this is not a PDF at all\n" * 20))
    with pytest.raises(SheetError):
        open_document(_write(tmp_path, "empty.pdf", b""))


@pytest.mark.parametrize("cut", [0.2, 0.5, 0.9])
def test_truncated_pdf_never_crashes(tmp_path, cut):
    data = image_pdf([draw_page(layout([2, 2]), seed=i).image for i in range(3)])
    path = _write(tmp_path, "cut.pdf", data[: int(len(data) * cut)])
    try:
        doc = open_document(path)
    except SheetError:
        return
    for p in range(doc.n_pages):
        try:
            img = doc.render_analysis(p)
            systems = detect_page(img, SheetConfig())
        except SheetError:
            continue
        assert isinstance(systems, list)


def test_text_only_pdf_has_no_systems():
    doc = pymupdf.open()
    page = doc.new_page()
    y = 80
    for i in range(30):
        page.insert_text((60, y), f"Preface, paragraph {i}: the pieces in this volume were engraved ...",
                         fontsize=11)
        y += 22
    d = open_bytes(doc.tobytes())
    assert detect_systems(d.render_analysis(0)) == []


def test_many_pages_open_and_render_quickly():
    """500 pages: opening is lazy; the first and last pages render like any other."""
    doc = pymupdf.open()
    for i in range(500):
        p = doc.new_page(width=595, height=842)
        if i % 50 == 0:
            p.insert_text((72, 72), f"page {i + 1}")
    d = open_bytes(doc.tobytes())
    assert d.n_pages == 500
    for p in (0, 250, 499):
        img = d.render_analysis(p)
        assert img.shape[1] == 835 and detect_systems(img) == []
    with pytest.raises(SheetError, match="does not exist"):
        d.render_analysis(500)


def test_unusable_page_shape_is_refused():
    doc = pymupdf.open()
    doc.new_page(width=100, height=14000)
    d = open_bytes(doc.tobytes())
    with pytest.raises(SheetError, match="shape"):
        d.render_analysis(0)
