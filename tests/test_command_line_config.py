"""Snakemake's own `--config` and a missing dataset folder, through the real `snakemake -n` (no job runs).

Snakemake parses a nested `--config` value with YAML's BaseLoader, so every nested scalar reaches the workflow as a
string; these tests prove the workflow reads them as the schema's types, and that a missing `dataset.root` stops
the workflow when it is parsed, before any job.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catvae.config import deep_update
from conftest import REPO, TINY_CONFIG, dry_run_jobs, run_snakemake, write_config


@pytest.fixture()
def study(tmp_path) -> tuple[Path, Path]:
    return tmp_path, write_config(tmp_path, TINY_CONFIG)


def _output(proc) -> str:
    return proc.stdout + proc.stderr  # a dry run reports errors on stdout, a run on stderr


def _arms(models: int, baselines: list[str], targets: int) -> int:
    """Classifier arms: none, `weighted` (no target), and every generator and resampling baseline at each target."""
    per_target = [b for b in baselines if b != "weighted"]
    return 1 + (len(baselines) - len(per_target)) + (models + len(per_target)) * targets


@pytest.mark.parametrize(
    "value",
    ["generators={catvae: {lr: 0.0005}}", 'generators={"catvae": {"lr": 5.0e-4}}', "generators={catvae: {lr: 5e-4}}"],
)
def test_nested_number(study, value):
    workdir, config = study
    plain = dry_run_jobs(workdir, config)
    assert dry_run_jobs(workdir, config, "--config", value) == plain


def test_nested_number_out_of_range_or_not_a_number(study):
    workdir, config = study
    proc = run_snakemake(workdir, config, "-n", "--config", "generators={catvae: {lr: -0.001}}")
    assert proc.returncode != 0
    assert "config key 'generators.catvae.lr': -0.001 is less than or equal to the minimum of 0" in _output(proc)
    proc = run_snakemake(workdir, config, "-n", "--config", "generators={catvae: {lr: fast}}")
    assert proc.returncode != 0
    assert "config key 'generators.catvae.lr': expected a number, got the string 'fast'" in _output(proc)


def test_nested_boolean(study):
    workdir, config = study
    plain = dry_run_jobs(workdir, config)
    assert "paper_protocol_table" not in plain
    on = dry_run_jobs(workdir, config, "--config", "classifier={paper_protocol: true}")
    assert on["paper_protocol_table"] == 1
    # The string 'false' would be truthy: only a real boolean turns the table off again.
    (workdir / "on").mkdir()
    with_table = write_config(workdir / "on", deep_update(TINY_CONFIG, {"classifier": {"paper_protocol": True}}))
    off = dry_run_jobs(workdir, with_table, "--config", "classifier={paper_protocol: false}")
    assert off == plain


def test_lists(study):
    workdir, config = study
    models, baselines = len(TINY_CONFIG["generators"]["models"]), TINY_CONFIG["classifier"]["baselines"]
    folds, replicates = TINY_CONFIG["evaluation"]["folds"], TINY_CONFIG["generators"]["replicates"]
    jobs = dry_run_jobs(workdir, config, "--config", "synthesis={targets: [7, 11, balance]}", "seeds=[0, 3]")
    assert jobs["train_classifier"] == _arms(models, baselines, 3) * 2 * folds
    jobs = dry_run_jobs(workdir, config, "--config", "generators={models: [catvae]}")
    # catvae per class (Tumor, NoTumor), per replicate and fold; no cvae, so no latent export
    assert jobs["train_generator"] == 2 * replicates * folds and "export_latents" not in jobs


@pytest.mark.parametrize("run", [["-n"], []], ids=["dry-run", "run"])
def test_missing_dataset_root_stops_before_any_job(tmp_path, run):
    proc = run_snakemake(tmp_path, REPO / "config" / "paper.yaml", *run)
    assert proc.returncode != 0
    expected = tmp_path / "data" / "BraTS2020_TrainingData" / "MICCAI_BraTS2020_TrainingData"
    assert f"config key 'dataset.root': folder not found: {expected}" in _output(proc)
    assert "Job stats" not in _output(proc)
    assert not (tmp_path / "results").exists()


def test_missing_folder_dataset_root(tmp_path):
    proc = run_snakemake(tmp_path, REPO / "config" / "busi.yaml", "-n")
    assert proc.returncode != 0
    assert f"config key 'dataset.root': folder not found: {tmp_path / 'data' / 'Dataset_BUSI_with_GT'}" in _output(proc)


def test_dataset_root_from_the_command_line(tmp_path):
    """The README's `--config dataset='{root: ...}'` points the paper preset at a copy elsewhere."""
    copy = tmp_path / "elsewhere" / "BraTS2020"
    proc = run_snakemake(tmp_path, REPO / "config" / "paper.yaml", "-n", "--config", f"dataset={{root: {copy}}}")
    assert proc.returncode != 0 and f"folder not found: {copy}" in _output(proc)
    copy.mkdir(parents=True)
    jobs = dry_run_jobs(tmp_path, REPO / "config" / "paper.yaml", "--config", f"dataset={{root: {copy}}}")
    assert jobs["extract"] == 1 and jobs["train_generator"] == 7 * 3 * 5  # 7 generator jobs x 3 replicates x 5 folds
