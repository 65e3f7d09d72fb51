#!/usr/bin/env bash
# Idempotent: what the end-to-end browser tests need. Debian's chromium + chromium-driver (apt-get, as root; CI
# runs as root). The Python side is `playwright` from PyPI (test extra), driven with
# executable_path=/usr/bin/chromium; we never run `playwright install` (no browser downloads).
# Exits non-zero, saying why, whenever chromium is not there at the end: the browser tests must not be skipped
# quietly because this step could not do its job.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    echo "setup-browser: chromium is installed"
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n "$0" "$@"
    fi
    echo "setup-browser: FAILED: chromium is missing and this is not root (and no password-less sudo);" \
         "run 'apt-get install chromium chromium-driver' as root, then rerun" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "setup-browser: FAILED: chromium is missing and there is no apt-get here; install Debian's chromium" \
         "or point LATENTSTUDIO_CHROMIUM at a Chromium binary" >&2
    exit 1
fi
echo "setup-browser: installing chromium chromium-driver (Debian)"
if ! apt-get update -q || ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium chromium-driver; then
    echo "setup-browser: FAILED: apt-get could not install chromium chromium-driver (see above)" >&2
    exit 1
fi
if [[ ! -x /usr/bin/chromium ]]; then
    echo "setup-browser: FAILED: apt-get finished but /usr/bin/chromium is not there" >&2
    exit 1
fi
echo "setup-browser: chromium is installed"
