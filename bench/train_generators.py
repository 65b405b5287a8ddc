"""Training throughput, peak memory and generation speed of the VAE and CAT-VAE generators.

Why: Keras' attention-weight dropout keeps PyTorch off its fused CPU attention kernel, so the faithful
CAT-VAE used to cost speed and memory. This prints, per preset, images/s for the VAE and for the CAT-VAE
in each attention mode (``faithful``: this project's blockwise kernel with weight dropout on a CPU, SDPA
with ``dropout_p`` on CUDA; ``fused``: SDPA without weight dropout; ``faithful-sdpa``: SDPA with
``dropout_p`` everywhere, PyTorch's unfused path on a CPU; ``explicit``: the float32 softmax(QK^T)V
written out), as ratios to ``fused`` and to ``explicit``; peak training memory (process RSS peak on a CPU,
CUDA max allocated on a GPU); and generation ms/image (batches of ``--gen-batch`` images, by default
``synthesis.batch_size``, with one class context expanded to the batch, exactly as synthesis passes it).

Speed: one process builds every variant of a preset and times their training steps (and generation
batches) in turn, round after round, so that every variant sees the same machine: on a computer shared
with other work, load that comes and goes then moves all variants together and the ratios hold. A
variant's figure is its median step (its fastest generation batch), and its speed ratio to a baseline
the median, over rounds, of the two steps' time ratio within the round. Memory: each variant then trains a
few steps in a process of its own, because a process's RSS peak only ever grows.

    .venv/bin/python bench/train_generators.py --steps 5 --device cpu --presets paper,demo --threads 2
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


class _Run:
    """One variant's model, optimiser and batch, with a timed training step and generation batch."""

    def __init__(self, preset: str, variant: str, args: argparse.Namespace, device) -> None:
        import torch

        from catvae.device import seed_everything
        from catvae.models import build_generator
        from catvae.optim import build_adam
        from catvae.precision import amp_dtype, grad_scaler, use_channels_last

        seed_everything(0)
        channels, size = PRESETS[preset]
        name, mode = VARIANTS[variant]
        options = {"latent_dim": 100} | ({"attention": mode} if mode else {})
        self.device, self.batch, self.gen_batch = device, args.batch, args.gen_batch
        self.model = build_generator(name, image_size=size, channels=channels, options=options).to(device)
        # the study's optimiser (Keras Adam, fused on a CPU), as train_generator builds it
        self.opt = build_adam(self.model.parameters(), lr=1e-3)
        self.x = torch.rand(args.batch, channels, size, size, device=device)
        self.context = None
        # --amp: what `generators.<model>.amp: true` does in training (catvae.precision; no-op on a CPU)
        self.amp_dtype = amp_dtype(args.amp, device)
        self.scaler = grad_scaler(self.amp_dtype)
        if use_channels_last(device, self.amp_dtype):
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)

    def step(self) -> float:
        from catvae.precision import autocast

        _sync(self.device)
        start = time.perf_counter()
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp_dtype):
            out = self.model(self.x)
        if self.amp_dtype:  # losses in float32, as catvae.generators.train does
            out = {k: v.float() for k, v in out.items()}
        loss = self.model.loss(self.x, out)["total"]
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        _sync(self.device)
        return time.perf_counter() - start

    def generate(self) -> float:
        import torch

        if self.model.uses_context and self.context is None:
            self.context = self.model.context_features(self.x).mean(dim=0, keepdim=True)
        gen = torch.Generator().manual_seed(0)  # latents are drawn on the CPU (GenerativeModel.draw_latents)
        _sync(self.device)
        start = time.perf_counter()
        context = None if self.context is None else self.context.expand(self.gen_batch, -1, -1, -1)
        self.model.generate(self.gen_batch, context=context, generator=gen)  # float32, as synthesis runs
        _sync(self.device)
        return time.perf_counter() - start


def measure_speed(preset: str, variants: list[str], args: argparse.Namespace) -> list[dict]:
    """Interleaved timing of every variant: warm-up steps, then `args.steps` rounds of one step each."""
    from catvae.device import resolve_device, set_threads
    from catvae.models import count_parameters

    set_threads(args.threads)
    device = resolve_device(args.device)
    runs = {v: _Run(preset, v, args, device) for v in variants}
    for run in runs.values():
        for _ in range(args.warmup):
            run.step()
        run.generate()
    steps: dict[str, list[float]] = {v: [] for v in variants}
    gens: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.steps):
        for v, run in runs.items():
            steps[v].append(run.step())
    for _ in range(3):
        for v, run in runs.items():
            gens[v].append(run.generate())
    return [{"preset": preset, "variant": v, "device": str(device), "parameters": count_parameters(runs[v].model),
             "images_per_s": args.batch / statistics.median(steps[v]),
             "step_s": steps[v],
             "gen_ms_per_image": 1000 * min(gens[v]) / args.gen_batch} for v in variants]


