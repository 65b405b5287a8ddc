"""README "Quick start on your own BraTS copy": its commands run as written on a BraTS-layout folder.

The folder is a tiny phantom cohort written by `catvae phantom` (BraTS 2020 layout and labels). The dry run is the
README's command exactly, and must plan the number of jobs the README states. The real run is the README's command
with values merged into its `--config`: image size and epochs shrunk, and the design cut to one generator (the VAE),
one target, one seed and no baselines, so it runs every stage from the BraTS folder to the tables in about 20 jobs
instead of 69 (what the README's design adds, more arms of the same stages, is the tiny study's to test:
tests/workflow/test_workflow.py); it must run exactly the jobs its own dry run plans.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from catvae.config import deep_update
from conftest import REPO, SNAKEMAKE, job_counts
from workflow.test_readme_changes import readme_section, section_commands

pytestmark = pytest.mark.workflow

SECTION = "Quick start on your own BraTS copy"
PLACEHOLDER = "/data/BraTS2020"
SHRINK = {
    "dataset": {"image_size": 16},
    "seeds": [0],
    "generators": {"models": ["vae"], "vae": {"epochs": 1}},
    "synthesis": {"targets": [437]},
    "classifier": {"image_size": 32, "epochs": 2, "baselines": []},
    "quality": {"tstr_images": 30, "max_fid_images": 50},
}


def _flow(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


def _run(workdir: Path, words: list[str], timeout: int = 3600) -> subprocess.CompletedProcess:
    """`snakemake WORDS` as if typed in a checkout at `workdir` (its config/config.yaml is the repository's)."""
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--workflow-profile", "none", *words]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))


def _shrunk(words: list[str]) -> list[str]:
    """The command with SHRINK merged into its `--config` values (the README's design itself unchanged)."""
    start = words.index("--config") + 1
    given = {key: yaml.safe_load(value) for key, value in (word.split("=", 1) for word in words[start:])}
    return words[:start] + [f"{key}={_flow(value)}" for key, value in deep_update(given, SHRINK).items()]


def test_quick_start_runs_as_written_on_a_brats_layout_folder(tmp_path):
    commands = section_commands(readme_section(SECTION))
    dry = [c for c in commands if "-n" in c]
    run = [c for c in commands if "--cores" in c and "-n" not in c]
    assert len(dry) == 1 and len(run) == 1, commands
    cohort = tmp_path / "BraTS2020"
    proc = subprocess.run([sys.executable, "-m", "catvae", "phantom", "--out", str(cohort), "--subjects", "16",
                           "--shape", "40", "48", "32"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    workdir = tmp_path / "checkout"
    (workdir / "config").mkdir(parents=True)
    shutil.copy(REPO / "config" / "config.yaml", workdir / "config" / "config.yaml")

    def here(words: list[str]) -> list[str]:
        return [w.replace(PLACEHOLDER, str(cohort)) for w in words]

    proc = _run(workdir, here(dry[0]))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    total = re.search(r"^total\s+(\d+)$", proc.stdout + proc.stderr, flags=re.M)
    assert total, proc.stdout[-2000:]
    assert f"**{total.group(1)} jobs**" in readme_section(SECTION), f"the README must state {total.group(1)} jobs"

    words = _shrunk(here(run[0]))
    plan = _run(workdir, ["-n", *words])
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = re.search(r"^total\s+(\d+)$", plan.stdout + plan.stderr, flags=re.M)
    stages = {"extract", "split", "train_generator", "synthesise", "evaluate_generator", "tstr", "train_classifier",
              "classification_table", "comparisons_table", "provenance"}
    assert stages <= set(job_counts(plan.stdout + plan.stderr)), plan.stdout[-2000:]
    proc = _run(workdir, words)
    assert proc.returncode == 0, proc.stderr[-6000:]
    # Long jobs report progress on Snakemake's console (the jobs' stderr), each line naming the rule's log file.
    assert re.search(r"\[results/mybrats/logs/train_generator/\S+\.log\] vae/\w+ epoch 1/1", proc.stderr)
    assert re.search(r"\[results/mybrats/logs/train_classifier/\S+\.log\] .*epoch 1/2", proc.stderr)
    done = job_counts(proc.stdout + proc.stderr)
    assert sum(done.values()) == int(planned.group(1)), done
    results = workdir / "results" / "mybrats"
    assert (results / "tables" / "classification.md").is_file()
    assert not (results / "phantom").exists()  # the BraTS copy was read, no phantom written
    manifest = pd.read_csv(results / "data" / "manifest.csv")
    assert set(manifest["subject"]) <= {p.name for p in cohort.iterdir()} and len(manifest) > 0
