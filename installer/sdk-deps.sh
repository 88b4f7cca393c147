#!/usr/bin/env bash
# Installs the test-only npm tooling (the official OpenAI Node SDK, used by
# tests/app/openai_sdk_test to drive the gateway as a real client would).
# Skipped when already installed at the locked version.
set -euo pipefail
cd "$(dirname "$0")/../tests/sdk"
if [ -f node_modules/openai/package.json ] && cmp -s package-lock.json node_modules/.spillway-lock 2>/dev/null; then
  exit 0
fi
echo "spillway: installing test tooling with npm (tests/sdk)" >&2
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.spillway-lock
