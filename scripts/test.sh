#!/usr/bin/env bash
# Install everything (test tools and Chromium included), then run the whole test suite.
# pytest's own exit status is kept: 5 (no test collected) fails the run like any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev
exec "${PYTHON:-python3}" -m pytest -q "$@"
