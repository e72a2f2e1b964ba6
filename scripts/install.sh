#!/usr/bin/env bash
# Installs everything the product needs on a fresh machine; safe to run again.
#   bash scripts/install.sh        runtime: Python packages of requirements.txt
#   bash scripts/install.sh --dev  also test tools and Debian's Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

# torch is pinned in requirements.txt to the CPU build; an unpinned torch
# would pull several GB of CUDA packages.
if [ "${1:-}" = "--dev" ]; then
    "$PYTHON" -m pip install --quiet -r requirements-dev.txt
    # Playwright cannot download its own browser here: use Debian's Chromium.
    if [ ! -x /usr/bin/chromium ]; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
    fi
else
    "$PYTHON" -m pip install --quiet -r requirements.txt
fi
# The project itself, editable: `qa`, `app` and `bench` import from anywhere, no sys.path edits.
"$PYTHON" -m pip install --quiet --no-deps -e .
