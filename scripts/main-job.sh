#!/usr/bin/env bash
# The main job the quick start runs: the studio server on the built-in default model (trained with
# `latentstudio train`, see docs/default-model.md; serve stops with a one-line error if it is not installed),
# with the Studio, Draw and Wall pages. Extra arguments go to `latentstudio serve` (e.g. a MODEL directory,
# --port, --data).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/latentstudio serve --data "${LATENTSTUDIO_DATA:-.studio}" "$@"
