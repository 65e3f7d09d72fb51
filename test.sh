#!/usr/bin/env bash
# Quick start, command 2: set everything up (idempotent, browser tests included) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh all,test
scripts/setup-pages.sh
scripts/setup-browser.sh
exec .venv/bin/python -m pytest "$@"
