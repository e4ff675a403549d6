#!/usr/bin/env bash
# The whole test suite on a fresh clone: installs what the tests need, then runs pytest.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# AnythingLLM's own CLI, for the conformance test (needs node and npm).
if command -v npm >/dev/null 2>&1; then
  npm install --prefix .ci --no-save --no-audit --no-fund --silent @mintplex-labs/anything-llm-cli@0.0.13
fi

# Debian's Chromium, for the JupyterLab browser tests (never `playwright install`).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

.venv/bin/ruff check allm_jupyter tests benchmarks scripts
.venv/bin/ruff format --check allm_jupyter tests benchmarks scripts
.venv/bin/mypy

# The real AnythingLLM for tests/real, when the kit is beside the clone and this machine can run
# it (root, ip netns): built once into a cache outside the clone, reset, started; always stopped.
kit_env=$(mktemp)
trap 'bash scripts/realserver.sh stop "$kit_env"; rm -f "$kit_env"' EXIT
bash scripts/realserver.sh start "$kit_env"
set -a
# shellcheck disable=SC1090
. "$kit_env"
set +a

# Every stand-in server's key looks like standin-<16 hex>: none may reach the test output, and
# neither may the real server's.
log=$(mktemp)
set +e
.venv/bin/python -m pytest "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if grep -Eq 'standin-[0-9a-f]{16}' "$log" || { [ -n "${ALLM_KIT_API_KEY:-}" ] && grep -qF -- "$ALLM_KIT_API_KEY" "$log"; }; then
  echo "FAILED: an API key appeared in the test output (see $log)." >&2
  exit 1
fi
rm -f "$log"
exit "$status"
