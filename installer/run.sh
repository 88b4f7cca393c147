#!/usr/bin/env bash
# Starts Spillway from a build folder: the console when a display is available
# and it was built, otherwise the headless engine on the embedded defaults.
set -euo pipefail
build=${1:-build/release}
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$build/app/spillway" ]; then
  exec "$build/app/spillway"
fi
exec "$build/app/spillwayd" "${@:2}"
