#!/usr/bin/env bash
# Quick start, command 2: set everything up (idempotent, browser tests included) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh all,test
scripts/setup-pages.sh
scripts/setup-browser.sh
# The browser tests are set up above, so here a missing browser is a failure, not a skip.
export LATENTSTUDIO_REQUIRE_BROWSER="${LATENTSTUDIO_REQUIRE_BROWSER:-1}"
exec .venv/bin/python -m pytest "$@"
