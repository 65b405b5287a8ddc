"""Shared fixtures: a tiny study config and a helper that runs Snakemake on it in a temporary folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# The whole study, shrunk to run in a few minutes on 2 CPU cores: a few tiny phantom brains, 16x16 slices, one
# epoch everywhere (two for the classifier, so an epoch is chosen), small targets; and every axis of the design at
# its smallest non-trivial size: 2 folds x 2 seeds, 2 generator replicates.
TINY_CONFIG: dict = {
    "config_name": "tiny-test",
    "results": "results",
    "device": "cpu",
    "seeds": [0, 1],
    "evaluation": {"folds": 2},
    "dataset": {
        "name": "tiny",
        "kind": "phantom",
        "image_size": 16,
        "selection": {"mode": "center", "k": 3},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25, "seed": 0},
        "phantom": {"n_subjects": 8, "shape": [40, 48, 32], "seed": 0},
        "filter": {"min_brain_fraction": 0.05, "min_std": 0.01},
    },
    "generators": {
        "models": ["vae", "catvae", "cvae"],
        "replicates": 2,
        "vae": {"epochs": 1, "batch_size": 16},
        "catvae": {"epochs": 1, "batch_size": 16, "attention": "fused"},
        "cvae": {"epochs": 1, "batch_size": 16, "beta_warmup": {"start": 0, "epochs": 1}},
    },
    "synthesis": {"targets": [40, "balance"]},
    "quality": {"max_fid_images": 50, "tstr_images": 30},
    "classifier": {"image_size": 32, "epochs": 2, "batch_size": 16, "baselines": ["oversample", "classic", "weighted"]},
}


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(workdir: Path, config_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """(command, environment) that run the repository's Snakefile with `workdir` as working directory."""
    cmd = [
        SNAKEMAKE,
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(config_path),
        "--cores", "2",
        "--workflow-profile", "none",
        *args,
    ]
    return cmd, dict(os.environ, PYTHONPATH=str(REPO))


def run_snakemake(workdir: Path, config_path: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with `workdir` as working directory (results land there)."""
    cmd, env = snakemake_command(workdir, config_path, *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from Snakemake's job-stats table (`-n --quiet rules`); {} when nothing is to be done."""
    jobs = {}
    for line in output.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


def dry_run_jobs(workdir: Path, config_path: Path, *args: str) -> dict[str, int]:
    """Jobs per rule that `snakemake -n` plans (extra arguments such as `--config` go after)."""
    proc = run_snakemake(workdir, config_path, "-n", "--quiet", "rules", *args)
    assert proc.returncode == 0, proc.stderr
    return job_counts(proc.stdout + proc.stderr)


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    return yaml.safe_load(yaml.safe_dump(TINY_CONFIG))


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, tiny_config) -> Path:
    """Run the whole tiny study once per test session; tests then read its outputs."""
    workdir = tmp_path_factory.mktemp("study")
    config_path = write_config(workdir, tiny_config)
    # about 140 jobs (2 folds x 2 seeds x 2 generator replicates), each paying a Python + torch start-up: allow for a
    # loaded machine
    proc = run_snakemake(workdir, config_path, timeout=2400)
    if proc.returncode != 0:
        logs = "\n".join(
            f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "results").rglob("*.log"))[-6:]
        )
        pytest.fail(f"tiny study failed:\n{proc.stderr[-6000:]}\n{logs}")
    return workdir

