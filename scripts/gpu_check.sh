#!/usr/bin/env bash
# The GPU checks of issue 13 in one command; options and the list of checks: --help.
#   scripts/gpu_check.sh [--dry-run] [--only NAME,...] [--out DIR] [--budget-s SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" scripts/gpu_check.py "$@"
