#!/usr/bin/env bash
# Live-listening benchmark through a real audio device: a private PulseAudio
# server with a null sink, the synthetic piece played into it in a loop with
# paplay, and `companion bench listen --device pulse` recording its monitor
# through PortAudio (callbacks, ring buffer, worker: the microphone path).
# Needs: pulseaudio, pulseaudio-utils, libasound2-plugins, libportaudio2.
# Usage: bench/listen_pulseaudio.sh [SECONDS] [extra args for companion bench listen]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${COMPANION_VENV:-$ROOT/.venv}/bin/python"
SECONDS_RT="${1:-60}"
shift || true
RT="$(mktemp -d)"
chmod 700 "$RT"
export XDG_RUNTIME_DIR="$RT" HOME="$RT"
pulseaudio -n --daemonize=no --exit-idle-time=-1 --disallow-exit \
  --load="module-null-sink sink_name=companion_bench" --load=module-native-protocol-unix \
  >"$RT/pulseaudio.log" 2>&1 &
PA_PID=$!
PLAY_PID=""
cleanup() {
  [ -n "$PLAY_PID" ] && kill "$PLAY_PID" 2>/dev/null || true
  kill "$PA_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$RT"
}
trap cleanup EXIT
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
export PULSE_SERVER="unix:$RT/pulse/native" PULSE_SOURCE=companion_bench.monitor
"$PY" -c "from pathlib import Path; from companion.commands.bench_listen import synthetic_piece; synthetic_piece(Path('$RT/piece.wav'))"
( while true; do paplay -d companion_bench "$RT/piece.wav" 2>/dev/null || break; done ) &
PLAY_PID=$!
"$PY" -m companion bench listen --device pulse --seconds "$SECONDS_RT" --long-seconds 0 "$@"
