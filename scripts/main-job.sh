#!/usr/bin/env bash
# The main job the quick start runs: the studio server on the built-in default model (an untrained cpu128
# generator while no default model is installed), with the Studio, Draw and Wall pages. Extra arguments go to
# `latentstudio serve` (e.g. a MODEL directory, --port, --data).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/latentstudio serve --data "${LATENTSTUDIO_DATA:-.studio}" "$@"
