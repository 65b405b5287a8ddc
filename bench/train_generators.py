"""Training throughput, peak memory and generation speed of the VAE and CAT-VAE generators.

Why: Keras' attention-weight dropout forces PyTorch off its fused attention kernel, so the faithful
CAT-VAE costs speed and memory. This prints, per preset, images/s for the VAE and for the CAT-VAE in
each attention mode, beside the explicit float32 softmax(QK^T)V implementation of the same model, as
ratios; peak memory (process RSS peak on a CPU, CUDA max allocated on a GPU); and generation ms/image.

Each variant runs in its own subprocess, because a process's RSS peak only ever grows.

    .venv/bin/python bench/train_generators.py --steps 3 --device cpu --presets paper,demo --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PRESETS = {"paper": (3, 128), "demo": (1, 64)}
VARIANTS = {"vae": ("vae", None), "catvae-fused": ("catvae", "fused"),
            "catvae-faithful": ("catvae", "faithful"), "catvae-explicit": ("catvae", "explicit")}
BASELINE = "catvae-explicit"


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(preset: str, variant: str, args: argparse.Namespace) -> dict:
    """Time `args.steps` Adam steps (after `args.warmup` untimed ones) and one generation batch."""
    import torch

    from catvae.device import resolve_device, seed_everything, set_threads
    from catvae.models import build_generator, count_parameters

    set_threads(args.threads)
    seed_everything(0)
    device = resolve_device(args.device)
    channels, size = PRESETS[preset]
    name, mode = VARIANTS[variant]
    options = {"latent_dim": 100} | ({"attention": mode} if mode else {})
    model = build_generator(name, image_size=size, channels=channels, options=options).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, channels, size, size, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        out = model(x)
        loss = model.loss(x, out)["total"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(args.warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    train_s = time.perf_counter() - start

    context = model.context_features(x).mean(dim=0, keepdim=True) if model.uses_context else None
    gen = torch.Generator().manual_seed(0)  # latents are drawn on the CPU (GenerativeModel.draw_latents)
    model.generate(args.batch, context=context, generator=gen)        # warm-up
    _sync(device)
    start = time.perf_counter()
    model.generate(args.batch, context=context, generator=gen)
    _sync(device)
    gen_s = time.perf_counter() - start

    peak_mb = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {"preset": preset, "variant": variant, "device": str(device), "parameters": count_parameters(model),
            "images_per_s": args.steps * args.batch / train_s, "peak_mb": peak_mb,
            "peak_kind": "cuda_max_allocated" if device.type == "cuda" else "process_rss_peak",
            "gen_ms_per_image": 1000 * gen_s / args.batch}


def _spawn(preset: str, variant: str, argv: list[str]) -> dict:
    cmd = [sys.executable, __file__, *argv, "--_worker", f"{preset}:{variant}"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise SystemExit(f"{preset}/{variant} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> str:
    head = (f"{'preset':7} {'variant':16} {'params':>11} {'img/s':>8} {'x explicit':>10} {'peak MB':>9} "
            f"{'x explicit':>10} {'gen ms/img':>10}")
    lines = [head, "-" * len(head)]
    for preset in dict.fromkeys(r["preset"] for r in rows):
        group = [r for r in rows if r["preset"] == preset]
        base = next((r for r in group if r["variant"] == BASELINE), None)
        for r in group:
            speed = f"{r['images_per_s'] / base['images_per_s']:.2f}" if base else "-"
            mem = f"{r['peak_mb'] / base['peak_mb']:.2f}" if base else "-"
            lines.append(f"{preset:7} {r['variant']:16} {r['parameters']:>11,} {r['images_per_s']:>8.1f} {speed:>10} "
                         f"{r['peak_mb']:>9.0f} {mem:>10} {r['gen_ms_per_image']:>10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--presets", default="paper,demo", help=f"comma list of {', '.join(PRESETS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        preset, variant = args._worker.split(":")
        print(json.dumps(run_one(preset, variant, args)))
        return
    presets = [p for p in args.presets.split(",") if p]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [p for p in presets if p not in PRESETS] + [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown preset/variant: {', '.join(unknown)}")
    worker_argv = list(argv if argv is not None else sys.argv[1:])
    rows = []
    for preset in presets:
        for variant in variants:
            rows.append(_spawn(preset, variant, worker_argv))
            print(f"done {preset}/{variant}: {rows[-1]['images_per_s']:.1f} img/s", file=sys.stderr, flush=True)
    print(f"device {rows[0]['device']}, batch {args.batch}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"threads {args.threads}; peak = {rows[0]['peak_kind']}; ratios relative to {BASELINE} (float32)")
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
