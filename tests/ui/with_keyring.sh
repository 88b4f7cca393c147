#!/usr/bin/env bash
# Runs a test inside a private D-Bus session with a fresh, unlocked GNOME
# Keyring (the Secret Service) whose files live in a temporary HOME.
# Usage: with_keyring.sh TEST_EXECUTABLE [ARGS...]
set -euo pipefail
if [ -z "${SPILLWAY_IN_BUS:-}" ]; then
  export SPILLWAY_IN_BUS=1
  exec dbus-run-session -- "$0" "$@"
fi
tmp=$(mktemp -d)
trap 'kill "${keyring_pid:-0}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
export HOME="$tmp/home" XDG_DATA_HOME="$tmp/home/.local/share" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
# --foreground keeps it a child we can stop; the password unlocks (creates) the login keyring.
printf 'test-password' | gnome-keyring-daemon --foreground --unlock --components=secrets >/dev/null 2>&1 &
keyring_pid=$!
# Until the Secret Service is on the bus (at most 10 s).
gdbus wait --session --timeout 10 org.freedesktop.secrets
export SPILLWAY_TEST_KEYRING=1
"$@"
