#!/usr/bin/env bash
# Idempotent: what the end-to-end browser tests need. Debian's chromium + chromium-driver (apt-get, as root; CI
# runs as root). The Python side is `playwright` from PyPI (test extra), driven with
# executable_path=/usr/bin/chromium; we never run `playwright install` (no browser downloads).
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "setup-browser: chromium is installed"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n "$0" "$@"
    fi
    echo "setup-browser: chromium is missing and this is not root; run 'apt-get install chromium chromium-driver'" \
         "as root (browser tests are skipped until then)" >&2
    exit 0
fi
echo "setup-browser: installing chromium chromium-driver (Debian)"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
