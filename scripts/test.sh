#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (unit, workflow, and the real single-node SLURM cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two workers, one test file each at a time (the end-to-end files share a session fixture within their file);
# TEST_WORKERS=0 runs everything in this process. Arguments after the command go to pytest.
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
