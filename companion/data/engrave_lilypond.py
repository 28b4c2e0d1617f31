"""Engraving LilyPond sources (Mutopia) with LilyPond itself.

Route: copy the source folder, ``convert-ly`` every file (Mutopia spans 2.6–2.24),
run ``lilypond --svg`` with a settings file that (a) installs an event
listener writing every note's score moment, pitch, duration and source
location (file:line:column, the point-and-click origin) and every tempo
change, and (b) tags each notehead and staff in the SVG with the same source
location and its system number. Noteheads and onsets are then joined on the
source location; when one location sounds several times (a music variable
used twice), noteheads and events are paired in reading order.

Repeats: LilyPond interprets the folded score, which is what we engrave. The
same listener records the volta-repeat events (repeat start with its count,
repeat end with how often it returns, volta brackets with their numbers), and
:func:`unfold_segments` plays that structure the way ``\\unfoldRepeats`` would:
a list of folded time spans in playing order. Each folded note event, already
paired with its notehead, then sounds once per span that holds it, so a
notehead maps to every time it sounds without any guessing between copies.
D.S./D.C./Fine/Coda jumps (which ``\\unfoldRepeats`` does not expand either),
nested repeats and hand-made repeat bars keep the notated order and say why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from companion.data.engraving import (EngravedScore, NoteEvent, Notehead, SystemBox, svg_to_png_array,
                                      unfold_segments)
from companion.errors import DataError

SVG_NS = "{http://www.w3.org/2000/svg}"
_TRANSLATE = re.compile(r"translate\(\s*(-?[\d.]+)[ ,]+(-?[\d.]+)\s*\)")
DEFAULT_QPM = 90.0  # when a piece has no metronome mark

SETTINGS = r"""
#(define companion-events-file "@EVENTS@")
#(define (companion-write . items)
   (let ((p (open-file companion-events-file "a")))
     (display (string-join (map (lambda (x) (format #f "~a" x)) items) "\t") p)
     (newline p)
     (close p)))
#(define (companion-loc origin)
   (if (ly:input-location? origin)
       (let ((l (ly:input-file-line-char-column origin)))
         (format #f "~a:~a:~a" (basename (car l)) (cadr l) (cadddr l)))
       "none"))
#(define (companion-moment m)
   (format #f "~a\t~a"
     (exact->inexact (/ (ly:moment-main-numerator m) (ly:moment-main-denominator m)))
     (exact->inexact (/ (ly:moment-grace-numerator m) (ly:moment-grace-denominator m)))))
#(define (companion-listener context)
   (make-engraver
    (listeners
     ((note-event engraver event)
      (let ((pitch (ly:event-property event 'pitch))
            (dur (ly:event-property event 'duration)))
        (if (ly:pitch? pitch)
            (companion-write "note" (companion-moment (ly:context-current-moment context))
                             (+ 60 (ly:pitch-semitones pitch))
                             (if (ly:duration? dur)
                                 (let ((l (ly:duration-length dur)))
                                   (exact->inexact (/ (ly:moment-main-numerator l) (ly:moment-main-denominator l))))
                                 0)
                             (companion-loc (ly:event-property event 'origin))
                             (object-address context)))))
     ((tie-event engraver event)
      (companion-write "tie" (companion-moment (ly:context-current-moment context)) 0 0 "none"
                       (object-address context))))))
#(define (companion-numbers nums)
   (if (list? nums)
       (string-join (map (lambda (n) (format #f "~a" n)) nums) ",")
       "none"))
#(define (companion-count x) (if (number? x) x 0))
#(define (companion-tempo-listener context)
   (make-engraver
    ((initialize engraver)
     (companion-write "score" "0\t0" 0 0 "none" 0))
    ((process-music engraver)
     ;; Repeat bars and volta brackets set by hand (\\bar ".|:", repeatCommands).
     (let ((bar (ly:context-property context 'whichBar #f))
           (commands (ly:context-property context 'repeatCommands '())))
       (if (and (string? bar) (string-index bar #\:))
           (companion-write "bar" (companion-moment (ly:context-current-moment context)) 0 0 bar 0))
       (if (pair? commands)
           (companion-write "rcmd" (companion-moment (ly:context-current-moment context)) 0 0
                            (string-map (lambda (c) (if (memv c '(#\tab #\newline)) #\space c))
                                        (format #f "~s" commands))
                            0))))
    (listeners
     ((volta-repeat-start-event engraver event)
      (companion-write "rstart" (companion-moment (ly:context-current-moment context))
                       (companion-count (ly:event-property event 'repeat-count)) 0 "none" 0))
     ((volta-repeat-end-event engraver event)
      (companion-write "rend" (companion-moment (ly:context-current-moment context))
                       (companion-count (ly:event-property event 'return-count)) 0 "none" 0))
     ((volta-span-event engraver event)
      (companion-write "volta" (companion-moment (ly:context-current-moment context))
                       (companion-count (ly:event-property event 'span-direction)) 0
                       (companion-numbers (ly:event-property event 'volta-numbers)) 0))
     ((dal-segno-event engraver event)
      (companion-write "jump" (companion-moment (ly:context-current-moment context)) 0 0 "dal-segno" 0))
     ((fine-event engraver event)
      (companion-write "jump" (companion-moment (ly:context-current-moment context)) 0 0 "fine" 0))
     ((segno-mark-event engraver event)
      (companion-write "jump" (companion-moment (ly:context-current-moment context)) 0 0 "segno" 0))
     ((coda-mark-event engraver event)
      (companion-write "jump" (companion-moment (ly:context-current-moment context)) 0 0 "coda" 0))
     ((tempo-change-event engraver event)
      (let ((count (ly:event-property event 'metronome-count))
            (unit (ly:event-property event 'tempo-unit)))
        (if (and (ly:duration? unit) (or (number? count) (pair? count)))
            (let* ((c (if (pair? count) (car count) count))
                   (l (ly:duration-length unit))
                   (w (/ (ly:moment-main-numerator l) (ly:moment-main-denominator l))))
              (companion-write "tempo" (companion-moment (ly:context-current-moment context))
                               (exact->inexact (* c w 4)) 0 "none" 0))))))))
#(define (companion-system-rank grob)
   (let ((sys (ly:grob-system grob)))
     (if (ly:grob? sys) (number->string (object-address sys)) "-1")))
#(set-global-staff-size @STAFF@)
\layout {
  \context {
    \Voice
    \consists #companion-listener
    \override NoteHead.output-attributes =
      #(lambda (grob)
         (list (cons 'class "cnh")
               (cons 'data-loc (companion-loc (ly:event-property (ly:grob-property grob 'cause) 'origin)))
               (cons 'data-sys (companion-system-rank grob))))
  }
  \context {
    \Score
    \consists #companion-tempo-listener
  }
  \context {
    \Staff
    \override StaffSymbol.output-attributes =
      #(lambda (grob) (list (cons 'class "cstaff") (cons 'data-sys (companion-system-rank grob))))
  }
}
"""


def _run(cmd: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                              errors="replace")
    except subprocess.TimeoutExpired as exc:
        raise DataError(f"{Path(cmd[0]).name} took longer than {timeout_s:.0f} s") from exc


def engrave(path: Path, params: dict, page_width_px: int, timeout_s: float = 300.0) -> EngravedScore:
    """Render a LilyPond source; ``params`` may set ``staff_size`` and ``page``."""
    for exe in ("lilypond", "convert-ly"):
        if shutil.which(exe) is None:
            raise DataError(f"{exe} is not installed (Debian: apt-get install lilypond)")
    with tempfile.TemporaryDirectory(prefix="companion-ly-") as tmpname:
        tmp = Path(tmpname)
        work = tmp / "src"
        # Copy the smallest folder that holds the entry and everything it includes
        # ("../common/defs.ly" is common in Mutopia collections).
        needed = _needed_files(path, limit=path.parent.parent.parent)
        top = Path(os.path.commonpath([str(p.parent.resolve()) for p in needed]))
        shutil.copytree(top, work, ignore=shutil.ignore_patterns("*.pdf", "*.midi", "*.mid", "*.ps", "*.png"))
        entry = work / path.resolve().relative_to(top)
        for ly in _needed_files(entry, limit=work):
            if _version(ly) < (2, 24):
                _run(["convert-ly", "-e", "-q", ly.name], ly.parent, 60)
        events_file = tmp / "events.tsv"
        settings = tmp / "companion-settings.ly"
        settings.write_text(SETTINGS.replace("@EVENTS@", str(events_file))
                            .replace("@STAFF@", str(int(params.get("staff_size", 20)))), encoding="utf-8")
        out_base = tmp / "out" / "score"
        out_base.parent.mkdir()
        paper = {"a4": "a4", "letter": "letter", "b4": "b4"}.get(params.get("page", "a4"), "a4")
        cmd = ["lilypond", "--svg", "-dno-point-and-click", f"-dpaper-size=\"{paper}\"",
               f"-dinclude-settings={settings}",
               "-o", str(out_base), entry.name]
        proc = _run(cmd, entry.parent, timeout_s)
        svgs = sorted(out_base.parent.glob("score*.svg"), key=_page_number)
        if not svgs:
            tail = " | ".join(l for l in proc.stderr.splitlines() if "error" in l.lower())[-300:]
            raise DataError(f"lilypond produced no pages ({tail or 'exit ' + str(proc.returncode)})")
        if len(svgs) > int(params.get("max_pages", 40)):
            raise DataError(f"{len(svgs)} pages: longer than the limit")
        if not events_file.exists():
            raise DataError("lilypond's event listener wrote nothing (no notes?)")
        events, bar_times, repeats = _read_events(events_file)
        why = _unsupported_text(_needed_files(entry, limit=work), seen_repeats=repeats != "none")
        if why:  # keep the notated order: the listener cannot see these jumps or repeats
            events, bar_times, _ = _read_events(events_file, unfold=False)
            repeats = f"not-expanded: {why}"
        pages, systems, heads = [], [], []
        sys_index: dict[int, int] = {}
        for page_no, svg_path in enumerate(svgs):
            svg = svg_path.read_text(encoding="utf-8")
            png = svg_to_png_array(svg, page_width_px)
            pages.append(png)
            _parse_svg(svg, page_no, png.shape[1], systems, heads, sys_index)
    events, heads, unjoined = _join(events, heads)
    if not events:
        raise DataError("no sounding notes found by the event listener")
    if len(pages) > 0 and len(systems) == 0:
        raise DataError("no staves found in lilypond's SVG")
    return EngravedScore(engraver="lilypond", pages=pages, systems=systems, noteheads=heads,
                         events=events, bar_times=bar_times, repeats=repeats,
                         params={"staff_size": int(params.get("staff_size", 20)), "paper": paper,
                                 "unjoined_noteheads": unjoined})


def _version(ly: Path) -> tuple[int, ...]:
    m = re.search(r'\\version\s+"(\d+)\.(\d+)', ly.read_text("utf-8", "replace"))
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _needed_files(entry: Path, limit: Path) -> list[Path]:
    """The entry file and every file it includes (recursively) that exists in the copy;
    converting only these saves many convert-ly runs in Mutopia collection folders."""
    seen: list[Path] = []
    todo = [entry]
    while todo:
        f = todo.pop()
        if f in seen or not f.is_file():
            continue
        seen.append(f)
        for inc in re.findall(r'\\include\s+"([^"]+)"', f.read_text("utf-8", "replace")):
            for base in (f.parent, entry.parent):
                cand = (base / inc).resolve()
                if cand.is_file() and limit.resolve() in cand.parents:
                    todo.append(cand)
                    break
    return seen


def _page_number(p: Path) -> int:
    m = re.search(r"-(\d+)\.svg$", p.name)
    return int(m.group(1)) if m else 0


SCORE_GAP_S = 2.0  # silence between the \\score blocks (movements) of one file


def _read_events(path: Path, unfold: bool = True) -> tuple[list[tuple], list[float], str]:
    """(loc, notated_s, [(onset_s, offset_s), ...], pitch, voice) per struck note:
    its time in the notated (folded) order, which pairs it with its notehead, and
    every time it sounds; plus bar times and the repeat status.

    Each ``\\score`` block of the file (the listener marks where one starts)
    restarts at moment 0; they are played one after another with a short gap,
    in notated and in performed time alike.
    """
    chunks: list[list[str]] = [[]]
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("score\t"):
            if chunks[-1]:
                chunks.append([])
            continue
        chunks[-1].append(line)
    scores = [_read_score(lines) for lines in chunks]
    statuses = [st for _, _, st in scores]
    bad = next((st for st in statuses if st.startswith("not-expanded")), None)
    unfold = unfold and bad is None
    out: list[tuple] = []
    folded_at = played_at = 0.0
    for notes, segments, _ in scores:
        if not notes:
            continue
        segments = segments if unfold else [(0.0, float("inf"), 0.0)]
        folded_end = played_end = 0.0
        for loc, onset, offset, pitch, voice, moment in notes:
            times = [(onset + shift, offset + shift) for a, b, shift in segments
                     if a - 1e-9 <= moment < b - 1e-9]
            out.append((loc, folded_at + onset, [(played_at + on, played_at + off) for on, off in times],
                        pitch, voice))
            folded_end = max(folded_end, offset)
            played_end = max([played_end] + [off for _, off in times])
        folded_at += folded_end + SCORE_GAP_S
        played_at += played_end + SCORE_GAP_S
    if bad is not None:
        status = bad
    elif not unfold:
        status = "none"
    else:
        status = "expanded" if "expanded" in statuses else "none"
    bars: list[float] = []  # no bar lines from the listener: the performer pedals by time
    return out, bars, status


def _read_score(lines: list[str]) -> tuple[list[tuple], list[tuple[float, float, float]], str]:
    """One score's (loc, onset_s, offset_s, pitch, voice, moment) per struck note in
    folded (notated) time, ties merged, tempo applied; the playing order of the
    folded time as (moment_from, moment_to, shift_s) spans (see
    :func:`unfold_segments`) and the repeat status."""
    notes, ties, tempi, repeat_marks, hand = [], set(), [], [], []
    for line in lines:
        f = line.split("\t")
        if len(f) < 7:
            continue
        kind, main, grace = f[0], float(f[1]), float(f[2])
        if kind == "note":
            notes.append((main, grace, int(f[3]), float(f[4]), f[5], f[6]))
        elif kind == "tie":
            ties.add((f[6], round(main, 6), round(grace, 6)))
        elif kind == "tempo" and float(f[3]) > 0:
            tempi.append((main, float(f[3])))
        elif kind in ("rstart", "rend", "volta", "jump"):
            repeat_marks.append((kind, main, int(float(f[3])), f[5]))
        elif kind in ("bar", "rcmd"):
            hand.append((kind, main, f[5]))
    if not notes:
        return [], [], "none"
    # Tempo map: whole notes -> seconds. qpm quarter notes per minute = qpm/4 whole notes.
    tempi = sorted({m: q for m, q in tempi}.items())
    if not tempi or tempi[0][0] > 0:
        tempi.insert(0, (0.0, tempi[0][1] if tempi else DEFAULT_QPM))
    marks = np.array([t[0] for t in tempi])
    secs_per_whole = np.array([240.0 / t[1] for t in tempi])
    cum = np.concatenate([[0.0], np.cumsum(np.diff(marks) * secs_per_whole[:-1])])

    def to_s(w: float) -> float:
        i = int(np.searchsorted(marks, w, side="right") - 1)
        i = max(i, 0)
        return float(cum[i] + (w - marks[i]) * secs_per_whole[i])

    # Merge tied notes: a note tied at (voice, moment) continues into the next
    # note of the same pitch in that voice starting when it ends.
    notes.sort(key=lambda n: (n[0], n[1]))
    by_start: dict[tuple[str, float, int], int] = {}
    for i, n in enumerate(notes):
        by_start.setdefault((n[5], round(n[0], 6), n[2]), i)
    continuation = set()
    end_of = {i: n[0] + n[3] for i, n in enumerate(notes)}
    for i, n in enumerate(notes):
        if (n[5], round(n[0], 6), round(n[1], 6)) in ties and n[1] == 0:
            j = by_start.get((n[5], round(n[0] + n[3], 6), n[2]))
            if j is not None and j != i:
                continuation.add(j)
    # Propagate chains (a tie into a note that is itself tied on).
    root = {}
    for i in range(len(notes)):
        if i in continuation:
            continue
        end = end_of[i]
        j = by_start.get((notes[i][5], round(end, 6), notes[i][2]))
        while j is not None and j in continuation and j not in root:
            root[j] = i
            end = end_of[j]
            j = by_start.get((notes[i][5], round(end, 6), notes[i][2]))
        end_of[i] = end
    out = []
    for i, n in enumerate(notes):
        if i in continuation:
            continue
        onset = to_s(n[0])
        if n[1] < 0:  # grace note: before the beat, by half its notated length
            onset = max(0.0, onset + 0.5 * n[1] * secs_per_whole[0])
        out.append((n[4], onset, max(to_s(end_of[i]), onset + 0.05), n[2], n[5], n[0]))
    spans, repeats = unfold_segments(repeat_marks + _hand_marks(hand))
    # Folded moments -> seconds: each span keeps its notated tempo.
    segments, now = [], 0.0
    for a, b in spans:
        end = to_s(b) if np.isfinite(b) else float("inf")
        segments.append((a, b, now - to_s(a)))
        now += end - to_s(a)
    return out, segments, repeats


_RCMD = re.compile(r'\(volta\s+(#f|"[^"]*")\)|start-repeat|end-repeat|\(volta')


def _hand_marks(hand: list[tuple[str, float, str]]) -> list[tuple[str, float, int, str]]:
    """Repeat marks from bars and repeat commands set by hand: a bar type whose
    first character is ":" ends a repeat, one whose last is ":" starts one;
    ``repeatCommands`` give start-repeat, end-repeat and volta brackets ("1.",
    "1.-2."). A volta text that is not plain numbers makes the piece
    not-expanded (a "jump" mark), never a guessed reading."""
    marks: list[tuple[str, float, int, str]] = []
    open_nums: str | None = None
    for kind, moment, text in hand:
        if kind == "bar":
            if text.startswith(":"):
                marks.append(("rend", moment, 1, "none"))
            if text.endswith(":"):
                marks.append(("rstart", moment, 2, "none"))
            continue
        for m in _RCMD.finditer(text):
            token = m.group(0)
            if token == "start-repeat":
                marks.append(("rstart", moment, 2, "none"))
            elif token == "end-repeat":
                marks.append(("rend", moment, 1, "none"))
            elif m.group(1) is None:  # a volta given as markup
                return [("jump", moment, 0, "volta text as markup")]
            else:
                if open_nums is not None:
                    marks.append(("volta", moment, 1, open_nums))
                    open_nums = None
                if m.group(1) != "#f":
                    nums = re.findall(r"\d+", m.group(1))
                    if "-" in m.group(1) and len(nums) == 2:
                        nums = [str(n) for n in range(int(nums[0]), int(nums[1]) + 1)]
                    if not nums:
                        return [("jump", moment, 0, f"volta text {m.group(1)}")]
                    open_nums = ",".join(nums)
                    marks.append(("volta", moment, -1, open_nums))
    return marks


_TEXT_JUMP = re.compile(r"D\.\s?C\.|D\.\s?S\.|\bDa\s+Capo\b|\bDal\s+Segno\b|\\segno\b|\\coda\b|scripts\.(?:var)?(?:segno|coda)",
                        re.IGNORECASE)
_HAND_REPEATS = re.compile(r"repeatCommands|\\bar\s+\"[^\"]*:")


def _unsupported_text(files: list[Path], seen_repeats: bool = False) -> str | None:
    """Repeats the listener cannot see: jumps written as text or glyphs, and
    repeat bars or volta brackets set by hand where the listener saw none."""
    for f in files:
        text = re.sub(r"%.*", "", f.read_text("utf-8", "replace"))  # comments
        if _TEXT_JUMP.search(text):
            return "D.C./D.S./segno/coda written as text or glyphs"
        if not seen_repeats and _HAND_REPEATS.search(text):
            return "repeat bars or volta brackets set by hand that the listener did not see"
    return None


def _leaves(el, ox: float = 0.0, oy: float = 0.0):
    """(element, x, y) for every drawing element below ``el``, translations composed."""
    dx, dy = _offset(el)
    ox, oy = ox + dx, oy + dy
    children = list(el)
    if not children:
        yield el, ox, oy
    for c in children:
        yield from _leaves(c, ox, oy)


def _parse_svg(svg: str, page: int, width_px: int, systems: list[SystemBox],
               heads: list[Notehead], sys_index: dict[int, int]) -> None:
    root = ET.fromstring(svg)
    vb = [float(v) for v in root.get("viewBox", "0 0 1 1").split()]
    scale = width_px / vb[2]
    staff_boxes: dict[int, list[float]] = {}
    for g in root.iter(f"{SVG_NS}g"):
        if g.get("class") != "cstaff":
            continue
        rank = int(g.get("data-sys", "-1"))
        for line, lx, ly in _leaves(g):
            if line.tag.replace(SVG_NS, "") != "line":
                continue
            x1 = float(line.get("x1", 0)) + lx
            x2 = float(line.get("x2", 0)) + lx
            y = float(line.get("y1", 0)) + ly
            box = staff_boxes.setdefault(rank, [1e9, 1e9, -1e9, -1e9])
            box[0], box[1] = min(box[0], x1, x2), min(box[1], y)
            box[2], box[3] = max(box[2], x1, x2), max(box[3], y)
    # A system is known by its grob's address (column ranks restart in every
    # \\score of a file); reading order on the page is top to bottom.
    for rank in sorted(staff_boxes, key=lambda r: (staff_boxes[r][1], staff_boxes[r][0])):
        if rank in sys_index:  # a system continued on this page cannot happen; keep the first
            continue
        b = staff_boxes[rank]
        sys_index[rank] = len(systems)
        systems.append(SystemBox(page, (b[0] - vb[0]) * scale, (b[1] - vb[1]) * scale,
                                 (b[2] - vb[0]) * scale, (b[3] - vb[1]) * scale))
    for g in root.iter(f"{SVG_NS}g"):
        if g.get("class") != "cnh":
            continue
        rank = int(g.get("data-sys", "-1"))
        if rank not in sys_index:
            continue
        leaf = next((lf for lf in _leaves(g) if lf[0].tag.replace(SVG_NS, "") == "path"), None)
        if leaf is None:
            continue
        # Glyph origin is the head's left edge on its staff position; a notehead
        # is ~1.3 staff spaces wide and a staff space is 1 unit in LilyPond's SVG.
        x = leaf[1] + 0.65
        y = leaf[2]
        heads.append(Notehead(g.get("data-loc", ""), page, sys_index[rank], (x - vb[0]) * scale,
                              (y - vb[1]) * scale))


def _offset(el) -> tuple[float, float]:
    if el is None:
        return 0.0, 0.0
    m = _TRANSLATE.search(el.get("transform", ""))
    return (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)


def _join(raw: list[tuple], heads: list[Notehead]) -> tuple[list[NoteEvent], list[Notehead], int]:
    """Give noteheads and events unique ids; a location used k times is paired in
    notated order with its heads in reading order when there are k heads, else its
    heads are dropped (and counted). Each paired event keeps all its soundings."""
    by_loc_events: dict[str, list[tuple]] = {}
    for ev in raw:
        by_loc_events.setdefault(ev[0], []).append(ev)
    by_loc_heads: dict[str, list[Notehead]] = {}
    for h in heads:
        by_loc_heads.setdefault(h.note_id, []).append(h)
    events: list[NoteEvent] = []
    out_heads: list[Notehead] = []
    unjoined = 0
    for loc, evs in by_loc_events.items():
        evs = sorted(evs, key=lambda e: e[1])
        hs = sorted(by_loc_heads.get(loc, []), key=lambda h: (h.page, h.system, h.x))
        paired = loc != "none" and len(hs) == len(evs)
        unjoined += 0 if paired else len(hs)
        for k, ev in enumerate(evs):
            nid = f"{loc}#{k}"
            for onset, offset in ev[2]:
                events.append(NoteEvent(nid, ev[3], onset, offset))
            if paired:
                h = hs[k]
                out_heads.append(Notehead(nid, h.page, h.system, h.x, h.y))
    unjoined += sum(len(hs) for loc, hs in by_loc_heads.items() if loc not in by_loc_events)
    return events, out_heads, unjoined
