"""The paper study at paper scale on one GPU node: one slice measured, the whole 800-job study extrapolated.

Why: the paper preset (config/paper.yaml: 5 folds x 3 seeds x 3 generator replicates, 800 jobs) is what users run on
their BraTS copy, and its wall time on one GPU node had only been estimated. This runs, through Snakemake and
profiles/gpunode (`--gpu-jobs` GPU jobs at once on the GPU), one slice of that study on a BraTS-sized phantom
cohort (`--subjects` 369, one slice per plane each, 3x128x128, as the paper preset): fold 0 with generator
replicate 0 and classifier seed 0 (seed k reads replicate k, so the study is 15 such slices: 5 folds x 3), at the
paper's epochs times `--epoch-scale`. It prints:

- per rule: jobs, mean and total job wall time (Snakemake's benchmark files), the training part of it (read from
  train_stats.json / history.csv) and that time at the paper's epochs when `--epoch-scale` < 1 (training time is
  linear in epochs; the rest of the job is not);
- per rule: peak GPU memory of one job (the job process's own `nvidia-smi` figure, CUDA context included, sampled
  every 0.5 s), peak host RSS (benchmark max_rss);
- the slice's wall time, the GPU's mean utilisation while it ran;
- aggregate training throughput with 1 and with `--gpu-jobs` processes on the GPU at once
  (bench/train_classifier.py at the paper preset, and bench/train_generators.py with the faithful CAT-VAE);
- the whole study extrapolated two ways: (a) per-rule mean job times x the study's job counts (from its dry run),
  divided by `--gpu-jobs` (perfect packing: a lower bound), and (b) the slice's wall time x 15 plus the data stage
  (slices run one after another: an upper bound, as a full run overlaps them).

It reads nothing of a real dataset and writes everything under `--work` (default: a temporary folder).

    python bench/gpu_paper_scale.py --epoch-scale 0.5              # on a GPU node (bench/gpu_paper_scale.sh)
    .venv/bin/python bench/gpu_paper_scale.py --smoke              # the same steps on a CPU at toy sizes
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SLICES = 15  # 5 folds x 3 (seed k, generator replicate k)
# Rules whose jobs train for `epochs` (the part `--epoch-scale` shortens), and where their training time is read.
TRAINING_RULES = ("train_generator", "train_classifier", "tstr")


def study_config(args: argparse.Namespace, results: Path) -> dict:
    """config/paper.yaml with a phantom cohort instead of the BraTS folder and the epochs times `--epoch-scale`."""
    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cfg.update(config_name="paper-scale-bench", results=str(results), device=args.device)
    ds = cfg["dataset"]
    ds.update(name="phantom", kind="phantom", root=None,
              phantom={"n_subjects": args.subjects, "shape": list(args.shape), "seed": 0})
    ds.pop("brats", None)
    models = cfg["generators"]["models"]
    for name in models:
        cfg["generators"][name]["epochs"] = max(1, round(cfg["generators"][name]["epochs"] * args.epoch_scale))
    cfg["classifier"]["epochs"] = max(1, round(cfg["classifier"]["epochs"] * args.epoch_scale))
    if args.smoke:  # toy sizes: only this script's plumbing is under test
        ds.update(image_size=16, channels=1, filter={"min_brain_fraction": 0.05, "min_std": 0.01})
        for name in models:
            cfg["generators"][name].update(epochs=1, batch_size=16)
        cfg["generators"]["catvae"]["attention"] = "fused"
        cfg["generators"]["cvae"]["beta_warmup"] = {"start": 0, "epochs": 1}
        cfg["synthesis"]["targets"] = ["balance"]
        cfg["quality"].update(max_fid_images=50, tstr_images=30)
        cfg["classifier"].update(image_size=32, channels=1, epochs=2, batch_size=16)
        cfg["evaluation"]["bootstrap"] = 100
    return cfg


def snakemake(work: Path, config: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in `work`; past `timeout` s, stop it and the jobs it started (its session)."""
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(work), "--configfile", str(config), "--workflow-profile", "none", *args]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate()
        err += f"\nstopped after {timeout} s (--step-timeout)"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def plan(work: Path, config: Path) -> list[dict]:
    """Every job of the whole study, as its dry run lists it: rule, wildcards, output and benchmark files."""
    proc = snakemake(work, config, "-n", "--forceall", "--rerun-incomplete", "--cores", "1")  # every job, whatever is already done
    if proc.returncode != 0:
        raise SystemExit(f"dry run failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    jobs, job = [], None
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.strip()
        if match := re.match(r"^(?:local)?rule (\w+):$", line):
            job = {"rule": match.group(1), "wildcards": {}, "output": [], "benchmark": None}
            jobs.append(job)
        elif job and line.startswith("output: "):
            job["output"] = line[8:].split(", ")
        elif job and line.startswith("benchmark: "):
            job["benchmark"] = line[11:]
        elif job and line.startswith("wildcards: "):
            job["wildcards"] = dict(item.split("=", 1) for item in line[11:].split(", "))
    return [j for j in jobs if j["rule"] != "all"]


def in_slice(job: dict) -> bool:
    """Fold 0, generator replicate 0, classifier seed 0 (and the data stage every slice shares)."""
    w = job["wildcards"]
    if "fold" not in w:
        return job["rule"] in ("phantom", "extract")
    return w["fold"] == "0" and w.get("rep", "0") == "0" and w.get("seed", "0") == "0"


class GpuSampler(threading.Thread):
    """Every 0.5 s: each job process's GPU memory (by the rule its script names) and the GPU's utilisation."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb: dict[str, float] = defaultdict(float)
        self.utilisation: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                       "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
                util = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                      capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.SubprocessError):
                return  # no GPU here (the smoke run): nothing to sample
            self.utilisation += [float(v) for v in util.stdout.split() if v.strip().isdigit()]
            for line in apps.stdout.splitlines():
                pid, _, used = (part.strip() for part in line.partition(","))
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                # Snakemake runs a rule's script as a temporary copy named ...<script name>.py
                match = re.search(r"(\w+)\.py", cmdline.replace("\0", " ").split(" ")[-1] if cmdline else "")
                if match and used.isdigit():
                    self.peak_mb[match.group(1)] = max(self.peak_mb[match.group(1)], float(used))


def training_seconds(job: dict) -> float:
    """Seconds a training job spent in its epochs (what `--epoch-scale` shortens), read from its outputs."""
    out = job["output"]
    if job["rule"] == "train_generator":
        return float(json.loads(Path(next(p for p in out if p.endswith("train_stats.json"))).read_text())["wall_time_s"])
    if job["rule"] == "tstr":
        return float(json.loads(Path(next(p for p in out if p.endswith("tstr.json"))).read_text())["train_seconds"])
    with open(next(p for p in out if p.endswith("history.csv"))) as fh:
        return sum(float(row["seconds"]) for row in csv.DictReader(fh))


def benchmark(work: Path, job: dict) -> dict:
    """Snakemake's benchmark row of a finished job (wall seconds `s`, `max_rss` MB)."""
    with open(work / job["benchmark"]) as fh:
        row = next(csv.DictReader(fh, delimiter="\t"))
    rss = row.get("max_rss", "")
    return {"s": float(row["s"]), "max_rss": float(rss) if rss.replace(".", "", 1).isdigit() else 0.0}


def packing(args: argparse.Namespace, out: Path) -> dict:
    """Aggregate img/s of 1 and of `--gpu-jobs` concurrent training processes (classifier, faithful CAT-VAE)."""
    benches = {
        "classifier": ["bench/train_classifier.py", "--presets", "paper" if not args.smoke else "demo",
                       "--images", "4096" if not args.smoke else "64", "--epochs", "4" if not args.smoke else "2"],
        "catvae-faithful": ["bench/train_generators.py", "--presets", "paper" if not args.smoke else "demo",
                            "--variants", "catvae-faithful", "--steps", "60" if not args.smoke else "2",
                            "--warmup", "5" if not args.smoke else "0"],
    }
    result = {}
    for name, argv in benches.items():
        for n in sorted({1, args.gpu_jobs}):
            files = [out / f"pack_{name}_{n}_{i}.json" for i in range(n)]
            procs = [subprocess.Popen([sys.executable, *argv, "--device", args.device, "--json", str(f)], cwd=REPO,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for f in files]
            for proc in procs:
                if proc.wait(timeout=args.step_timeout) != 0:  # (a hung one ends with this script's time limit)
                    raise SystemExit(f"packing bench {name} x{n} failed:\n{proc.stderr.read()[-2000:]}")
            rates = [json.loads(f.read_text())[0]["images_per_s"] for f in files]
            result[f"{name} x{n}"] = {"processes": n, "aggregate_img_s": sum(rates), "per_process_img_s": rates}
        one, many = result[f"{name} x1"]["aggregate_img_s"], result[f"{name} x{args.gpu_jobs}"]["aggregate_img_s"]
        result[f"{name} x{args.gpu_jobs}"]["x_one_job"] = many / one
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="the config's device (cuda on a GPU node, cpu with --smoke)")
    parser.add_argument("--subjects", type=int, default=369, help="phantom subjects (BraTS 2020: 369)")
    parser.add_argument("--shape", type=int, nargs=3, default=(120, 120, 78),
                        help="phantom volume shape (slices are resized to 128x128 by extraction)")
    parser.add_argument("--epoch-scale", type=float, default=1.0, help="fraction of the paper's epochs to run")
    parser.add_argument("--gpu-jobs", type=int, default=4, help="GPU jobs at once (profiles/gpunode's pool)")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/gpu_paper_scale")))
    parser.add_argument("--step-timeout", type=int, default=420, help="seconds the slice (and each packing run) may take")
    parser.add_argument("--skip-packing", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="toy sizes on a CPU: checks this script, measures nothing")
    args = parser.parse_args()
    if args.smoke:
        args.device, args.subjects, args.shape = "cpu", 20, (40, 48, 32)
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="paper_scale_"))
    if (work / "results").exists():
        raise SystemExit(f"{work} already holds results: the slice's wall time needs a fresh --work folder")
    work.mkdir(parents=True, exist_ok=True)
    config = work / "config.yaml"
    cfg = study_config(args, Path("results"))
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    (args.out / "config.yaml").write_text(config.read_text())

    jobs = plan(work, config)
    per_rule_study = defaultdict(int)
    for job in jobs:
        per_rule_study[job["rule"]] += 1
    sliced = [j for j in jobs if in_slice(j)]
    targets = [p for j in sliced for p in j["output"]]
    print(f"study: {len(jobs)} jobs; slice (fold 0, replicate 0, seed 0, and the data stage): {len(sliced)} jobs; "
          f"epochs x{args.epoch_scale}; {args.gpu_jobs} GPU jobs at once; device {args.device}", flush=True)

    sampler = GpuSampler()
    sampler.start()
    started = time.perf_counter()
    proc = snakemake(work, config, "--profile", str(REPO / "profiles" / "gpunode"), "--resources",
                     f"gpu={args.gpu_jobs}", "--cores", args.cores, *targets, timeout=args.step_timeout)
    wall = time.perf_counter() - started
    sampler.stop.set()
    (args.out / "snakemake.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"the slice failed after {wall:.0f} s:\n{proc.stderr[-3000:]}")

    rules: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "s": [], "train_s": [], "paper_s": [], "max_rss": 0.0})
    for job in sliced:
        row, r = benchmark(work, job), rules[job["rule"]]
        job["output"] = [str(work / p) for p in job["output"]]
        train = training_seconds(job) if job["rule"] in TRAINING_RULES else 0.0
        r["jobs"] += 1
        r["s"].append(row["s"])
        r["train_s"].append(train)
        r["paper_s"].append(row["s"] - train + train / args.epoch_scale)
        r["max_rss"] = max(r["max_rss"], row["max_rss"])
    data_stage = sum(sum(rules[rule]["paper_s"]) for rule in ("phantom", "extract") if rule in rules)

    print(f"\nslice wall time {wall:.0f} s; GPU utilisation mean "
          f"{statistics.mean(sampler.utilisation):.0f}%" if sampler.utilisation else
          f"\nslice wall time {wall:.0f} s; no GPU sampled")
    head = (f"{'rule':22} {'jobs':>5} {'mean s':>8} {'total s':>8} {'train s':>8} {'at paper epochs s':>18} "
            f"{'study jobs':>10} {'GPU MB/job':>10} {'RSS MB':>8}")
    print(head + "\n" + "-" * len(head))
    study_job_seconds, summary = 0.0, {}
    for rule, r in sorted(rules.items()):
        mean_paper = statistics.mean(r["paper_s"])
        if rule not in ("phantom", "extract"):
            study_job_seconds += mean_paper * per_rule_study[rule]
        gpu_mb = sampler.peak_mb.get(rule)
        summary[rule] = {"jobs": r["jobs"], "mean_s": statistics.mean(r["s"]), "total_s": sum(r["s"]),
                         "train_s": sum(r["train_s"]), "mean_s_paper_epochs": mean_paper,
                         "study_jobs": per_rule_study[rule], "gpu_peak_mb": gpu_mb, "max_rss_mb": r["max_rss"]}
        print(f"{rule:22} {r['jobs']:>5} {statistics.mean(r['s']):>8.1f} {sum(r['s']):>8.1f} {sum(r['train_s']):>8.1f}"
              f" {sum(r['paper_s']):>18.1f} {per_rule_study[rule]:>10} {gpu_mb or 0:>10.0f} {r['max_rss']:>8.0f}")
    missing = sorted(set(per_rule_study) - set(rules))
    scale = sum(sum(r["paper_s"]) for r in rules.values()) / max(1e-9, sum(sum(r["s"]) for r in rules.values()))
    lower = study_job_seconds / args.gpu_jobs + data_stage
    upper = (wall * scale - data_stage) * SLICES + data_stage
    print(f"\nwhole study ({len(jobs)} jobs) on this node, {args.gpu_jobs} GPU jobs at once, at the paper's epochs:\n"
          f"  (a) per-rule mean job time x study job counts / {args.gpu_jobs} + data stage: {lower / 60:.1f} min "
          f"(lower bound: perfect packing)\n"
          f"  (b) slice wall time x {SLICES} slices + data stage: {upper / 60:.1f} min (upper bound: slices one after "
          f"another){'; slice time scaled x%.2f to the paper epochs' % scale if args.epoch_scale != 1 else ''}\n"
          f"  not in the slice, so not counted: {', '.join(missing) or 'nothing'} (report rules, CPU, seconds each)")
    result = {"device": args.device, "epoch_scale": args.epoch_scale, "gpu_jobs": args.gpu_jobs,
              "subjects": args.subjects, "slice_wall_s": wall, "gpu_utilisation_mean": (
                  statistics.mean(sampler.utilisation) if sampler.utilisation else None),
              "rules": summary, "study_jobs": len(jobs), "study_minutes_lower": lower / 60,
              "study_minutes_upper": upper / 60, "not_counted": missing}
    if not args.skip_packing:
        result["packing"] = packing(args, args.out)
        print(f"\naggregate training throughput, 1 and {args.gpu_jobs} processes on one device at once:")
        for name, row in result["packing"].items():
            print(f"  {name:22} {row['aggregate_img_s']:>10.0f} img/s"
                  + (f"  ({row['x_one_job']:.2f}x one process)" if "x_one_job" in row else ""))
    (args.out / "paper_scale.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
