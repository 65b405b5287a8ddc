"""The fixed cost of one study job: from process start to its first training step, phase by phase.

Why: the paper study is 800 jobs, and each job is a fresh Python process that pays the interpreter, Snakemake's
script preamble, the imports, the data decode and the model set-up before its first training step. This starts
each measured job the way Snakemake does (a new interpreter), runs the study's own code for it (the `catvae` CLI's
train-generator and classify commands, which call what the rules call) and stops it at its first optimiser step
(a global optimiser step hook). It prints, per job kind, the median over `--repeats` of:

- interpreter: process spawn to the script's first statement;
- snakemake preamble: importing `snakemake.script`, what every Snakemake `script:` job does first;
- imports: the job's catvae module (torch, scikit-learn, ... with it);
- data decode: the job's image loading (`load_images`), summed;
- set-up + first step: everything else up to the end of the first optimiser step (config, device and CUDA context,
  model, optimiser, the step itself);
- total: spawn to the end of the first step.

The data is a phantom cohort made with the same config (phantom -> extract -> fold-0 split, through the CLI).

    .venv/bin/python bench/startup.py                                    # demo config, CPU
    python bench/startup.py --config config/paper.yaml --device cuda --subjects 369
"""

import time

T_FIRST_STATEMENT = time.time()  # noqa: E402  (before any import: the child's interpreter start ends here)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# The module each measured job's Snakemake script imports first (workflow/scripts/<rule>.py).
JOB_MODULES = {"train_generator": "catvae.generators.train", "train_classifier": "catvae.classifier.train"}


class _FirstStep(Exception):
    """Raised by the optimiser hook after the first step: the job's start-up is over."""


def child(spec: dict) -> None:
    """One measured job, in a fresh interpreter: print its phase timestamps as JSON on the last line."""
    marks = {"first_statement": T_FIRST_STATEMENT}
    import snakemake.script  # noqa: F401  (what the preamble of every Snakemake script job imports)

    marks["snakemake_preamble"] = time.time()
    module = __import__(JOB_MODULES[spec["rule"]], fromlist=["load_images"])
    marks["imports"] = time.time()

    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    decode = [0.0]
    load_images = module.load_images

    def timed_load(*args, **kwargs):
        start = time.perf_counter()
        try:
            return load_images(*args, **kwargs)
        finally:
            decode[0] += time.perf_counter() - start

    module.load_images = timed_load

    def first_step(optimizer, args, kwargs):
        if torch.cuda.is_available() and spec["device"] != "cpu":
            torch.cuda.synchronize()
        raise _FirstStep

    register_optimizer_step_post_hook(first_step)
    from catvae.cli import main

    try:
        main(spec["argv"])
    except _FirstStep:
        pass
    else:
        raise RuntimeError(f"{spec['rule']} ended without an optimiser step")
    marks["first_step"] = time.time()
    marks["decode_s"] = decode[0]
    print(json.dumps(marks))


def run_child(spec: dict, env: dict) -> dict:
    """Spawn one measured job and return its phases in seconds."""
    spawned = time.time()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['rule']} failed:\n{proc.stderr[-3000:]}")
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    setup = m["first_step"] - m["imports"] - m["decode_s"]
    return {
        "interpreter": m["first_statement"] - spawned,
        "snakemake_preamble": m["snakemake_preamble"] - m["first_statement"],
        "imports": m["imports"] - m["snakemake_preamble"],
        "data_decode": m["decode_s"],
        "setup_and_first_step": setup,
        "total": m["first_step"] - spawned,
    }


def prepare(config: Path, work: Path, device: str, subjects: int | None, shape: list[int] | None,
            env: dict) -> tuple[Path, Path, dict]:
    """A phantom cohort for `config` (its dataset block, `dataset.phantom` sizes): (config copy, fold-0 split, cfg)."""
    import yaml

    from catvae.config import load_config

    cfg = load_config(str(config))
    cfg["device"] = device
    ds = cfg["dataset"]
    if ds["kind"] != "phantom":  # a BraTS config: the same slices, from a phantom cohort of the BraTS size
        ds.update(kind="phantom", root=None, name="phantom")
        ds.pop("brats", None)
    ds["phantom"] = {**ds.get("phantom", {}), "n_subjects": subjects or ds["phantom"]["n_subjects"],
                     "shape": shape or ds["phantom"]["shape"]}
    config_copy = work / "config.yaml"
    config_copy.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cli = [sys.executable, "-m", "catvae"]
    opts = ["--config", str(config_copy), "--threads", "2"]
    for argv in (["phantom", "--out", str(work / "cohort")],
                 ["extract", "--root", str(work / "cohort"), "--out", str(work / "data")],
                 ["split", "--manifest", str(work / "data" / "manifest.csv"), "--out", str(work / "split.csv")]):
        subprocess.run([*cli, argv[0], *opts, *argv[1:]], check=True, env=env, cwd=REPO, capture_output=True)
    return config_copy, work / "split.csv", load_config(str(config_copy))


def job_specs(config: Path, split: Path, cfg: dict, work: Path, device: str) -> dict[str, dict]:
    """The measured jobs: the config's first generator on its first class, and the real-only classifier arm."""
    from catvae.data.kinds import dataset_classes
    from catvae.registry import generator

    model = cfg["generators"]["models"][0]
    group = generator(model).group_of(dataset_classes(cfg["dataset"])[-1])
    opts = ["--config", str(config), "--threads", "2", "--split", str(split)]
    return {
        f"train_generator ({model}/{group})": {
            "rule": "train_generator", "device": device,
            "argv": ["train-generator", *opts, "--model", model, "--group", group, "--out", str(work / "gen")]},
        "train_classifier (arm none)": {
            "rule": "train_classifier", "device": device,
            "argv": ["classify", *opts, "--arm", "none", "--out", str(work / "clf")]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"))
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (written into the config copy)")
    parser.add_argument("--subjects", type=int, help="phantom subjects (default: the config's dataset.phantom)")
    parser.add_argument("--shape", type=int, nargs=3, help="phantom volume shape (default: the config's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sys.path.insert(0, str(REPO))
        config, split, cfg = prepare(Path(args.config), work, args.device, args.subjects, args.shape, env)
        bare = []
        for _ in range(args.repeats):
            spawned = time.time()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare.append(time.time() - spawned)
        results = {"python -c pass": {"total": statistics.median(bare)}}
        for name, spec in job_specs(config, split, cfg, work, args.device).items():
            runs = [run_child(spec, env) for _ in range(args.repeats)]
            results[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    ds = cfg["dataset"]
    print(f"per-job start-up, median of {args.repeats} (device {args.device}, {ds['phantom']['n_subjects']} phantom "
          f"subjects, {ds['channels']}x{ds['image_size']}px; classifier at {cfg['classifier']['image_size']}px)")
    phases = ["interpreter", "snakemake_preamble", "imports", "data_decode", "setup_and_first_step", "total"]
    print(f"{'job':34s}" + "".join(f"{p:>22s}" for p in phases))
    for name, figures in results.items():
        print(f"{name:34s}" + "".join(f"{figures[p]:>21.2f}s" if p in figures else f"{'':>22s}" for p in phases))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "repeats": args.repeats, "jobs": results},
                                              indent=1))


if __name__ == "__main__":
    main()