def measure_memory(preset: str, variant: str, args: argparse.Namespace) -> dict:
    """Peak memory of training alone: warm-up steps and one more, in a fresh process."""
    import torch

    from catvae.device import resolve_device, set_threads

    set_threads(args.threads)
    device = resolve_device(args.device)
    run = _Run(preset, variant, args, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup + 1):
        run.step()
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"peak_mb": peak / 2**20, "peak_kind": "cuda_max_allocated" if device.type == "cuda" else "process_rss_peak"}


def _spawn(job: str, argv: list[str]):
    cmd = [sys.executable, __file__, *argv, "--_worker", job]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise SystemExit(f"{job} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _speed_ratio(row: dict, base: dict) -> float:
    """Median over rounds of the base's step time / this variant's: each round's steps ran back to back."""
    return statistics.median(b / r for r, b in zip(row["step_s"], base["step_s"]))


def _table(rows: list[dict]) -> str:
    ratio = "".join(f" {'x ' + b.removeprefix('catvae-'):>10}" for b in BASELINES)
    head = f"{'preset':7} {'variant':21} {'params':>11} {'img/s':>8}{ratio} {'peak MB':>9}{ratio} {'gen ms/img':>10}"
    lines = [head, "-" * len(head)]
    for preset in dict.fromkeys(r["preset"] for r in rows):
        group = [r for r in rows if r["preset"] == preset]
        bases = [next((r for r in group if r["variant"] == b), None) for b in BASELINES]

        def ratios(r: dict, key: str) -> str:
            return "".join(f" {r[key] / b[key]:>10.2f}" if b else f" {'-':>10}" for b in bases)

        def speed_ratios(r: dict) -> str:
            return "".join(f" {_speed_ratio(r, b):>10.2f}" if b else f" {'-':>10}" for b in bases)

        for r in group:
            lines.append(f"{preset:7} {r['variant']:21} {r['parameters']:>11,} {r['images_per_s']:>8.1f}"
                         f"{speed_ratios(r)} {r['peak_mb']:>9.0f}{ratios(r, 'peak_mb')} "
                         f"{r['gen_ms_per_image']:>10.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per variant (interleaved)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--gen-batch", type=int, default=None,
                        help="images per generation batch (default: synthesis.batch_size's default, 256)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--presets", default="paper,demo", help=f"comma list of {', '.join(PRESETS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision and channels_last as `generators.<model>.amp: true` (CUDA only)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if args.gen_batch is None:
        from catvae.config import defaults

        args.gen_batch = int(defaults("synthesis")["batch_size"])
    if args._worker:
        kind, preset, *variant = args._worker.split(":")
        result = measure_speed(preset, variants, args) if kind == "speed" else measure_memory(preset, variant[0], args)
        print(json.dumps(result))
        return
    presets = [p for p in args.presets.split(",") if p]
    unknown = [p for p in presets if p not in PRESETS] + [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown preset/variant: {', '.join(unknown)}")
    worker_argv = list(argv if argv is not None else sys.argv[1:])
    rows = []
    for preset in presets:
        speed = _spawn(f"speed:{preset}", worker_argv)
        for row in speed:
            row |= _spawn(f"memory:{preset}:{row['variant']}", worker_argv)
            print(f"done {preset}/{row['variant']}: {row['images_per_s']:.1f} img/s, "
                  f"steps {[round(t, 3) for t in row['step_s']]} s, "
                  f"peak {row['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
        rows.extend(speed)
    print(f"device {rows[0]['device']}, batch {args.batch} (generation {args.gen_batch}), img/s from the median of "
          f"{args.steps} interleaved steps "
          f"after {args.warmup} warm-up, speed ratios the median of the rounds' step-time ratios; threads "
          f"{args.threads}; amp {args.amp}; peak = {rows[0]['peak_kind']} (training only); ratios relative to "
          f"{' and '.join(BASELINES)}")
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
