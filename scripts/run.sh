#!/usr/bin/env bash
# Install, then start the chat page on http://127.0.0.1:7860 (builds the index on first start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec "${PYTHON:-python3}" app.py "$@"
