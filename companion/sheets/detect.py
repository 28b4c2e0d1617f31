"""System detection without annotations: staves from line patterns, systems from their joints.

Why this design: each band of rows gets the skew angle that makes its row profile
sharpest (scans are rarely flat), and the page is sheared straight. Staff lines
are then horizontal, so averaging along rows and a lighter threshold keep thin
grey lines as ink, and only long thin horizontal runs survive a run-length filter
(text, note heads and stems are short). Five-line combs over the row profile
give candidates for every plausible staff spacing (small solo staves too);
each candidate is rescored by counting the columns in which all five lines are
inked and the spaces are not, which also gives the staff's extent. Staves are
joined into systems where ink (systemic barline, brace) bridges the gap at their
left end; then page-level rules rejoin split systems that add up to the page's
usual staff count and attach ossia staves to their system. Everything is
vectorised numpy/scipy: about 0.04 s of CPU per 835-px page.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from companion.errors import SheetError


@dataclass(frozen=True)
class System:
    """One line of music on a page, in analysis-image pixels.

    ``box`` is ``(x0, y0, x1, y1)`` with a margin above and below the staves (the
    loose band a reader would call "this line"); ``staff_lines`` holds, per staff,
    the five line y positions at the horizontal centre of the system; ``angle`` is
    the page skew in degrees (positive: lines descend to the right).
    """

    box: tuple[float, float, float, float]
    staff_lines: tuple[tuple[float, ...], ...]
    angle: float = 0.0
    staff_box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    """Tight box: first to last staff line, staff start to staff end."""

    @property
    def n_staves(self) -> int:
        return len(self.staff_lines)

    @property
    def staff_space(self) -> float:
        gaps = [np.diff(s).mean() for s in self.staff_lines if len(s) > 1]
        return float(np.mean(gaps)) if gaps else 0.0


@dataclass
class _Staff:
    lines: np.ndarray  # five y positions in the deskewed frame
    x0: int
    x1: int
    space: float
    strength: float = 0.0

    @property
    def top(self) -> float:
        return float(self.lines[0])

    @property
    def bottom(self) -> float:
        return float(self.lines[-1])


@dataclass
class DetectOptions:
    """Knobs of the detector; the defaults suit 835-px-wide pages."""

    max_angle: float = 4.0
    """Largest skew searched, degrees."""
    angle_step: float = 0.05
    min_staff_width: float = 0.12
    """A staff narrower than this fraction of the page is ignored."""
    margin_spaces: float = 5.0
    """Band margin above and below the staves, in staff spaces (room for ledger lines,
    dynamics and fingering; the annotated bands of real scans are this loose)."""
    deadline: float | None = None
    """time.monotonic() value after which detection gives up with a SheetError."""
    debug: dict = field(default_factory=dict)


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise SheetError("page analysis exceeded its time limit; page skipped")


def otsu_threshold(image: np.ndarray) -> int:
    """Otsu's threshold, kept within sane bounds (see :func:`binarise`)."""
    hist = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0[-1] * w0 / total - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    return min(max(int(np.argmax(between)), 110), 200)


