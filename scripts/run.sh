#!/usr/bin/env bash
# Quick start (1): set everything up and run companion on the bundled demo.
# With a display the app opens; without one it runs the same job headless and prints the result.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" run
exec "${COMPANION_VENV:-$ROOT/.venv}/bin/companion" demo "$@"
