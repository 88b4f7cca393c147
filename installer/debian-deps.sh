#!/usr/bin/env bash
# Installs the Debian 12 packages Spillway needs to build, run and test.
# Skips apt-get entirely when everything is already present.
# Usage: installer/debian-deps.sh [--quiet]
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config lld
  # the thread-safety analysis CI runs (tests/thread_safety); the fuzz
  # targets: clang 14 with libFuzzer, ASan and UBSan (tests/fuzz)
  clang clang-14 libclang-rt-14-dev
  # engine
  libboost-dev libboost-program-options-dev libssl-dev
  libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev libsimdjson-dev libspdlog-dev
  libsqlite3-dev libmimalloc-dev libsystemd-dev
  libgrpc++-dev protobuf-compiler-grpc libhiredis-dev libxxhash-dev
  # console and Qt Test
  qt6-base-dev qt6-charts-dev libqt6opengl6-dev qtkeychain-qt6-dev libsecret-1-0
  # tests: real clients and validators, a display for the console
  curl openssl prometheus prometheus-alertmanager python3-yaml xvfb xauth
  # tests: a real Redis for the shared rate limiter (started by the tests themselves)
  redis-server
  # tests: a real Secret Service keyring on a private bus (tests/ui/with_keyring.sh)
  gnome-keyring dbus-daemon libglib2.0-bin
  # packages: man pages, lint, a fresh Debian root, an OCI image, systemd-analyze
  help2man lintian debootstrap umoci iproute2 systemd appstream
  # benchmarks: nginx as the reference proxy, python3 runs the suite
  nginx-light python3
  # the soak's plot (tests/bench/soak.py)
  python3-matplotlib
)
# The OpenAI SDK test runs on Node.js; keep a Node.js that is already there
# (e.g. a newer one from elsewhere), else take Debian's.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "spillway: installing missing Debian packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  # Minimal Debian has no sudo: say what is needed instead of failing on a
  # missing command.
  if ! command -v sudo >/dev/null 2>&1; then
    echo "spillway: installing packages needs root; run as root, or install them first:" >&2
    echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends "${missing[@]}"
