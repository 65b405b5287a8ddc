"""Training throughput, peak memory and generation speed of the VAE and CAT-VAE generators.

Why: Keras' attention-weight dropout keeps PyTorch off its fused CPU attention kernel, so the faithful
CAT-VAE used to cost speed and memory. This prints, per preset, images/s for the VAE and for the CAT-VAE
in each attention mode (``faithful``: this project's blockwise kernel with weight dropout; ``fused``: SDPA
without weight dropout; ``faithful-sdpa``: SDPA with ``dropout_p``, PyTorch's unfused path on a CPU;
``explicit``: the float32 softmax(QK^T)V written out), as ratios to ``fused`` and to ``explicit``; peak
memory (process RSS peak on a CPU, CUDA max allocated on a GPU); and generation ms/image (one shared
class context, as synthesis uses it).

Each variant runs in its own subprocess, because a process's RSS peak only ever grows. Training speed is
taken from the median timed step, generation from the fastest of three batches, so that a machine shared
with other work disturbs the ratios less; ``--rounds N`` runs every variant N times and keeps its best
round (rounds interleave the variants).

    .venv/bin/python bench/train_generators.py --steps 3 --device cpu --presets paper,demo --threads 2
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

PRESETS = {"paper": (3, 128), "demo": (1, 64)}
VARIANTS = {"vae": ("vae", None), "catvae-fused": ("catvae", "fused"),
            "catvae-faithful": ("catvae", "faithful"), "catvae-faithful-sdpa": ("catvae", "faithful-sdpa"),
            "catvae-explicit": ("catvae", "explicit")}
BASELINES = ("catvae-fused", "catvae-explicit")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_one(preset: str, variant: str, args: argparse.Namespace) -> dict:
    """Time `args.steps` Adam steps (after `args.warmup` untimed ones) and three generation batches.

    Peak memory is read after training, before generation (the explicit mode's generation alone
    materialises a batch's whole attention matrix).
    """
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
    times = []
    for _ in range(args.steps):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak_mb = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20

    context = model.context_features(x).mean(dim=0, keepdim=True) if model.uses_context else None
    gen = torch.Generator(device=device).manual_seed(0)
    model.generate(args.batch, context=context, generator=gen)        # warm-up
    gen_times = []
    for _ in range(3):
        _sync(device)
        start = time.perf_counter()
        model.generate(args.batch, context=context, generator=gen)
        _sync(device)
        gen_times.append(time.perf_counter() - start)
    return {"preset": preset, "variant": variant, "device": str(device), "parameters": count_parameters(model),
            "images_per_s": args.batch / statistics.median(times), "peak_mb": peak_mb,
            "peak_kind": "cuda_max_allocated" if device.type == "cuda" else "process_rss_peak",
            "gen_ms_per_image": 1000 * min(gen_times) / args.batch}


def _spawn(preset: str, variant: str, argv: list[str]) -> dict:
    cmd = [sys.executable, __file__, *argv, "--_worker", f"{preset}:{variant}"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise SystemExit(f"{preset}/{variant} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _table(rows: list[dict]) -> str:
    ratio = "".join(f" {'x ' + b.removeprefix('catvae-'):>10}" for b in BASELINES)
    head = f"{'preset':7} {'variant':21} {'params':>11} {'img/s':>8}{ratio} {'peak MB':>9}{ratio} {'gen ms/img':>10}"
    lines = [head, "-" * len(head)]
    for preset in dict.fromkeys(r["preset"] for r in rows):
        group = [r for r in rows if r["preset"] == preset]
        bases = [next((r for r in group if r["variant"] == b), None) for b in BASELINES]

        def ratios(r: dict, key: str) -> str:
            return "".join(f" {r[key] / b[key]:>10.2f}" if b else f" {'-':>10}" for b in bases)

        for r in group:
            lines.append(f"{preset:7} {r['variant']:21} {r['parameters']:>11,} {r['images_per_s']:>8.1f}"
                         f"{ratios(r, 'images_per_s')} {r['peak_mb']:>9.0f}{ratios(r, 'peak_mb')} "
                         f"{r['gen_ms_per_image']:>10.2f}")
    return "\n".join(lines)


def _best(runs: list[dict]) -> dict:
    """A variant's best round: the highest training speed; peak memory and generation time at their best."""
    best = dict(max(runs, key=lambda r: r["images_per_s"]))
    best["peak_mb"] = min(r["peak_mb"] for r in runs)
    best["gen_ms_per_image"] = min(r["gen_ms_per_image"] for r in runs)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--presets", default="paper,demo", help=f"comma list of {', '.join(PRESETS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--rounds", type=int, default=1, help="run every variant this many times, keep the best")
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
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        for _ in range(max(1, args.rounds)):
            for variant in variants:
                runs[variant].append(_spawn(preset, variant, worker_argv))
                print(f"done {preset}/{variant}: {runs[variant][-1]['images_per_s']:.1f} img/s", file=sys.stderr,
                      flush=True)
        rows.extend(_best(runs[v]) for v in variants)
    print(f"device {rows[0]['device']}, batch {args.batch}, median of {args.steps} timed steps after {args.warmup} "
          f"warm-up, best of {max(1, args.rounds)} round(s), threads {args.threads}; peak = {rows[0]['peak_kind']}; "
          f"ratios relative to {' and '.join(BASELINES)}")
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