def binarise(image: np.ndarray) -> np.ndarray:
    """Dark pixels (ink) of a greyscale page: Otsu, kept within sane bounds.

    Why bounded: a bilevel scan downscaled to 835 px has thin lines in mid grey; a
    plain Otsu on a nearly white page can put the threshold too low or too high.
    """
    hist = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return np.zeros_like(image, dtype=bool)
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (m0[-1] * w0 / total - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    t = int(np.argmax(between))
    t = min(max(t, 110), 200)
    return image < t


def estimate_skew(dark: np.ndarray, max_angle: float = 4.0, step: float = 0.05,
                  band: int = 96) -> tuple[float, np.ndarray]:
    """Global skew and a per-row skew (degrees) that make the row profile sharpest.

    Vertical slices are shifted against each other instead of rotating the image,
    so trying many angles costs little. Why per row: a scanned page is rarely
    flat; one system can tilt by a third of a degree against the next, which is
    enough to smear five lines 6 px apart. Each band of rows gets its own best
    angle, interpolated between band centres.
    """
    h, w = dark.shape
    n_slices = 16
    edges = np.linspace(0, w, n_slices + 1).astype(int)
    prof = np.add.reduceat(dark, edges[:-1], axis=1, dtype=np.int32).T.astype(np.float32)  # S x H
    centres = (edges[:-1] + edges[1:]) / 2 - w / 2
    fine = 0.8  # the fine search looks this far either side of the coarse optimum
    # padding for the largest shift tried: the fine search may go past max_angle by ``fine``
    pad = int(math.ceil(w / 2 * math.tan(math.radians(max_angle + fine)))) + 2
    padded = np.pad(prof, ((0, 0), (pad, pad)))
    rows = np.arange(h)
    starts = np.arange(0, max(1, h - band // 2), band // 2)
    stops = np.minimum(starts + band, h)

    def scores(angles: np.ndarray) -> np.ndarray:
        out = np.zeros((len(angles), len(starts)))
        for ai, a in enumerate(angles):
            shifts = np.round(centres * math.tan(math.radians(a))).astype(int)
            idx = rows[None, :] + shifts[:, None] + pad
            total = np.take_along_axis(padded, idx, axis=1).sum(axis=0)
            c = np.concatenate([[0.0], np.cumsum(total.astype(np.float64) ** 2)])
            out[ai] = c[stops] - c[starts]
        return out

    # coarse search for the page, fine search near it for the page and each band
    coarse = np.arange(-max_angle, max_angle + 1e-9, 4 * step)
    g0 = float(coarse[int(np.argmax(scores(coarse).sum(axis=1)))])
    angles = np.arange(g0 - fine, g0 + fine + 1e-9, step)
    band_scores = scores(angles)
    global_angle = float(angles[int(np.argmax(band_scores.sum(axis=1)))])
    best = angles[np.argmax(band_scores, axis=0)]
    # bands with little ink or no clear optimum keep the global angle
    peak = band_scores.max(axis=0)
    flat = band_scores.min(axis=0)
    weak = (peak <= 1.15 * flat) | (peak < 0.05 * peak.max())
    best = np.where(weak, global_angle, best)
    centre_rows = (starts + stops) / 2
    per_row = np.interp(rows, centre_rows, best)
    return global_angle, per_row


def shear_rows(image: np.ndarray, angles, fill) -> tuple[np.ndarray, np.ndarray]:
    """Shift each column so lines at the given (per-row) angle become horizontal.

    ``angles`` is a scalar or one angle per row. Returns the sheared image and the
    shift field ``s`` (H x W) with ``sheared[y, x] == image[y + s[y, x], x]``.
    """
    h, w = image.shape
    a = np.broadcast_to(np.asarray(angles, dtype=np.float64), (h,))
    shifts = np.round((np.arange(w)[None, :] - w / 2) * np.tan(np.radians(a))[:, None]).astype(np.int32)
    if not shifts.any():
        return image, shifts
    m = int(np.abs(shifts).max())
    padded = np.pad(image, ((m, m), (0, 0)), constant_values=fill)
    flat = (np.arange(h, dtype=np.int32)[:, None] + m + shifts) * w + np.arange(w, dtype=np.int32)[None, :]
    return padded.ravel()[flat], shifts


def _staff_space(lines_img: np.ndarray) -> float:
    """Most common line-to-line distance: vertical white runs plus line thickness.

    Why run lengths: in the long-run image nearly all ink is staff lines, so the
    commonest white run between two black runs is the gap inside a staff.
    """
    col = np.ascontiguousarray(lines_img[:, ::3].T).astype(np.int8)  # every third column, W/3 x H
    d = np.diff(col, axis=1)
    starts_r, starts_c = np.nonzero(d == 1)  # white -> black (a run of ink starts at c+1)
    ends_r, ends_c = np.nonzero(d == -1)  # black -> white (ink ended at c)
    if len(starts_r) < 10 or len(ends_r) < 10:
        return 0.0
    # black runs: pair each end with the preceding start in the same column
    key_s = starts_r.astype(np.int64) * (col.shape[1] + 1) + starts_c
    key_e = ends_r.astype(np.int64) * (col.shape[1] + 1) + ends_c
    pos = np.searchsorted(key_s, key_e) - 1
    ok = pos >= 0
    ok[ok] &= starts_r[pos[ok]] == ends_r[ok]
    black = (ends_c[ok] - starts_c[pos[ok]]).astype(int)
    # white runs: from an end to the next start in the same column
    nxt = np.searchsorted(key_s, key_e)
    ok2 = nxt < len(key_s)
    ok2[ok2] &= starts_r[nxt[ok2]] == ends_r[ok2]
    white = (starts_c[nxt[ok2]] - ends_c[ok2]).astype(int)
    white = white[(white >= 2) & (white <= 60)]
    black = black[(black >= 1) & (black <= 10)]
    if len(white) < 10 or len(black) == 0:
        return 0.0
    hist = np.bincount(white, minlength=61).astype(float)
    hist = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
    m = int(np.argmax(hist))
    # refine to a fraction of a pixel around the mode
    lo, hi = max(2, m - 1), min(60, m + 1)
    wm = np.arange(lo, hi + 1)
    white_mode = float((hist[lo : hi + 1] * wm).sum() / max(hist[lo : hi + 1].sum(), 1e-9))
    thick = float(np.median(black))
    return white_mode + thick


def _comb_response(r: np.ndarray, space: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row: best five-line comb response over spacings near ``space``, and that spacing."""
    h = len(r)
    rmax = ndimage.maximum_filter1d(r, 3)  # tolerate a pixel of wobble
    spacings = np.arange(max(3.5, space * 0.6), space * 1.3 + 0.01, 0.25)
    ys = np.arange(h, dtype=np.float32)
    best_resp = np.full(h, -np.inf, np.float32)
    best_d = np.zeros(h, np.float32)
    for d in spacings:
        on = np.stack([np.interp(ys + k * d, ys, rmax, right=0) for k in range(5)])
        off = np.stack([np.interp(ys + (k + 0.5) * d, ys, r, right=0) for k in range(4)])
        resp = on.min(axis=0) - np.median(off, axis=0)
        better = resp > best_resp
        best_resp[better] = resp[better]
        best_d[better] = d
    return best_resp, best_d


def _coverage(on_img: np.ndarray, dark: np.ndarray, y: np.ndarray,
              d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns that look like staff at comb positions ``y + k d``: (n, W) booleans,
    and the number of inked line rows per column.

    A column counts when at least four of the five line rows are inked and at
    most two of the four rows between them are: a staff crossed by a notehead
    or stem still counts, a solid blob or a text line does not.
    """
    h, w = dark.shape
    k_on = np.arange(5)
    k_off = np.arange(4) + 0.5
    rows_on = np.clip(np.round(y[:, None] + k_on[None, :] * d[:, None]).astype(int), 0, h - 1)
    rows_off = np.clip(np.round(y[:, None] + k_off[None, :] * d[:, None]).astype(int), 0, h - 1)
    n_on = on_img[rows_on].sum(axis=1, dtype=np.int16)  # (n, W)
    n_off = dark[rows_off].sum(axis=1, dtype=np.int16)
    return (n_on >= 4) & (n_off <= 2), n_on


def find_staves(lines_img: np.ndarray, dark: np.ndarray, line_ink: np.ndarray, space: float,
                opts: DetectOptions) -> list[_Staff]:
    """Five-line patterns: comb peaks of the long-run profile, rescored column by column.

    Why two stages: the row profile finds candidates fast but cannot tell a staff
    from the same comb shifted by one line onto a beam; counting the columns in
    which the pattern holds can, and it also gives the staff's horizontal extent.
    """
    h, w = lines_img.shape
    r = lines_img.sum(axis=1).astype(np.float32)
    best_resp, best_d = _comb_response(r, space)
    min_cols = max(opts.min_staff_width * w, 10 * space)
    on_img = ndimage.maximum_filter1d(line_ink.view(np.uint8), 3, axis=0).astype(bool)
    # candidate rows: local maxima of the response above a low floor
    peak = ndimage.maximum_filter1d(best_resp, max(3, int(2 * space))) == best_resp
    cand = np.flatnonzero(peak & (best_resp > 0.5 * min_cols))
    scored = []
    for y in cand:
        d0 = float(best_d[y])
        ys = np.arange(int(y - 1.3 * d0), int(y + 1.3 * d0) + 1)
        ds = d0 + np.array([-0.5, -0.25, 0.0, 0.25, 0.5])
        yy, dd = np.meshgrid(ys, ds, indexing="ij")
        yy, dd = yy.ravel().astype(float), dd.ravel()
        ok = (yy >= 0) & (yy + 4 * dd < h - 1)
        if not ok.any():
            continue
        yy, dd = yy[ok], dd[ok]
        cov, n_on = _coverage(on_img, dark, yy, dd)
        # weight by inked line rows, so the comb on all five lines beats the one
        # shifted by a line (which still finds four)
        weighted = (cov * n_on).sum(axis=1)
        b = int(np.argmax(weighted))
        if cov[b].sum() >= 0.7 * min_cols:
            closed = ndimage.maximum_filter1d(cov[b], 3)
            if closed.sum() >= min_cols:
                scored.append((int(weighted[b]), float(yy[b]), float(dd[b]), closed))
    scored.sort(key=lambda t: -t[0])
    taken = np.zeros(h, bool)
    staves: list[_Staff] = []
    for score, y, d, cols in scored:
        lo, hi = int(max(0, y - 1.5 * d)), int(min(h, y + 5.5 * d + 1))
        if taken[int(y) : int(y + 4 * d) + 1].any():
            continue
        staff = _refine(line_ink, y, d, cols, min_cols)
        if staff is None or _continues(lines_img, staff) or not _long_lines(lines_img, staff):
            continue
        staff.strength = float(score)
        taken[lo:hi] = True
        staves.append(staff)
        _check(opts.deadline)
    staves.sort(key=lambda s: s.top)
    return staves


def _long_lines(lines_img: np.ndarray, staff: _Staff) -> bool:
    """At least four of the five lines are thin long horizontal runs over much of the staff.

    Why: a row of text ("Ped. * Ped.") or dense note heads can look like five rows
    of ink, but only staff lines survive the long-run filter.
    """
    h = lines_img.shape[0]
    cols = slice(staff.x0, staff.x1 + 1)
    d = staff.space
    reach = int(math.ceil(d / 2))
    n = 0
    for y in staff.lines:
        r = int(round(y))
        lo, hi = max(0, r - reach), min(h, r + reach + 1)
        rows = lines_img[lo:hi, cols].mean(axis=1)  # share of the staff's width, per row
        peak = rows[max(0, r - 2 - lo) : r + 3 - lo].max(initial=0)
        if peak < 0.3:
            continue
        # a staff line is thin: few rows reach its peak coverage (a block of text does)
        if (rows >= 0.7 * peak).sum() > max(6, 0.3 * d):
            continue
        n += 1
    return n >= 4


def _continues(lines_img: np.ndarray, staff: _Staff) -> bool:
    """True if equally spaced long lines go on above or below (ruled paper, a table).

    Three more full-width lines on one side are needed: stacked beams can make two.
    """
    h = lines_img.shape[0]
    cols = slice(staff.x0, staff.x1 + 1)

    def is_line(y: float) -> bool:
        r = int(round(y))
        return 1 <= r < h - 1 and lines_img[r - 1 : r + 2, cols].any(axis=0).mean() > 0.85

    d = staff.space
    return all(is_line(staff.top - k * d) for k in (1, 2, 3)) or \
        all(is_line(staff.bottom + k * d) for k in (1, 2, 3))


def _refine(dark: np.ndarray, y: float, d: float, cols: np.ndarray, min_cols: float) -> _Staff | None:
    """Horizontal extent (largest run of staff columns) and sub-pixel line positions."""
    h, w = dark.shape
    present = ndimage.binary_closing(cols, np.ones(max(3, int(3 * d)), bool), border_value=0) | cols
    lab, n = ndimage.label(present)
    if n == 0:
        return None
    sizes = ndimage.sum(present, lab, range(1, n + 1))
    k = int(np.argmax(sizes)) + 1
    xs = np.flatnonzero(lab == k)
    x0, x1 = int(xs[0]), int(xs[-1])
    if x1 - x0 < min_cols:
        return None
    top, bottom = max(0, int(y - d)), min(h, int(y + 5 * d) + 1)
    prof_all = dark[top:bottom, x0 : x1 + 1][:, cols[x0 : x1 + 1]].sum(axis=1).astype(np.float64)
    pos = []
    for k in range(5):
        c = y + k * d
        lo, hi = max(top, int(round(c - d / 3))), min(bottom, int(round(c + d / 3)) + 1)
        if hi <= lo:
            return None
        prof = prof_all[lo - top : hi - top]
        if prof.sum() <= 0:
            pos.append(c)
            continue
        j = int(np.argmax(prof))
        a, b = max(0, j - 1), min(len(prof), j + 2)
        wts = prof[a:b]
        pos.append(lo + float((np.arange(a, b) * wts).sum() / max(wts.sum(), 1e-9)))
    lines = np.array(pos, dtype=np.float64)
    gaps = np.diff(lines)
    if gaps.min() < 0.7 * gaps.mean() or gaps.max() > 1.3 * gaps.mean():
        return None
    return _Staff(lines=lines, x0=x0, x1=x1, space=float(gaps.mean()))


def _joined(dark: np.ndarray, a: _Staff, b: _Staff) -> bool:
    """True if ink bridges the gap between staff ``a`` and the staff ``b`` below it.

    Looks near the staves' left ends (systemic barline, brace, bracket); bar lines
    further right are not trusted alone (stems and slurs cross gaps too).
    """
    h, w = dark.shape
    y0 = int(math.ceil(a.bottom + 1.5))
    y1 = int(math.floor(b.top - 1.5))
    if y1 <= y0:
        return True
    sp = (a.space + b.space) / 2
    left = int(max(0, min(a.x0, b.x0) - 4 * sp))
    right = int(min(w, max(a.x1, b.x1) + 1))
    seg = dark[y0 : y1 + 1, left:right]
    seg = ndimage.maximum_filter1d(seg, 3, axis=1)  # a column that wanders by a pixel
    frac = seg.mean(axis=0)
    edge = int(max(a.x0, b.x0) + 2 * sp) - left
    return bool(frac[: max(1, edge)].max() >= 0.85)


def _attach_ossia(groups: list[list[_Staff]]) -> list[list[_Staff]]:
    """Attach a lone short staff (ossia, cue line) to the system just above it.

    Why: an ossia printed under a system belongs to that line of music; as a system
    of its own it would be a line nobody plays. Only a staff narrower than 60 % of
    the widest system, no further from the system above than that system's own
    staves are from each other, is attached.
    """
    if len(groups) < 2:
        return groups
    widest = max(max(s.x1 for s in g) - min(s.x0 for s in g) for g in groups)
    out: list[list[_Staff]] = [groups[0]]
    for g in groups[1:]:
        prev = out[-1]
        if len(g) == 1 and g[0].x1 - g[0].x0 < 0.6 * widest and len(prev) >= 2:
            inner = max(b.top - a.bottom for a, b in zip(prev, prev[1:]))
            if g[0].top - prev[-1].bottom <= 1.2 * inner:
                out[-1] = prev + g
                continue
        out.append(g)
    return out


def _merge_by_page_pattern(groups: list[list[_Staff]]) -> list[list[_Staff]]:
    """Join neighbouring groups whose staves add up to the page's usual system size.

    Why: a faint or broken systemic barline can leave a solo staff apart from its
    piano part while every other system on the page shows the pattern (say three
    staves). The pieces are joined only if their gap is no wider than the gaps
    inside the complete systems.
    """
    sizes = [len(g) for g in groups]
    if len(groups) < 3:
        return groups
    counts = np.bincount(sizes)
    m = int(np.argmax(counts * np.arange(len(counts))))  # the size most staves belong to
    if m < 2 or counts[m] < 2:
        return groups
    inner = [b.top - a.bottom for g in groups if len(g) == m for a, b in zip(g, g[1:])]
    limit = 1.15 * max(inner)
    out: list[list[_Staff]] = []
    i = 0
    while i < len(groups):
        # the longest run of small groups from here, close together, that adds up to m
        run, j = list(groups[i]), i + 1
        while len(run) < m and j < len(groups) and len(groups[j]) < m \
                and groups[j][0].top - run[-1].bottom <= limit:
            run += groups[j]
            j += 1
        if len(run) == m and j > i + 1:
            out.append(run)
            i = j
            continue
        out.append(groups[i])
        i += 1
    return out


def detect_systems(image: np.ndarray, opts: DetectOptions | None = None) -> list[System]:
    """Systems on a greyscale page (uint8, white = 255), top to bottom.

    A page without staves (title, preface, blank) gives an empty list.
    """
    opts = opts or DetectOptions()
    if image.ndim != 2 or image.shape[0] < 20 or image.shape[1] < 20:
        return []
    h, w = image.shape
    t = otsu_threshold(image)
    dark = image < t
    if dark.mean() < 0.002:
        return []
    _check(opts.deadline)
    angle, row_angles = estimate_skew(dark, opts.max_angle, opts.angle_step)
    grey, shifts = shear_rows(image, row_angles, 255)
    dsk = grey < t
    _check(opts.deadline)
    # Line ink: after deskewing, staff lines are horizontal, so averaging along rows
    # removes noise but keeps a thin grey line (blurred, low-resolution scans) dark
    # enough for a lighter threshold.
    paper = float(np.percentile(image[:: 4, :: 4], 75))
    t_line = min(paper - 12.0, t + 0.5 * (paper - t))
    line_ink = ndimage.uniform_filter1d(grey, 5, axis=1) < t_line
    # long horizontal runs: erosion then dilation along rows (grey opening, O(N))
    # (a thin line between two pixel rows is inked in either: join row pairs first)
    u8 = ndimage.maximum_filter1d(line_ink.view(np.uint8), 2, axis=0)
    run = max(8, int(round(w / 42)))  # 20 px at 835 px: two to five staff spaces
    lines_img = ndimage.maximum_filter1d(ndimage.minimum_filter1d(u8, run, axis=1), run, axis=1)
    space = _staff_space(lines_img)
    if space <= 0 or space > w / 35:  # no lines, or "staves" too big to be music
        return []
    _check(opts.deadline)
    staves = find_staves(lines_img, dsk, line_ink, space, opts)
    opts.debug.update(angle=angle, space=space, staves=staves)
    if not staves:
        return []
    _check(opts.deadline)
    groups: list[list[_Staff]] = [[staves[0]]]
    for prev, cur in zip(staves, staves[1:]):
        overlap = min(prev.x1, cur.x1) - max(prev.x0, cur.x0)
        if overlap > 0.5 * min(prev.x1 - prev.x0, cur.x1 - cur.x0) and _joined(dsk, prev, cur):
            groups[-1].append(cur)
        else:
            groups.append([cur])
    groups = _merge_by_page_pattern(groups)
    groups = _attach_ossia(groups)
    systems = []
    for g in groups:
        top = g[0].top
        bottom = g[-1].bottom
        x0 = min(s.x0 for s in g)
        x1 = max(s.x1 for s in g)
        m = opts.margin_spaces * float(np.mean([s.space for s in g]))
        xc = (x0 + x1) // 2
        ym = int(np.clip((top + bottom) / 2, 0, h - 1))
        s0, s1, sc = (int(shifts[ym, x]) for x in (x0, min(x1, w - 1), min(xc, w - 1)))
        box = (
            float(x0),
            float(max(0.0, top - m + min(s0, s1))),
            float(x1 + 1),
            float(min(h, bottom + m + max(s0, s1))),
        )
        staff_box = (float(x0), top + min(s0, s1), float(x1 + 1), bottom + max(s0, s1))
        lines = tuple(tuple(float(v + sc) for v in s.lines) for s in g)
        systems.append(System(box=box, staff_lines=lines, angle=angle, staff_box=staff_box))
    return systems
