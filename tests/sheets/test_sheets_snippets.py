"""System strips, snippets and passage snippets cut from detected systems."""

from __future__ import annotations

import numpy as np
import pytest
from sheets_helpers import draw_page, layout, rotate

from companion.config import SheetConfig
from companion.sheets import (
    PX_PER_SECOND,
    cut_passage_snippets,
    cut_snippets,
    detect_systems,
    passage_strip,
    snippets_for,
    strip_geometry,
    system_strip,
)


def _page(staves=(2, 2, 2), degrees: float = 0.0, space: float = 8.0):
    systems = layout(list(staves), space=space, top=150)
    img = draw_page(systems, seed=7, notes=False).image
    if degrees:
        img = rotate(img, degrees)
    return img, systems


def _line_rows(strip: np.ndarray) -> np.ndarray:
    """Rows of the strip that are dark across most of its width (staff lines)."""
    return np.flatnonzero((strip < 160).mean(axis=1) > 0.7)


@pytest.mark.parametrize("degrees", [0.0, 2.5])
def test_strip_is_fixed_height_and_holds_the_staves(degrees):
    img, systems = _page(degrees=degrees)
    found = detect_systems(img)
    assert len(found) == 3
    for s in found:
        strip = system_strip(img, s)
        assert strip.shape[0] == 160 and strip.dtype == np.uint8
        g = strip_geometry(s)
        assert strip.shape[1] == g.width
        # staves fill the middle: extent maps to 160 / 1.6 = 100 px, with 30 px margins
        rows = _line_rows(strip)
        assert len(rows) >= 8  # ten lines, some may merge into one row pair
        assert 24 <= rows.min() <= 36 and 124 <= rows.max() <= 136
        # deskewed: the same rows are dark at the left and the right end
        left = (255.0 - strip[:, 10:60]).mean(axis=1)
        right = (255.0 - strip[:, -60:-10]).mean(axis=1)
        lags = list(range(-5, 6))
        corr = [np.dot(left[5:-5], np.roll(right, lag)[5:-5]) for lag in lags]
        assert abs(lags[int(np.argmax(corr))]) <= 1


def test_strip_scale_does_not_depend_on_the_page_scale():
    small, _ = _page(space=6.0)
    big, _ = _page(space=10.0, staves=(2, 2))
    a = system_strip(small, detect_systems(small)[0])
    b = system_strip(big, detect_systems(big)[0])
    ra, rb = _line_rows(a), _line_rows(b)
    assert abs(ra.min() - rb.min()) <= 3 and abs(ra.max() - rb.max()) <= 3


def test_geometry_maps_strip_x_back_to_the_page():
    img, systems = _page()
    s = detect_systems(img)[0]
    g = strip_geometry(s)
    assert g.to_page_x(0) == pytest.approx(s.staff_box[0])
    assert g.to_page_x(g.width) == pytest.approx(s.staff_box[2], abs=1.0)


def test_snippets_shape_positions_and_content():
    strip = np.full((160, 1000), 255, np.uint8)
    strip[:, 500:510] = 0  # a bar line
    snips, xs = cut_snippets(strip)
    assert snips.shape == (len(xs), 80, 100) and snips.dtype == np.uint8
    assert list(xs[:4]) == [0, 50, 100, 150] and xs[-1] == 800
    assert np.all(np.diff(xs) == 50)
    # the bar line appears at (500 - x) / 2 in each snippet that covers it
    for snip, x in zip(snips, xs):
        col = (500 - x) // 2
        if 0 <= col < 100:
            assert snip[:, col].max() < 128
        else:
            assert snip.min() == 255


def test_snippets_of_short_and_uneven_strips():
    short = np.zeros((160, 120), np.uint8)
    snips, xs = cut_snippets(short)
    assert snips.shape == (1, 80, 100) and list(xs) == [0]
    assert snips[0, :, 70:].min() == 255  # padded with paper
    uneven = np.zeros((160, 1040), np.uint8)
    _, xs = cut_snippets(uneven)
    assert xs[-1] == 1040 - 200  # a last snippet flush with the end
    with pytest.raises(ValueError):
        cut_snippets(uneven, hop=0)


def test_configurable_sizes():
    strip = np.full((160, 700), 200, np.uint8)
    snips, xs = cut_snippets(strip, width=160, hop=40, out=(64, 64))
    assert snips.shape[1:] == (64, 64) and np.all(np.diff(xs) == 40)
    img, _ = _page()
    s = detect_systems(img)[0]
    cfg = SheetConfig(snippet_width=100, snippet_hop=25, snippet_size=(40, 50))
    snips, xs = snippets_for(img, s, cfg)
    assert snips.shape[1:] == (40, 50) and np.all(np.diff(xs)[:-1] == 25)


def test_passage_snippets_step_one_second():
    strip = np.full((160, 950), 255, np.uint8)
    snips, xs = cut_passage_snippets(strip)
    step = round(PX_PER_SECOND)
    assert snips.shape == (len(xs), 80, 100)
    assert np.all(np.diff(xs) == step)
    assert len(xs) == int(np.ceil((950 - step // 2) / step))
    p = passage_strip(strip)
    assert p.shape == (80, 475)
