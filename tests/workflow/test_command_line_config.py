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
    for i in range(5):  # subject folders only: the pre-flight counts them against paper.yaml's 5 folds
        (copy / f"BraTS20_Training_{i:03d}").mkdir(parents=True)
    jobs = dry_run_jobs(tmp_path, REPO / "config" / "paper.yaml", "--config", f"dataset={{root: {copy}}}")
    assert jobs["extract"] == 1 and jobs["train_generator"] == 7 * 3 * 5  # 7 generator jobs x 3 replicates x 5 folds


@pytest.mark.parametrize("config_file", ["config/busi.yaml", "config/paper.yaml"])
def test_configfile_runs_that_file_over_the_schema_defaults(tmp_path, config_file):
    """From the repository root, `--configfile F` runs F over the schema's defaults, not over the demo config.

    Before the fix the Snakefile loaded config/config.yaml first and Snakemake merged F over it: every key F leaves
    out kept the demo's value (busi.yaml ran with the demo's `tstr_images: 500` and `gmm` sampling). The settings the
    workflow uses (`config.resolved.yaml`) must equal what `catvae validate-config --show` says of F, given the same
    command-line values.
    """
    import subprocess

    import numpy as np
    from PIL import Image

    from catvae.config import dump_config, load_config, read_yaml
    from conftest import SNAKEMAKE

    root = tmp_path / "data"
    if config_file.endswith("busi.yaml"):
        for cls in ("normal", "benign", "malignant"):
            (root / cls).mkdir(parents=True)
            for i in range(4):
                Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / cls / f"{cls} ({i}).png")
    else:  # folders only: the pre-flight counts the subject folders against paper.yaml's 5 folds
        for i in range(5):
            (root / f"BraTS20_Training_{i:03d}").mkdir(parents=True)
    overrides = {"results": str(tmp_path / "results"), "dataset": {"root": str(root)}}
    name = read_yaml(REPO / config_file)["dataset"]["name"]
    target = tmp_path / "results" / name / "config.resolved.yaml"
    cmd = [SNAKEMAKE, "--configfile", config_file, "--cores", "1", "--nolock", "--workflow-profile", "none",
           "--config", f"results={overrides['results']}", f"dataset={{root: {root}}}", "--", str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = read_yaml(target)
    expected = load_config(REPO / config_file, overrides=overrides)
    assert ran == expected
    header = [line for line in target.read_text().splitlines() if line.startswith("# from ")]
    assert header == [f"# from {REPO / config_file}"]  # the file actually used, and no other
    assert dump_config(ran) == dump_config(expected)
    demo = load_config(REPO / "config" / "config.yaml")
    assert ran["quality"]["tstr_images"] is None != demo["quality"]["tstr_images"]
    assert ran["generators"]["cvae"]["sampling"]["mode"] == "prior" != demo["generators"]["cvae"]["sampling"]["mode"]


def test_directory_dot_test_plans_the_tiny_study():
    """The catalog's convention: `snakemake --directory .test -n` finds .test/config/config.yaml and plans it."""
    import subprocess

    from conftest import SNAKEMAKE, job_counts

    cmd = [SNAKEMAKE, "--directory", ".test", "-n", "--quiet", "rules", "--nolock", "--workflow-profile", "none"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = job_counts(proc.stdout)
    assert jobs["train_classifier"] > 0 and jobs["phantom"] == 1


def test_preflight_summary_counts_the_jobs_snakemake_plans(study):
    """The summary's jobs by rule are computed from the config; they must be what `snakemake -n` plans, printed
    once."""
    from catvae.config import validate_config
    from catvae.data.kinds import dataset_classes
    from catvae.preflight import job_counts
    from conftest import job_counts as planned

    workdir, config = study
    for change in ({}, {"generators": {"models": ["vae", "catvae", "cvae"], "replicates": 2},
                        "classifier": {"paper_protocol": True}, "synthesis": {"targets": [20, "balance"]}}):
        cfg = deep_update(TINY_CONFIG, change)
        proc = run_snakemake(workdir, write_config(workdir, cfg), "-n", "--quiet", "rules")
        assert proc.returncode == 0, _output(proc)
        valid = validate_config(cfg)
        assert planned(proc.stdout) == job_counts(valid, dataset_classes(valid["dataset"]))
        assert proc.stderr.count("catvae pre-flight:") == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seeds": [0, 1, 0]}, "config key 'seeds': 0 is given more than once in [0, 1, 0]"),
        ({"evaluation": {"folds": 9}}, "config key 'evaluation.folds' is 9 but there are only 8 subjects"),
        ({"synthesis": {"targets": [10**12]}}, "config key 'synthesis.targets': the study needs an estimated"),
    ],
)
def test_settings_that_would_skew_or_overflow_a_study_are_refused_when_the_workflow_is_read(study, change, message):
    workdir, _ = study
    proc = run_snakemake(workdir, write_config(workdir, deep_update(TINY_CONFIG, change)), "-n")
    assert proc.returncode != 0
    assert message in _output(proc)
    assert "Building DAG of jobs" not in _output(proc)  # refused when the workflow is read, before planning
    assert not (workdir / "results").exists()


def test_checkpoints_that_do_not_fit_stop_a_run_before_its_first_job(study):
    """A dry run checks the PNGs only (sizing the models imports torch); a run adds the checkpoints when it starts.

    `preflight.reserve_gb` is set so that the PNGs fit and the PNGs with the checkpoints do not: `-n` plans the
    study, a run stops before any job with the disk message.
    """
    from catvae.config import validate_config
    from catvae.data.kinds import dataset_classes
    from catvae.preflight import checkpoint_bytes, free_bytes, plan

    workdir, _ = study
    cfg = deep_update(TINY_CONFIG, {"classifier": {"image_size": 128}})  # ~13 MB per classifier checkpoint
    valid = validate_config(cfg)
    classes = dataset_classes(valid["dataset"])
    pngs, saved = plan(valid, classes).disk_bytes, sum(checkpoint_bytes(valid, classes, ["flair"]).values())
    reserve = (free_bytes(workdir) - pngs - saved // 2) / 1e9  # half the checkpoints' size either side
    config = write_config(workdir, deep_update(cfg, {"preflight": {"reserve_gb": reserve}}))
    assert run_snakemake(workdir, config, "-n").returncode == 0
    proc = run_snakemake(workdir, config)
    assert proc.returncode != 0
    assert "of checkpoints, plus preflight.reserve_gb" in _output(proc)
    assert not (workdir / "results" / "tiny" / "phantom").exists()  # no job ran
