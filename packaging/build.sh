#!/usr/bin/env bash
# Build the one-folder Linux desktop app with PyInstaller: dist/companion/companion.
#   bash packaging/build.sh                 set up .venv (scripts/setup.sh) + pyinstaller, then build
#   BUILD_PYTHON=/path/bin/python bash packaging/build.sh
#                                           use an existing environment that has companion's
#                                           dependencies and the 'packaging' extra (pyinstaller)
# The bundle holds the models, resources (demo, icons, .desktop), PortAudio and the Qt
# platform plugins (xcb, wayland, offscreen). Check it with packaging/smoke_test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${BUILD_PYTHON:-}" ]; then
  "$ROOT/scripts/setup.sh" run
  BUILD_PYTHON="${COMPANION_VENV:-$ROOT/.venv}/bin/python"
  "$BUILD_PYTHON" -m pip install --disable-pip-version-check -q "pyinstaller>=6.10"
fi
"$BUILD_PYTHON" -c 'import PyInstaller' 2>/dev/null \
  || { echo "build: PyInstaller is missing from $BUILD_PYTHON (pip install '.[packaging]')" >&2; exit 1; }
for f in models/snippet.pt resources/demo/demo.json resources/icons/companion-256.png; do
  [ -f "$f" ] || { echo "build: $f is missing; is this a complete checkout?" >&2; exit 1; }
done
rm -rf build/pyinstaller dist/companion
nice -n 10 "$BUILD_PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --workpath build/pyinstaller --distpath dist packaging/companion.spec
APP=dist/companion
# Desktop integration files next to the executable (see packaging/README.md to install them).
cp resources/companion.desktop "$APP/companion.desktop"
cp resources/icons/companion-256.png "$APP/companion.png"
echo "build: done: $APP ($(du -sh "$APP" | cut -f1)); run $APP/companion --help"
