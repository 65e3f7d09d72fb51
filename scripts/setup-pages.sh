#!/usr/bin/env bash
# Idempotent: install the pages' browser libraries (p5, simplex-noise) from the npm registry into ./node_modules,
# exactly as pinned in package-lock.json. `latentstudio serve` serves them from there (never from a CDN).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f node_modules/.package-lock.json ]] && cmp -s <(sha256sum < package-lock.json) node_modules/.ls-lock-sha; then
    echo "setup-pages: node_modules is up to date"
    exit 0
fi
if ! command -v npm >/dev/null; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "setup-pages: installing npm (Debian)"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm
    else
        echo "setup-pages: npm is missing; install Node.js + npm, then rerun" >&2
        exit 1
    fi
fi
echo "setup-pages: npm ci"
npm ci --no-audit --no-fund --loglevel=error
sha256sum < package-lock.json > node_modules/.ls-lock-sha
