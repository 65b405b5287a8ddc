#!/usr/bin/env bash
# The paper-scale GPU benchmark, as one script for a lent GPU machine (well within a 10-minute slot):
#   1. bench/startup.py: a job's fixed cost on the GPU (process spawn to first training step), paper preset;
#   2. bench/gpu_paper_scale.py: one slice of config/paper.yaml (fold 0, replicate 0, seed 0) on a 369-subject
#      phantom cohort through Snakemake and profiles/gpunode, at EPOCH_SCALE x the paper's epochs (default 0.5, so
#      the slice, ~40 jobs, fits; the training part is scaled back to the paper's epochs in the printout), with
#      GPU_JOBS (default 4) GPU jobs at once; per-rule job time, peak GPU memory per job, the aggregate throughput
#      of 1 and GPU_JOBS training processes, and the extrapolated wall time of the whole 800-job study.
# Figures and logs go to $OUT (the device tool's folder) or /tmp/gpu_paper_scale.
# Usage: bash bench/gpu_paper_scale.sh [python]        (default python3; snakemake must sit beside it)
#   GPU_PAPER_SCALE_SMOKE=1 bash bench/gpu_paper_scale.sh .venv/bin/python   # the same steps on a CPU at toy
#                                                                             # sizes, to check the script first
set -uo pipefail
cd "$(dirname "$0")/.."
py=${1:-python3}
out=${OUT:-/tmp/gpu_paper_scale}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

{ git rev-parse HEAD 2>/dev/null || echo "commit unknown (no .git here)"; } | tee "$out/commit.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/machine.txt"
"$py" -c "import os, platform, torch; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda',
torch.version.cuda, 'cpus', os.cpu_count())" | tee -a "$out/machine.txt"

if [ "${GPU_PAPER_SCALE_SMOKE:-0}" = 1 ]; then
    startup=(--device cpu --subjects 20 --repeats 1)
    scale=(--smoke --cores 2 --step-timeout 1800)
    limits=(600 2400)  # a small shared CPU: the toy sizes still take minutes
else
    startup=(--device cuda --config config/paper.yaml --subjects 60 --shape 120 120 78 --repeats 2)
    scale=(--epoch-scale "${EPOCH_SCALE:-0.5}" --gpu-jobs "${GPU_JOBS:-4}" --step-timeout 330)
    limits=(120 500)
fi
echo "== startup"
timeout "${limits[0]}" "$py" bench/startup.py "${startup[@]}" --json "$out/startup.json" 2>&1 | tee "$out/startup.txt"
echo "== paper scale"
timeout "${limits[1]}" "$py" bench/gpu_paper_scale.py "${scale[@]}" --out "$out" 2>&1 | tee "$out/paper_scale.txt"
