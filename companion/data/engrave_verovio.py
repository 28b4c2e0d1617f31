"""Engraving kern / MusicXML / MEI / ABC with verovio.

Noteheads come from the SVG (``g.note > g.notehead > use`` transforms, ids made
stable with ``xmlIdSeed``), onsets from ``renderToTimemap`` (``getTimesForElement``
is unreliable), pitches from ``getMIDIValuesForElement``. System boxes are the
extent of the staff lines of each ``g.system``.

Repeats: verovio 6 plays the score's expansion in the time map and MIDI while
engraving the folded score. Kern ``*>[A,A,B]`` lists, MEI ``<expansion>`` and
the expansion verovio's MusicXML import makes from repeat bar lines, endings and
``<sound dacapo/fine/...>`` all become one; notes of a later pass get verovio's
``-rendN`` id suffix, which is mapped back to the engraved notehead, so a
notehead has one event per time it sounds. Where repeat signs or D.C./D.S.
words are present but no expansion encodes them, the piece is performed in
notated order (``expandNever``) and :attr:`EngravedScore.repeats` says why.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from companion.data.engraving import (EngravedScore, NoteEvent, Notehead, SystemBox, svg_to_png_array,
                                      unfold_segments)
from companion.errors import DataError

FONTS = ("Leipzig", "Bravura", "Petaluma", "Leland", "Gootville")
SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
_TRANSLATE = re.compile(r"translate\(\s*(-?[\d.]+)[ ,]+(-?[\d.]+)\s*\)")
_PATH_LINE = re.compile(r"M\s*(-?[\d.]+)[ ,]+(-?[\d.]+)\s*L\s*(-?[\d.]+)[ ,]+(-?[\d.]+)")
_REND = re.compile(r"-rend\d+$")
_REPEAT_SIGNS = re.compile(r'(?:left|right)="rpt(?:start|end|both)"|<ending[\s>]')
_JUMP_WORDS = re.compile(r"D\.\s?C\.|D\.\s?S\.|\bDa\s+Capo\b|\bDal\s+Segno\b|\bal\s+Fine\b|\bal\s+Coda\b|\bTo\s+Coda\b",
                         re.IGNORECASE)
# Jumps encoded for a machine (not only as words): kern expansion lists, MEI
# expansions, MusicXML <sound> jump attributes that verovio's import follows.
_ENCODED_JUMPS = re.compile(r"^\*>\[|<expansion[\s>]|<sound[^>]*\b(?:dacapo|dalsegno|tocoda)=", re.MULTILINE)


def _source_text(path: Path) -> str:
    """The score's text (the root file of a compressed MusicXML), for repeat detection."""
    if path.suffix.lower() == ".mxl":
        try:
            with zipfile.ZipFile(path) as z:
                return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist()
                                 if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF"))
        except (zipfile.BadZipFile, OSError, KeyError):
            return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def repeat_status(mei: str, source: str, expanded: bool) -> str:
    """``none``, ``expanded`` or ``not-expanded: <reason>`` for a loaded score.

    Why so careful: a repeat taken in the audio but not in the onsets (or the
    reverse) is a silent misalignment; a jump written only as words (``D.C. al
    Fine``) is invisible to verovio's expansion, so even repeats it did expand
    would give a performance that is neither the notated order nor the music.
    """
    signs = bool(_REPEAT_SIGNS.search(mei))
    words = bool(_JUMP_WORDS.search(mei) or _JUMP_WORDS.search(source))
    encoded = bool(_ENCODED_JUMPS.search(source))
    if words and not encoded:
        return "not-expanded: D.C./D.S. jump written only as text"
    if expanded:
        return "expanded"
    if signs:
        return "not-expanded: repeat signs but no expansion in the source (kern: no *>[...] list)"
    if words:
        return "not-expanded: D.C./D.S. jump the expansion does not take"
    return "none"


def _load(tk, path: Path) -> bool:
    if path.suffix.lower() == ".mxl":
        # Compressed MusicXML: hand verovio the root file named in the container.
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.startswith("META-INF")]
                root = None
                if "META-INF/container.xml" in z.namelist():
                    m = re.search(rb'full-path="([^"]+)"', z.read("META-INF/container.xml"))
                    root = m.group(1).decode() if m else None
                root = root or next((n for n in names if n.endswith((".xml", ".musicxml"))), None)
                if root is None:
                    return False
                data = z.read(root).decode("utf-8", "replace")
        except (zipfile.BadZipFile, OSError, KeyError):
            return bool(tk.loadZipDataBase64(base64.b64encode(path.read_bytes()).decode()))
        return bool(tk.loadData(data))
    return bool(tk.loadFile(str(path)))


