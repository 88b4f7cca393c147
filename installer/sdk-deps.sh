#!/usr/bin/env bash
# Installs the test-only npm tooling: the official OpenAI Node SDK (used by
# tests/app/openai_sdk_test to drive the gateway as a real client would) and
# the Kubernetes schema models (tests/deploy: offline validation of the
# rendered manifests). Each is skipped when already installed at its locked
# versions.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
install() {  # DIR PACKAGE-THAT-MUST-EXIST
  cd "$root/$1"
  if [ -f "node_modules/$2/package.json" ] && cmp -s package-lock.json node_modules/.spillway-lock 2>/dev/null; then
    return 0
  fi
  echo "spillway: installing test tooling with npm ($1)" >&2
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.spillway-lock
}
install tests/sdk openai
install tests/deploy kubernetes-models
