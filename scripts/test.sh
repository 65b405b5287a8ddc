#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (unit, workflow, and the real single-node SLURM cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
