#!/usr/bin/env bash
# CI's first stage: a fresh virtual environment with requirements.txt alone (the README's run
# command's install, no test tools), the seed articles built there, and the checks of
# scripts/check_install.py (no failed export; `qa ask` and the page's engine answer without torch).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d "${TMPDIR:-/tmp}/qa-install-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/venv"
PYTHON="$WORK/venv/bin/python" bash scripts/install.sh
# The tests' copy of the seed articles: what corpus/ holds today is the maintainer's business.
QA_TUNED_DIR= "$WORK/venv/bin/python" scripts/check_install.py --corpus tests/fixtures/seeds --workdir "$WORK/run"
