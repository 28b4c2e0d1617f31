#!/usr/bin/env bash
# Smoke test of the built desktop app (packaging/build.sh first):
#   bash packaging/smoke_test.sh [dist/companion]
# Starts the bundled app offscreen, checks that the window shows (and reports the start-up
# time), runs the headless demo from the bundle (index the demo library, identify the demo
# recording) and checks the answer. Needs python3 only to read the JSON.
#
# Which answer is right: the shipped model is still weak and may name the wrong piece
# (models/README.md), so "identified correctly" cannot be demanded of it. What a build
# must not change is the answer: the bundle must rank the same top piece, with the same
# identified_correctly, as the same model run from the source tree (SOURCE_PYTHON, by
# default .venv/bin/python). Without a source environment only the shape of the answer
# is checked, and the script says so.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP_DIR="${1:-$ROOT/dist/companion}"
APP="$APP_DIR/companion"
[ -x "$APP" ] || { echo "smoke: no built app at $APP; run packaging/build.sh first" >&2; exit 1; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export QT_QPA_PLATFORM=offscreen COMPANION_HOME="$WORK/home"
unset DISPLAY WAYLAND_DISPLAY

DATA="$APP_DIR/_internal"
for f in models/snippet.pt models/README.md resources/demo/demo.json resources/demo/recording.ogg \
         resources/icons/companion-256.png resources/companion.desktop \
         PySide6/Qt/plugins/platforms/libqxcb.so PySide6/Qt/plugins/platforms/libqoffscreen.so; do
  [ -e "$DATA/$f" ] || fail "$f is not in the bundle"
done
ls "$DATA"/libportaudio.so* >/dev/null 2>&1 || fail "PortAudio is not in the bundle"
echo "smoke: bundle holds models, demo, icons, .desktop, PortAudio, Qt xcb+offscreen plugins"

"$APP" --version | grep -q '^companion ' || fail "--version"
"$APP" listen --list-devices >"$WORK/devices.txt" 2>&1 || fail "listen --list-devices: $(cat "$WORK/devices.txt")"
grep -qi "portaudio" "$WORK/devices.txt" && fail "PortAudio did not load: $(cat "$WORK/devices.txt")"
echo "smoke: PortAudio loads ($(head -n1 "$WORK/devices.txt"))"

t0=$(date +%s.%N)
"$APP" gui --quit-when-shown >"$WORK/shown.json" 2>"$WORK/shown.err" || fail "gui --quit-when-shown: $(tail -5 "$WORK/shown.err")"
t1=$(date +%s.%N)
python3 - "$WORK/shown.json" "$t0" "$t1" <<'PY' || fail "the window did not show"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert r["window_visible"] is True and r["frozen"] is True and r["platform"] == "offscreen", r
print(f"smoke: window visible offscreen {r['seconds_since_process_start']} s after the process started; "
      f"whole run to exit {float(sys.argv[3]) - float(sys.argv[2]):.2f} s")
PY

"$APP" demo --headless >"$WORK/demo.json" 2>"$WORK/demo.err" || fail "demo --headless: $(tail -5 "$WORK/demo.err")"
SOURCE_PYTHON="${SOURCE_PYTHON:-$ROOT/.venv/bin/python}"
if [ -x "$SOURCE_PYTHON" ] && "$SOURCE_PYTHON" -c 'import companion' 2>/dev/null; then
  (cd "$ROOT" && COMPANION_HOME="$WORK/home-source" "$SOURCE_PYTHON" -m companion demo --headless) \
    >"$WORK/source.json" 2>"$WORK/source.err" || fail "the source-tree demo failed: $(tail -5 "$WORK/source.err")"
else
  echo "smoke: no source environment ($SOURCE_PYTHON): checking the shape of the answer only"
  : >"$WORK/source.json"
fi
python3 - "$WORK/demo.json" "$WORK/source.json" "$DATA/resources/demo/demo.json" <<'PY' || fail "the demo answer is wrong (above)"
import json, sys
from pathlib import Path

def load(path):
    text = Path(path).read_text()
    return json.loads(text[text.index("{"):]) if text.strip() else None

bundle, source, meta = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
job = bundle["demo_job"]
assert bundle["window_visible"] is True, "window not visible"
assert "error" not in job, job.get("error")
assert job["index"]["errors"] == 0 and job["index"]["added"] + job["index"]["unchanged"] == len(meta["pieces"]), job["index"]
assert job["expected_piece"] == meta["recording"]["pdf"], job["expected_piece"]
assert "_internal" in job["demo"], f"the demo did not come from the bundle: {job['demo']}"
pieces = job["identify"]["pieces"]
top = Path(pieces[0]["document"]).name if pieces else None
assert isinstance(job["identified_correctly"], bool)
assert job["identified_correctly"] == (top == meta["recording"]["pdf"])
print(f"smoke: demo indexed {job['index']['added'] + job['index']['unchanged']} pieces / {job['index']['pages']} pages; "
      f"top piece {top!r}, identified_correctly={job['identified_correctly']}")
if source is not None:
    sj = source["demo_job"]
    assert "error" not in sj, sj.get("error")
    spieces = sj["identify"]["pieces"]
    stop = Path(spieces[0]["document"]).name if spieces else None
    assert (top, job["identified_correctly"]) == (stop, sj["identified_correctly"]), \
        f"bundle answered {top!r}/{job['identified_correctly']}, source tree {stop!r}/{sj['identified_correctly']}"
    print("smoke: same answer as the source tree with the same model")
PY
echo "smoke: PASS"
