"""System detection on pages the tests draw: counts, staves per system, line positions, order."""

from __future__ import annotations

import numpy as np
import pytest
from sheets_helpers import draw_page, kern_piano, layout, rotate, verovio_pdf

from companion.sheets import detect_page, detect_systems, open_bytes
from companion.sheets.detect import estimate_skew


def _check(found, expected, tol: float = 1.6) -> None:
    assert [s.n_staves for s in found] == [len(e.staff_tops) for e in expected]
    for s, e in zip(found, expected):
        for lines, top in zip(s.staff_lines, e.staff_tops):
            want = top + np.arange(5) * e.space
            assert np.abs(np.asarray(lines) - want).max() <= tol, (lines, want)
        # the box covers the staves with a margin and is in reading order
        assert s.box[1] < e.top and s.box[3] > e.bottom
    tops = [s.box[1] for s in found]
    assert tops == sorted(tops)


@pytest.mark.parametrize("staves", [[2, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1, 1], [3, 3, 3], [4, 4], [1, 2, 3]])
def test_systems_of_one_to_four_staves(staves):
    systems = layout(staves, space=8.0)
    page = draw_page(systems, seed=len(staves))
    _check(detect_systems(page.image), systems)


@pytest.mark.parametrize("space", [5.0, 7.0, 11.0])
def test_staff_sizes(space):
    n = 6 if space < 8 else 3
    systems = layout([2] * n, space=space, top=80)
    _check(detect_systems(draw_page(systems).image), systems, tol=max(1.6, space * 0.2))


def test_small_solo_staff_above_grand_staff():
    """Violin/cello sonata layout: a smaller staff joined to the piano's grand staff."""
    big = layout([2, 2, 2], space=8.0, top=100, system_gap=14)
    img = draw_page(big, seed=3).image
    for s in big:  # a small staff 5.5 px apart, 6 spaces above each grand staff, joined at the left
        top = s.top - 6 * 8.0 - 4 * 5.5
        for k in range(5):
            img[int(round(top + k * 5.5)), int(s.x0) : int(s.x1)] = 0
        img[int(top) : int(s.top), int(s.x0) : int(s.x0) + 2] = 0
    found = detect_systems(img)
    assert [s.n_staves for s in found] == [3, 3, 3]
    assert all(abs(np.diff(s.staff_lines[0]).mean() - 5.5) < 0.6 for s in found)
    # a broken systemic barline under one solo staff: the page's pattern joins it back
    s = big[2]
    img[int(s.top - 6 * 8.0 + 2) : int(s.top - 2), :] = 255
    assert [x.n_staves for x in detect_systems(img)] == [3, 3, 3]
    # ... but not when no other system on the page shows that pattern
    for s in big[:2]:
        img[int(s.top - 6 * 8.0 + 2) : int(s.top - 2), :] = 255
    assert [x.n_staves for x in detect_systems(img)] == [1, 2, 1, 2, 1, 2]


@pytest.mark.parametrize("degrees", [-3.0, -1.5, 1.0, 3.0])
def test_skewed_pages(degrees):
    systems = layout([2, 2, 2, 2], space=8.0, top=160)
    img = rotate(draw_page(systems, seed=5).image, degrees)
    found = detect_systems(img)
    assert [s.n_staves for s in found] == [2, 2, 2, 2]
    # the detector's angle has the sign convention of lines descending to the right
    ang = found[0].angle
    assert abs(abs(ang) - abs(degrees)) < 0.3
    centres = [(s.box[1] + s.box[3]) / 2 for s in found]
    want = [(e.top + e.bottom) / 2 for e in systems]
    assert np.abs(np.array(centres) - np.array(want)).max() < 12


