#!/usr/bin/env bash
# The main job the quick start runs. Until the studio server lands it renders a labelled seed grid from the
# built-in default model (or, while no default model is installed, from a freshly initialised one).
set -euo pipefail
cd "$(dirname "$0")/.."
ls=.venv/bin/latentstudio
model=()
if ! .venv/bin/python -c "from latentstudio.io.registry import resolve_model_path; resolve_model_path(None)" 2>/dev/null; then
    [[ -f out/demo-model/config.json ]] || "$ls" init-model --preset cpu128 --out out/demo-model
    model=(out/demo-model)
fi
"$ls" generate "${model[@]}" --seeds 0-15 --trunc 0.7 --grid --out out/quickstart "$@"
echo "open out/quickstart/grid.png"
