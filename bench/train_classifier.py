"""Training throughput and peak memory of the classifier CNN, through the study's own training loop.

Why: the classifier arms are the study's most numerous jobs (arms x seeds x folds), and on a GPU the question is
whether `classifier.amp` (bf16/fp16 autocast, channels_last) pays. This runs `catvae.classifier.train.fit` itself
(Keras Adam, the epoch's batches gathered on the device, the validation pass that `select: best_val` reads) on
random uint8 images for `--epochs` epochs and prints, per preset, training images/s (the fastest epoch after the
first, validation included, as the rule logs it), seconds per epoch and peak memory (CUDA max allocated on a GPU,
process RSS peak on a CPU). Presets: `paper` = 3x224x224 batch 32 (config/paper.yaml), `demo` = 1x64x64 batch 32.

    .venv/bin/python bench/train_classifier.py --device cpu --presets demo --images 512
    python bench/train_classifier.py --device cuda --presets paper --amp
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRESETS = {"paper": (3, 224), "demo": (1, 64)}


def measure(preset: str, args: argparse.Namespace) -> dict:
    """Fit the CNN on `args.images` random images of `preset` and read the speed off its learning curve."""
    import torch

    from catvae.classifier.train import build_model, fit
    from catvae.device import resolve_device, seed_everything, set_threads
    from catvae.models import count_parameters
    from catvae.precision import amp_dtype, dtype_name

    set_threads(args.threads)
    seed_everything(0)
    device = resolve_device(args.device)
    channels, size = PRESETS[preset]
    options = {"image_size": size, "channels": channels, "epochs": args.epochs, "batch_size": args.batch,
               "lr": 1e-3, "select": "best_val", "patience": None}
    dtype = amp_dtype(args.amp, device, key="classifier.amp")
    gen = torch.Generator().manual_seed(0)
    n_val = max(args.batch, args.images // 8)

    def images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randint(0, 256, (n, channels, size, size), generator=gen, dtype=torch.uint8)
        return x, torch.randint(0, 2, (n,), generator=gen)

    model = build_model(options, 2, device, dtype)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    history, _ = fit(model, images(args.images), images(n_val), 2, options, device, seed=0,
                     label=f"bench {preset}", amp_dtype=dtype)
    seconds = history["seconds"].tolist()
    steady = min(seconds[1:]) if len(seconds) > 1 else seconds[0]
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"preset": preset, "device": str(device), "amp": dtype_name(dtype), "parameters": count_parameters(model),
            "images": args.images, "val_images": n_val, "batch": args.batch, "epoch_s": seconds,
            "images_per_s": args.images / steady, "peak_mb": peak / 2**20,
            "peak_kind": "cuda_max_allocated" if device.type == "cuda" else "process_rss_peak"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="demo", help=f"comma list of {', '.join(PRESETS)}")
    parser.add_argument("--images", type=int, default=1024, help="training images (random uint8)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs; the first is warm-up")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--amp", action="store_true", help="mixed precision as `classifier.amp: true` (CUDA only)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        parser.error(f"unknown preset: {', '.join(unknown)}")
    rows = [measure(p, args) for p in presets]
    print(f"device {rows[0]['device']}, amp {rows[0]['amp']}, batch {args.batch}, {args.images} training images, "
          f"img/s from the fastest of epochs 2..{args.epochs} (validation pass included); peak = {rows[0]['peak_kind']}")
    print(f"{'preset':7} {'params':>11} {'img/s':>9} {'s/epoch':>8} {'peak MB':>9}")
    for r in rows:
        print(f"{r['preset']:7} {r['parameters']:>11,} {r['images_per_s']:>9.1f} {min(r['epoch_s'][1:] or r['epoch_s']):>8.2f}"
              f" {r['peak_mb']:>9.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
