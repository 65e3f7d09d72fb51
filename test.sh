#!/usr/bin/env bash
# Quick start, command 2: set everything up (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh all,test
exec .venv/bin/python -m pytest "$@"
