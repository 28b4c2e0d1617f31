"""A scanned page stored as a JBIG2 image (/JBIG2Decode), as many scanners and OCR tools write them.

No JBIG2 encoder is installed, so the test makes the stream itself: a JBIG2 generic
region coded with MMR is a CCITT T.6 (Group 4) bitstream, which Pillow's libtiff
writer produces; the strip is wrapped in the segments of an embedded JBIG2 stream
(T.88 annex D.3: no file header, as inside a PDF).
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pymupdf
from PIL import Image
from sheets_helpers import draw_page, layout

from companion.sheets import detect_systems, open_bytes

# TIFF tags
_PHOTOMETRIC, _STRIP_OFFSETS, _ROWS_PER_STRIP, _STRIP_BYTE_COUNTS, _FILL_ORDER = 262, 273, 278, 279, 266


def g4_bytes(black: np.ndarray) -> bytes:
    """CCITT T.6 code of a bitmap (``True`` = ink), one strip, MSB first.

    libtiff codes 1 bits as the "black" runs of T.4/T.6 whatever the TIFF photometric
    tag says, and JBIG2's MMR decoding reads "black" runs as 1 = black pixels; so the
    Pillow image gets its set bits (255) where the ink is.
    """
    h, w = black.shape
    im = Image.fromarray(np.where(black, 255, 0).astype(np.uint8)).convert("1")
    buf = io.BytesIO()
    im.save(buf, "TIFF", compression="group4", strip_size=2**30)  # one strip: G4 strips restart coding
    data = buf.getvalue()
    tif = Image.open(io.BytesIO(data))
    tags = tif.tag_v2
    assert tags[_PHOTOMETRIC] == 1 and tags.get(_FILL_ORDER, 1) == 1
    assert tags.get(_ROWS_PER_STRIP, h) >= h
    (offset,), (count,) = tags[_STRIP_OFFSETS], tags[_STRIP_BYTE_COUNTS]
    return data[offset : offset + count]


def _segment(number: int, kind: int, data: bytes, page: int = 1) -> bytes:
    """Segment header (T.88 7.2): number, flags (type; 1-byte page association),
    no referred-to segments, page association, data length; then the data."""
    return struct.pack(">IBBBI", number, kind, 0, page, len(data)) + data


def jbig2_mmr(black: np.ndarray) -> bytes:
    """An embedded JBIG2 stream: page information, one immediate lossless generic
    region (MMR) covering the page, end of page."""
    h, w = black.shape
    # page information (type 48): size, resolution unknown, flags: eventually lossless,
    # default pixel 0, combination OR; no striping
    page_info = struct.pack(">IIIIBH", w, h, 0, 0, 0x01, 0)
    # region segment information field: size, x, y, combination operator OR;
    # generic region flags: MMR = 1 (no adaptive template pixels follow)
    region = struct.pack(">IIIIB", w, h, 0, 0, 0x00) + bytes([0x01]) + g4_bytes(black)
    return _segment(0, 48, page_info) + _segment(1, 39, region) + _segment(2, 49, b"")


def jbig2_pdf(black: np.ndarray, dpi: float) -> tuple[bytes, int]:
    """A one-page PDF showing the bitmap as a /JBIG2Decode image over the whole page;
    the PDF and the image's xref."""
    h, w = black.shape
    doc = pymupdf.open()
    pw, ph = w * 72 / dpi, h * 72 / dpi
    page = doc.new_page(width=pw, height=ph)
    img = doc.get_new_xref()
    doc.update_object(img, f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} "
                           "/BitsPerComponent 1 /ColorSpace /DeviceGray >>")
    doc.update_stream(img, jbig2_mmr(black), compress=False)
    doc.xref_set_key(img, "Filter", "/JBIG2Decode")  # set after the raw stream is in place
    content = doc.get_new_xref()
    doc.update_object(content, "<< >>")
    doc.update_stream(content, f"q {pw:g} 0 0 {ph:g} 0 0 cm /Im1 Do Q".encode(), compress=False)
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    doc.xref_set_key(page.xref, "Resources", f"<< /XObject << /Im1 {img} 0 R >> >>")
    data = doc.tobytes()
    doc.close()
    return data, img


def _decoded(data: bytes, xref: int) -> np.ndarray:
    """The image as MuPDF decodes it, ``True`` = black."""
    doc = pymupdf.open("pdf", data)
    assert doc.xref_get_key(xref, "Filter") == ("name", "/JBIG2Decode")
    pix = pymupdf.Pixmap(doc, xref)
    assert pix.n == 1 and not pix.alpha
    arr = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
    assert set(np.unique(arr)) <= {0, 255}
    doc.close()
    return arr == 0


def test_jbig2_mmr_stream_decodes_pixel_exact():
    black = draw_page(layout([2, 2, 2]), seed=2).image < 128
    data, xref = jbig2_pdf(black, dpi=100)
    assert np.array_equal(_decoded(data, xref), black)  # same bits, same polarity
    # at one image pixel per device pixel the rendered analysis page is the bitmap
    # (exact with MuPDF 1.28; a little slack for another scaler)
    with open_bytes(data) as doc:
        img = doc.render_analysis(0)
    assert img.shape == black.shape
    assert np.mean((img < 128) != black) < 0.001


def test_jbig2_scanned_page_systems_detected():
    # a 200-dpi scan (twice the analysis resolution): MuPDF scales it to 835 px
    systems = layout([2, 2, 2, 2], space=16.0, width=1670, height=2362, top=180.0, x0=120.0, x1=1580.0)
    black = draw_page(systems, width=1670, height=2362, seed=4, thickness=2).image < 128
    data, xref = jbig2_pdf(black, dpi=200)
    assert np.array_equal(_decoded(data, xref), black)
    with open_bytes(data, name="scan-jbig2.pdf") as doc:
        img = doc.render_analysis(0)
    assert img.dtype == np.uint8 and img.shape[1] == 835 and abs(img.shape[0] - 1181) <= 1
    found = detect_systems(img)
    assert [s.n_staves for s in found] == [2, 2, 2, 2]
    for s, e in zip(found, systems):
        for lines, top in zip(s.staff_lines, e.staff_tops):
            want = (top + np.arange(5) * e.space) / 2  # 2-px lines at rows y, y+1 -> row y/2
            assert np.abs(np.asarray(lines) - want).max() <= 1.0, (lines, want)
