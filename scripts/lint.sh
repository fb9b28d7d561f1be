#!/usr/bin/env bash
# What CI's lint step runs, and what a contributor runs before pushing: lint, format, types.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin}
"$PY/ruff" check app tests bench .ci
"$PY/ruff" format --check app tests bench .ci
"$PY/mypy" app
