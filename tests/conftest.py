"""Shared fixtures: a tiny study config and a helper that runs Snakemake on it in a temporary folder."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# The tiny test study (.test/config/config.yaml, the Snakemake catalog's convention): see the comments there.
TINY_CONFIG: dict = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())


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


@pytest.fixture(autouse=True)
def _restore_catvae_logger():
    """Steps called in-process (the CLI tests) route the `catvae` logger to a file or stderr, set its level and stop
    propagation (catvae.logs.setup_logging); put it back after each test, so a later test's caplog sees what it
    would see alone."""
    logger = logging.getLogger("catvae")
    saved = logger.level, list(logger.handlers), logger.propagate
    yield
    for handler in list(logger.handlers):
        if handler not in saved[1]:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


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



# The end-to-end files, longest first. `scripts/test.sh` runs pytest-xdist with `--dist loadfile` (one file per
# worker at a time, in collection order): started first, the long files overlap each other and the many short unit
# files fill the gaps, instead of one long file starting last and running alone. Measured on 2 idle cores (186 GFLOP/s,
# 2048x2048 float32 matmul): the tiny study 507 s, the SLURM study 313 s, the dataset kinds 220 s, "Changing one
# thing" 187 s, the quick start 100 s, the SIGKILL tests 82 s; the first two start together.
# Without xdist only the order changes.
LONG_FILES_FIRST = (
    "test_workflow.py",
    "test_slurm_study.py",
    "test_dataset_kinds_workflow.py",
    "test_readme_changes.py",
    "test_readme_quickstart.py",
    "test_workflow_kill.py",
    "test_command_line_config.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order