def test_skew_estimate_sign():
    systems = layout([2, 2], space=8.0, top=300)
    img = draw_page(systems, notes=False).image
    a0, _ = estimate_skew(img < 128)
    a1, _ = estimate_skew(rotate(img, 2.0) < 128)
    a2, _ = estimate_skew(rotate(img, -2.0) < 128)
    assert abs(a0) < 0.1
    assert abs(abs(a1) - 2.0) < 0.2 and abs(abs(a2) - 2.0) < 0.2 and np.sign(a1) != np.sign(a2)


def test_skew_at_the_search_limit_does_not_crash():
    """A page tilted at (or past) the largest angle searched: the fine search around the
    coarse optimum went past the padding and crashed detection (IndexError) on degraded pages."""
    systems = layout([2, 2], space=8.0, top=300)
    img = draw_page(systems, notes=False).image
    for angle in (4.0, -4.0, 4.6):
        a, rows = estimate_skew(rotate(img, angle) < 128)
        assert abs(abs(a) - min(abs(angle), 4.8)) < 0.3, (angle, a)
        assert np.all(np.isfinite(rows))


def test_noise_blur_and_greyscale():
    from scipy import ndimage

    systems = layout([2, 2, 2, 2, 2], space=7.0)
    img = draw_page(systems, seed=9, thickness=2).image.astype(np.float32)
    img = 255 - 0.55 * (255 - img)  # grey ink on a grey-ish page
    img = ndimage.gaussian_filter(img, 0.8)
    img += np.random.default_rng(0).normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    _check(detect_systems(img), systems, tol=2.0)


def test_pages_without_music_give_nothing():
    rng = np.random.default_rng(1)
    blank = np.full((1181, 835), 255, np.uint8)
    assert detect_systems(blank) == []
    # a text page: lines of word-like blobs
    text = blank.copy()
    for row in range(120, 1100, 26):
        x = 80
        while x < 760:
            wlen = int(rng.integers(15, 70))
            text[row : row + 11, x : x + wlen] = rng.integers(0, 2, (11, wlen)) * 255
            x += wlen + 9
    assert detect_systems(text) == []
    # ruled lines (a table or an ornament frame) are not staves
    ruled = blank.copy()
    for y in range(150, 1050, 30):
        ruled[y, 100:735] = 0
    assert detect_systems(ruled) == []
    # noise only
    noise = np.clip(255 - np.abs(rng.normal(0, 40, blank.shape)), 0, 255).astype(np.uint8)
    assert detect_systems(noise) == []


def test_separate_systems_are_not_merged_and_joined_ones_are():
    systems = layout([2, 2], space=8.0, top=200, system_gap=9)
    page = draw_page(systems, seed=2)
    found = detect_systems(page.image)
    assert [s.n_staves for s in found] == [2, 2]
    # erase every joint (systemic barline and bar lines) between the staves of the first system
    img = page.image.copy()
    s = systems[0]
    gap_top = int(s.staff_tops[0] + 4 * s.space + 2)
    gap_bottom = int(s.staff_tops[1] - 2)
    img[gap_top:gap_bottom] = 255
    assert [x.n_staves for x in detect_systems(img)] == [1, 1, 2]


def test_tiny_and_odd_images():
    assert detect_systems(np.zeros((5, 5), np.uint8)) == []
    assert detect_systems(np.full((40, 835), 255, np.uint8)) == []
    black = np.zeros((600, 835), np.uint8)
    assert detect_systems(black) == []


def test_time_limit_is_enforced():
    from companion.config import SheetConfig
    from companion.errors import SheetError

    page = draw_page(layout([2, 2]), seed=1)
    with pytest.raises(SheetError, match="time limit"):
        detect_page(page.image, SheetConfig(page_time_limit_s=-1.0))


def test_verovio_engraved_score():
    """A small piano piece engraved by verovio, converted SVG -> PDF by pymupdf."""
    data, expected = verovio_pdf(kern_piano(measures=36))
    doc = open_bytes(data)
    assert doc.n_pages == len(expected)
    for page, staves in enumerate(expected):
        found = detect_systems(doc.render_analysis(page))
        assert [s.n_staves for s in found] == staves
