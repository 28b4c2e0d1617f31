#!/usr/bin/env bash
# Quick start (2): set up the test dependencies and run the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" test
cd "$ROOT"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
exec "${COMPANION_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
