#!/usr/bin/env bash
# The GPU checks, as one script for a lent CUDA machine (README "On a GPU"):
#   1. the tests marked `cuda` (pytest -m cuda);
#   2. bench/train_generators.py at the paper preset (3x128x128, batch 64), float32 and with --amp;
#   3. bench/train_classifier.py at the paper preset (3x224x224, batch 32), float32 and with --amp;
#   4. a short config/paper.yaml-shaped study through the CLI: phantom cohort -> 3x128x128 slices -> fold 0 of 5 ->
#      CAT-VAE (faithful attention, amp) and cVAE training -> synthesis -> one classifier arm (amp) -> TSTR.
# Every step has its own time limit, so one that hangs cannot eat the lease; logs and JSON go to $OUT (the
# device tool's folder) or /tmp/gpu_check. Usage: bash bench/gpu_check.sh [python]  (default: python3)
#   GPU_CHECK_REHEARSAL=1 bash bench/gpu_check.sh .venv/bin/python   # the same steps, CPU and tiny sizes, to check
#                                                                       # the script itself before spending GPU time
set -uo pipefail
cd "$(dirname "$0")/.."
py=${1:-python3}

if [ "${2:-}" = --study ]; then  # step 4, run by `step` below in a process of its own: bench/gpu_check.sh PY --study WORK
    set -e
    work=$3
    cli() { "$py" -m catvae "$1" --config "$work/paper_gpu.yaml" --threads 8 "${@:2}"; }
    cli phantom --out "$work/cohort"
    cli extract --root "$work/cohort" --out "$work/data"
    "$py" -m catvae split --config "$work/paper_gpu.yaml" --manifest "$work/data/manifest.csv" --out "$work/split.csv" \
        --fold 0  # split has no --threads: it has nothing to spread
    for group in NoTumor Tumor; do
        cli train-generator --model catvae --group "$group" --split "$work/split.csv" --out "$work/gen/catvae/$group"
    done
    cli train-generator --model cvae --group all --split "$work/split.csv" --out "$work/gen/cvae/all"
    for group in NoTumor Tumor; do
        cli synthesise --checkpoint "$work/gen/catvae/$group/checkpoint.pt" --class "$group" \
            --split "$work/split.csv" --out "$work/syn/catvae/$group"
    done
    cli classify --arm catvae@437 --split "$work/split.csv" --synthetic "$work/syn/catvae" --out "$work/clf"
    cli tstr --model catvae --split "$work/split.csv" --synthetic "$work/syn/catvae" --out "$work/tstr.json"
    for f in "$work"/gen/*/*/train_stats.json "$work/clf/metrics.json" "$work/tstr.json"; do
        echo "-- $f"; cat "$f"; echo
    done
    exit 0
fi

out=${OUT:-/tmp/gpu_check}
rehearsal=${GPU_CHECK_REHEARSAL:-0}
device=cuda epochs=10 preset=paper steps=(--steps 10 --warmup 3) images=2048
if [ "$rehearsal" = 1 ]; then device=cpu epochs=1 preset=demo steps=(--steps 1 --warmup 0) images=64; fi
work=$(mktemp -d)
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log, say the exit status
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    tail -n 25 "$out/$name.log"
    echo "== $name: exit $rc after $((SECONDS - start)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/machine.txt"
"$py" -c "import platform, torch; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda',
torch.version.cuda, 'capability', torch.cuda.get_device_capability() if torch.cuda.is_available() else None)" \
    | tee -a "$out/machine.txt"

if [ "$device" = cuda ]; then
    step tests 100 "$py" -m pytest -m cuda -q -p no:cacheprovider tests/models/test_vae.py tests/test_device.py \
        tests/generators/test_train.py tests/classifier/test_train.py tests/models/test_dropout_attention.py
fi
gen=(bench/train_generators.py --device "$device" --presets "$preset" "${steps[@]}" --batch 64
     --variants vae,catvae-fused,catvae-faithful,catvae-explicit)
step bench_generators_fp32 100 "$py" "${gen[@]}" --json "$out/bench_generators_fp32.json"
step bench_generators_amp 100 "$py" "${gen[@]}" --amp --json "$out/bench_generators_amp.json"
clf=(bench/train_classifier.py --device "$device" --presets "$preset" --images "$images" --epochs 3 --batch 32)
step bench_classifier_fp32 50 "$py" "${clf[@]}" --json "$out/bench_classifier_fp32.json"
step bench_classifier_amp 50 "$py" "${clf[@]}" --amp --json "$out/bench_classifier_amp.json"

# The paper-shaped study: config/paper.yaml with the phantom as data (3 slices per plane per subject, so the
# generators see a few hundred slices) and epochs cut to $epochs; everything else (sizes, batch, attention
# mode, 5 folds, targets) is the paper preset's.
"$py" - "$work/paper_gpu.yaml" "$device" "$epochs" "$rehearsal" <<'EOF'
import sys, yaml
path, device, epochs, rehearsal = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
cfg = yaml.safe_load(open("config/paper.yaml"))
cfg["config_name"], cfg["device"] = "paper-gpu-check", device
cfg["dataset"] |= {"name": "phantom", "kind": "phantom", "root": None, "selection": {"mode": "center", "k": 3, "stride": 6},
                   "phantom": {"n_subjects": 60, "shape": [120, 120, 78], "seed": 0}}
cfg["dataset"].pop("brats", None)
for name in ("vae", "catvae", "cvae"):
    cfg["generators"][name] |= {"epochs": epochs, "amp": True, "checkpoint_every": epochs}
cfg["generators"]["cvae"]["beta_warmup"] = {"start": 0, "epochs": 1}
cfg["classifier"] |= {"epochs": 3, "amp": True, "paper_protocol": False}
cfg["quality"]["tstr_images"] = 200
if rehearsal:  # tiny sizes: only the script's plumbing is under test
    cfg["dataset"] |= {"image_size": 32, "channels": 1, "phantom": {"n_subjects": 12, "shape": [60, 60, 40], "seed": 0}}
    cfg["classifier"] |= {"image_size": 32, "channels": 1, "epochs": 1}
    cfg["quality"]["tstr_images"] = 20
yaml.safe_dump(cfg, open(path, "w"), sort_keys=False)
EOF
step paper_shaped_study 200 bash "$0" "$py" --study "$work"
cp "$work/paper_gpu.yaml" "$out/" 2>/dev/null
rm -rf "$work"