_PC = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_ACC = {"s": 1, "f": -1, "ss": 2, "x": 2, "ff": -2, "n": 0, "ns": 1, "nf": -1, "su": 1, "fd": -1,
        "nu": 0, "nd": 0, "ts": 3, "tf": -3, "xs": 3, "sx": 3}


def _mei_pitches(tk, mei: str | None = None) -> dict[str, int]:
    """Written pitch per note id from verovio's MEI (ignores ottava lines)."""
    ns = "{http://www.music-encoding.org/ns/mei}"
    xid = "{http://www.w3.org/XML/1998/namespace}id"
    out: dict[str, int] = {}
    try:
        root = ET.fromstring(mei if mei is not None else tk.getMEI({}))
    except ET.ParseError:
        return out
    for n in root.iter(ns + "note"):
        pname, octave = n.get("pname"), n.get("oct")
        if pname not in _PC or octave is None or not octave.lstrip("-").isdigit():
            continue
        acc = n.get("accid.ges") or n.get("accid")
        for a in n.iter(ns + "accid"):
            acc = a.get("accid.ges") or a.get("accid") or acc
        out[n.get(xid, "")] = 12 * (int(octave) + 1) + _PC[pname] + _ACC.get(acc or "n", 0)
    return out


def _midi_onsets(tk) -> dict[int, set[int]]:
    """Sounding pitches keyed by onset time in 4 ms buckets, from verovio's MIDI."""
    import io

    import mido

    out: dict[int, set[int]] = {}
    try:
        mid = mido.MidiFile(file=io.BytesIO(base64.b64decode(tk.renderToMIDI())))
    except Exception:  # a MIDI we cannot read only costs speed (per-note lookups)
        return out
    t = 0.0
    for msg in mid:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            for k in (round(t * 1000) // 4, round(t * 1000) // 4 - 1, round(t * 1000) // 4 + 1):
                out.setdefault(k, set()).add(msg.note)
    return out


def _resolve_pitch(tk, nid: str, written: int | None, sounding: set[int] | None) -> int:
    """The sounding pitch: the written one when the MIDI sounds it at that time,
    shifted by octaves for ottava lines, else verovio's (slow) per-note lookup."""
    if written is not None and sounding:
        for shift in (0, 12, -12, 24, -24):
            if written + shift in sounding:
                return written + shift
    try:
        return int(tk.getMIDIValuesForElement(nid).get("pitch", -1))
    except Exception:  # verovio raises on odd ids; such notes are dropped
        return -1


def engrave(path: Path, params: dict, page_width_px: int) -> EngravedScore:
    """Render ``path`` with verovio options from ``params`` (font, scale, page size, spacing)."""
    import verovio

    verovio.enableLog(verovio.LOG_OFF) if hasattr(verovio, "enableLog") else None
    tk = verovio.toolkit()
    options = {
        "xmlIdSeed": 1,
        "font": params.get("font", "Leipzig"),
        "scale": int(params.get("scale", 40)),
        "pageWidth": int(params.get("page_width", 2100)),
        "pageHeight": int(params.get("page_height", 2970)),
        "pageMarginLeft": int(params.get("margin", 50)),
        "pageMarginRight": int(params.get("margin", 50)),
        "pageMarginTop": int(params.get("margin", 50)),
        "pageMarginBottom": int(params.get("margin", 50)),
        "spacingStaff": int(params.get("spacing_staff", 12)),
        "spacingSystem": int(params.get("spacing_system", 12)),
        "spacingLinear": float(params.get("spacing_linear", 0.25)),
        "spacingNonLinear": float(params.get("spacing_non_linear", 0.6)),
        "adjustPageHeight": False,
        "breaks": "auto",
        "footer": "none",
        "header": "auto" if params.get("header", True) else "none",
        "mnumInterval": int(params.get("mnum_interval", 0)),
        "mdivAll": True,
    }
    for key, option in (("staff_line_width", "staffLineWidth"), ("stem_width", "stemWidth")):
        if params.get(key) is not None:  # printed editions' heavier lines (they survive a 150-dpi scan)
            options[option] = float(params[key])
    tk.setOptions(options)
    if not _load(tk, path):
        raise DataError(f"verovio could not read {path.name}")
    n_pages = tk.getPageCount()
    if n_pages < 1:
        raise DataError(f"verovio rendered no pages for {path.name}")
    if n_pages > int(params.get("max_pages", 40)):
        raise DataError(f"{n_pages} pages: longer than the limit of {params.get('max_pages', 40)}")

    timemap = tk.renderToTimemap({"includeMeasures": True, "includeRests": False})
    expanded = any(_REND.search(nid) for entry in timemap for nid in entry.get("on", []))
    mei = tk.getMEI({})
    repeats = repeat_status(mei, _source_text(path), expanded)
    if expanded and repeats != "expanded":
        # Play the notated order instead (the option only takes effect on load).
        tk.setOptions({"expandNever": True})
        if not _load(tk, path):
            raise DataError(f"verovio could not read {path.name}")
        timemap = tk.renderToTimemap({"includeMeasures": True, "includeRests": False})
        mei = tk.getMEI({})
    onsets: dict[str, list[float]] = {}
    offsets: dict[str, list[float]] = {}
    bar_times: list[float] = []
    measure_on: dict[str, float] = {}
    for entry in timemap:
        t = float(entry["tstamp"]) / 1000.0
        if entry.get("measureOn"):
            measure_on.setdefault(str(entry["measureOn"]), t)
        for nid in entry.get("on", []):
            onsets.setdefault(nid, []).append(t)
        for nid in entry.get("off", []):
            offsets.setdefault(nid, []).append(t)
        if entry.get("measureOn"):
            bar_times.append(t)
    events: list[NoteEvent] = []
    pitch_of: dict[str, int] = {}
    written = _mei_pitches(tk, mei)
    sounding_at = _midi_onsets(tk)
    # Engraved notes first, so a later pass ("-rendN") takes the pitch of its notehead.
    for nid in sorted(onsets, key=lambda n: (bool(_REND.search(n)), n)):
        ons = onsets[nid]
        head_id = _REND.sub("", nid)
        if head_id not in pitch_of:
            pitch_of[head_id] = _resolve_pitch(tk, head_id, written.get(head_id),
                                               sounding_at.get(round(min(ons) * 1000) // 4))
        pitch = pitch_of[head_id]
        if not 0 < pitch < 128:
            continue
        offs = sorted(offsets.get(nid, []))
        for on in sorted(ons):
            off = next((o for o in offs if o > on), on + 0.25)
            events.append(NoteEvent(head_id, pitch, on, off))
    pitch_of = {k: v for k, v in pitch_of.items() if 0 < v < 128}
    if not events:
        raise DataError("no sounding notes in the time map")
    repeat_source = "expansion" if repeats == "expanded" else ""
    if repeats.startswith("not-expanded: repeat signs"):
        # No expansion in the source: play the printed repeat bars and endings.
        end = max(e.offset for e in events)
        spans, status = unfold_segments(bar_line_marks(mei, measure_on, end) or [("jump", 0.0, 0, "unreadable")])
        if status == "expanded":
            events, bar_times = unfold_events(events, bar_times, spans)
            repeats, repeat_source = "expanded", "bar lines"
        elif status.startswith("not-expanded") and "unreadable" not in status:
            repeats = status

    pages = []
    systems: list[SystemBox] = []
    heads: list[Notehead] = []
    for page_no in range(1, n_pages + 1):
        svg = tk.renderToSVG(page_no)
        png = svg_to_png_array(svg, page_width_px)
        pages.append(png)
        _parse_svg(svg, page_no - 1, png.shape[1], systems, heads, pitch_of)
    return EngravedScore(engraver="verovio", pages=pages, systems=systems, noteheads=heads,
                         events=events, bar_times=bar_times, repeats=repeats,
                         params=dict(options) | ({"repeat_source": repeat_source} if repeat_source else {}))


_ENDING_OR_MEASURE = re.compile(r"<ending\b[^>]*>|</ending>|<measure\b[^>]*>")
_ATTR = re.compile(r'([\w:.]+)="([^"]*)"')


def bar_line_marks(mei: str, measure_on: dict[str, float], end: float) -> list[tuple[str, float, int, str]] | None:
    """Repeat marks (see :func:`unfold_segments`) in score seconds from the MEI's
    repeat bar lines (``left``/``right`` = ``rptstart``/``rptend``/``rptboth``)
    and ``<ending n="...">`` elements, timed by the time map's measure starts.

    Why: a kern file with labels but no expansion list (and MEI without an
    ``<expansion>``) is played by verovio in notated order; the printed repeat
    signs still say how a player would read it. None when a measure has no time.
    """
    measures: list[tuple[str, dict, tuple[str, str] | None]] = []
    ending: tuple[str, str] | None = None
    for m in _ENDING_OR_MEASURE.finditer(mei):
        tag = m.group(0)
        if tag.startswith("</ending"):
            ending = None
            continue
        attrs = dict(_ATTR.findall(tag))
        if tag.startswith("<ending"):
            nums = re.findall(r"\d+", attrs.get("n", ""))
            ending = (attrs.get("xml:id", str(m.start())), ",".join(nums) or "?")
        else:
            measures.append((attrs.get("xml:id", ""), attrs, ending))
    if not measures or any(mid not in measure_on for mid, _, _ in measures):
        return None
    starts = [measure_on[mid] for mid, _, _ in measures]
    ends = starts[1:] + [max(end, starts[-1])]
    marks: list[tuple[str, float, int, str]] = []
    for i, (_, attrs, end_of) in enumerate(measures):
        if attrs.get("left") in ("rptstart", "rptboth"):
            marks.append(("rstart", starts[i], 2, "none"))
        if attrs.get("right") in ("rptend", "rptboth"):
            marks.append(("rend", ends[i], 1, "none"))
        if attrs.get("right") in ("rptstart", "rptboth"):
            marks.append(("rstart", ends[i], 2, "none"))
        if end_of is not None:
            if "?" in end_of[1]:
                return None
            if i == 0 or measures[i - 1][2] != end_of:
                marks.append(("volta", starts[i], -1, end_of[1]))
            if i == len(measures) - 1 or measures[i + 1][2] != end_of:
                marks.append(("volta", ends[i], 1, end_of[1]))
    return marks


def unfold_events(events: list[NoteEvent], bar_times: list[float],
                  spans: list[tuple[float, float]]) -> tuple[list[NoteEvent], list[float]]:
    """Each event (and bar line) once per playing span ``[a, b)`` of score seconds that holds it."""
    shifted: list[tuple[float, float, float]] = []
    now = 0.0
    for a, b in spans:
        shifted.append((a, b, now - a))
        if b != float("inf"):
            now += b - a
    out = [NoteEvent(e.note_id, e.pitch, e.onset + sh, e.offset + sh)
           for e in events for a, b, sh in shifted if a - 1e-6 <= e.onset < b - 1e-6]
    bars = sorted(t + sh for t in bar_times for a, b, sh in shifted if a - 1e-6 <= t < b - 1e-6)
    return out, bars


def _is(el, cls: str) -> bool:
    """verovio writes several classes on some elements (``class="note placed"``)."""
    return cls in (el.get("class") or "").split()


def _parse_svg(svg: str, page: int, width_px: int, systems: list[SystemBox],
               heads: list[Notehead], sounding: dict[str, int]) -> None:
    root = ET.fromstring(svg)
    inner = root.find(f"{SVG_NS}svg")
    if inner is None:
        raise DataError("unexpected verovio SVG (no page viewBox)")
    vb = [float(v) for v in inner.get("viewBox", "0 0 1 1").split()]
    scale = width_px / vb[2]
    margin = inner.find(f"{SVG_NS}g")
    mx = my = 0.0
    if margin is not None and margin.get("transform"):
        m = _TRANSLATE.search(margin.get("transform", ""))
        if m:
            mx, my = float(m.group(1)), float(m.group(2))
    for system in inner.iter(f"{SVG_NS}g"):
        if not _is(system, "system"):
            continue
        ys: list[float] = []
        xs: list[float] = []
        spaces: list[float] = []
        for staff in system.iter(f"{SVG_NS}g"):
            if not _is(staff, "staff"):
                continue
            line_ys = []
            for p in staff.findall(f"{SVG_NS}path"):
                m = _PATH_LINE.match(p.get("d", ""))
                if m and abs(float(m.group(2)) - float(m.group(4))) < 1e-6:
                    line_ys.append(float(m.group(2)))
                    xs.extend([float(m.group(1)), float(m.group(3))])
            if len(line_ys) >= 2:
                ys.extend(line_ys)
                line_ys.sort()
                spaces.append((line_ys[-1] - line_ys[0]) / (len(line_ys) - 1))
        if not ys:
            continue
        space = sorted(spaces)[len(spaces) // 2] if spaces else 180.0
        sys_index = len(systems)
        systems.append(SystemBox(page, (min(xs) + mx) * scale, (min(ys) + my) * scale,
                                 (max(xs) + mx) * scale, (max(ys) + my) * scale))
        for note in system.iter(f"{SVG_NS}g"):
            if not _is(note, "note") or note.get("id") not in sounding:
                continue
            head = next((g for g in note.findall(f"{SVG_NS}g") if _is(g, "notehead")), None)
            use = head.find(f"{SVG_NS}use") if head is not None else None
            if use is None:
                continue
            m = _TRANSLATE.search(use.get("transform", ""))
            if not m:
                continue
            # The use's origin is the head's left edge on its staff position;
            # a notehead is about 1.2 staff spaces wide.
            x = float(m.group(1)) + 0.6 * space
            y = float(m.group(2))
            heads.append(Notehead(note.get("id", ""), page, sys_index, (x + mx) * scale, (y + my) * scale))
