#!/usr/bin/env bash
# README command 1: set up, then run the full study on the default config (embedded phantom cohort).
# Extra arguments go to Snakemake, e.g. `bash scripts/study.sh --cores 8` or `--configfile config/paper.yaml`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then set -- --cores 2; fi
exec .venv/bin/snakemake "$@"
