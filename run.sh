#!/usr/bin/env bash
# Quick start, command 1: set everything up (idempotent) and start the studio server on the built-in model.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh all
scripts/setup-pages.sh
exec scripts/main-job.sh "$@"
