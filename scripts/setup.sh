#!/usr/bin/env bash
# Set up everything companion needs on a Debian/Ubuntu machine; safe to re-run.
#   scripts/setup.sh          runtime only
#   scripts/setup.sh test     runtime + test dependencies
# System packages are installed with apt-get when they are missing and we are
# root (or have password-less sudo); otherwise the missing ones are listed.
set -euo pipefail
MODE="${1:-run}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${COMPANION_VENV:-$ROOT/.venv}"

APT_PACKAGES=(
  libportaudio2                       # sounddevice (microphone)
  libsndfile1 ffmpeg                  # audio files (ffmpeg: robust MP3, m4a/aac)
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libfontconfig1 libdbus-1-3  # Qt
  fluidsynth libfluidsynth3           # synthesising training audio
  fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont
  lilypond libcairo2                  # LilyPond engraving, SVG rasterising for the training corpus
  xvfb                                # screenshots / GUI tests on a virtual screen
  pulseaudio pulseaudio-utils libasound2-plugins  # virtual microphone for the end-to-end audio test
)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; fi
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    echo "setup: installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || echo "setup: WARNING: apt-get could not install some of: ${missing[*]}" >&2
  else
    echo "setup: these system packages are missing and I may not install them:" >&2
    echo "    sudo apt-get install ${missing[*]}" >&2
    echo "setup: continuing; features that need them will say so." >&2
  fi
fi

PY=""
# 3.11 first: torch==2.13.0 is provided as a CPU wheel for it.
for c in python3.11 python3 python3.12 python3.13; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then PY="$c"; break; fi
done
[ -n "$PY" ] || { echo "setup: Python >= 3.11 is required" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
STAMP="$VENV/.setup-stamp-$MODE"
WANT="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
TEST_STAMP="$VENV/.setup-stamp-test"
if [ "$MODE" = run ] && [ -f "$TEST_STAMP" ] && [ "$(cat "$TEST_STAMP")" = "$WANT" ]; then
  :  # a test setup includes everything the app needs
elif [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "setup: installing Python packages into $VENV (first run takes a few minutes; log: $VENV/setup.log)"
  if [ "$MODE" = test ]; then EXTRA="[test]"; else EXTRA=""; fi
  PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check)
  # torch first and pinned: 2.13.0 is the CPU build; other versions pull GBs of CUDA packages.
  if ! { "${PIP[@]}" --upgrade pip && "${PIP[@]}" "torch==2.13.0" && "${PIP[@]}" -e ".$EXTRA"; } >"$VENV/setup.log" 2>&1; then
    tail -n 30 "$VENV/setup.log" >&2
    echo "setup: installing Python packages failed (full log: $VENV/setup.log)" >&2
    exit 1
  fi
  echo "$WANT" > "$STAMP"
fi
