"""The study really runs through SLURM: `profiles/slurm` against a real single-node cluster on this machine.

Why a real cluster and not a mock: the failure modes are in the interplay of sbatch, the plugin's status
polling and the in-job step (environment, config lookup, GPU requests), which a mock cannot show.
The harness (slurm_cluster.py) installs slurm-wlm/munge when missing and skips, with the reason, when this
machine cannot host a cluster (not root, no apt-get, a foreign SLURM setup).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from catvae.report.tables import MEASURED_COLUMNS

from .slurm_cluster import ClusterUnavailable, SlurmCluster, ensure_installed

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
SLURM_PROFILE = REPO / "profiles" / "slurm"
# Tables, figures and provenance take seconds: the workflow declares them `localrules`, so they run in the
# submitting Snakemake process rather than as SLURM jobs (read from the rule file, so the two cannot drift).
REPORT_RULES = set(re.findall(r"^rule (\w+):", (REPO / "workflow" / "rules" / "report.smk").read_text(), flags=re.M))
SNAKEMAKE_TIMEOUT_S = 15 * 60
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """One cluster for the whole session (start ~1 s once installed), stopped and cleaned up after it."""
    try:
        ensure_installed()
        cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
        cluster.start()
    except ClusterUnavailable as exc:
        pytest.skip(f"no SLURM test cluster on this machine: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def slurm_options(cluster: SlurmCluster) -> list[str]:
    """What a user adds to `--profile profiles/slurm` (README.md, "On a cluster"), plus this cluster's particulars.

    The partition goes through --default-resources exactly as the docs tell users; the rest is because the
    test cluster has no slurmdbd: no accounts (so no -A), no sacct (so squeue polling), and short waits.
    """
    return [
        "--default-resources",
        f"slurm_partition={cluster.partition}",
        "mem_mb=1000",
        "runtime=30",
        "--slurm-no-account",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "5",
        "--seconds-between-status-checks",
        "5",
        "--slurm-keep-successful-logs",
    ]


def run_snakemake(args: list[str], workdir: Path, timeout_s: int = SNAKEMAKE_TIMEOUT_S) -> str:
    """Run Snakemake from this venv under `timeout`; return its log, failing the test with it on error."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for leaking in ("SNAKEMAKE_PROFILE", "CUDA_VISIBLE_DEVICES"):  # sbatch --export=ALL would carry them
        env.pop(leaking, None)
    cmd = ["timeout", "-k", "30", str(timeout_s), sys.executable, "-m", "snakemake", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s + 60)
    log = proc.stdout + proc.stderr
    (workdir / "snakemake_test.log").write_text(log)
    if proc.returncode != 0:
        pytest.fail(f"snakemake exited {proc.returncode} ({' '.join(cmd)}):\n{log[-6000:]}")
    return log


def executed_jobs(log: str) -> dict[str, str]:
    """Snakemake job id -> rule name for every job the run scheduled, read from its `rule NAME:` headers.

    Jobs under a `localrule NAME:` header (the target rule `all`, or any rule that silently ran on the
    submit host) get the prefix "local:", so the caller can tell them apart.
    """
    jobs = {}
    for match in re.finditer(r"^(local)?rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)", log, flags=re.M):
        jobs[match.group(3)] = ("local:" if match.group(1) else "") + match.group(2)
    return jobs


def assert_all_jobs_on_slurm(log: str, cluster: SlurmCluster, target_rules: set[str]) -> dict[str, str]:
    """Every job ran as a SLURM job that completed: submitted (log), known to slurmctld as COMPLETED.

    Returns Snakemake job id -> SLURM job id.
    """
    submitted = dict(SUBMITTED.findall(log))
    jobs = executed_jobs(log)
    local = {jid: rule for jid, rule in jobs.items() if rule.startswith("local:") and rule[6:] not in target_rules}
    assert not local, f"jobs ran on the submit host, not through SLURM: {local}"
    to_run = {jid for jid, rule in jobs.items() if not rule.startswith("local:")}
    assert to_run, "no job ran at all"
    assert to_run == set(submitted), f"jobs {sorted(to_run - set(submitted))} were not submitted to SLURM"
    states = cluster.job_states()
    for jid, slurm_id in submitted.items():
        assert states.get(slurm_id) == "COMPLETED", (
            f"SLURM job {slurm_id} (rule {jobs[jid]}) is {states.get(slurm_id)!r}, not COMPLETED"
        )
    return submitted


SMOKE_SNAKEFILE = """
rule all:
    input: "gpu.txt"

rule phantom:
    output: "cpu.txt"
    resources: mem_mb=200, runtime=5
    shell: "echo job=$SLURM_JOB_ID gpus=${{SLURM_GPUS_ON_NODE:-none}} > {output}"

rule train_generator:
    input: "cpu.txt"
    output: "gpu.txt"
    resources: mem_mb=200, runtime=5, gpu=1
    shell: "cat {input} > {output}; echo job=$SLURM_JOB_ID gpus=${{SLURM_GPUS_ON_NODE:-none}} >> {output}"
"""


def test_slurm_smoke(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """Two rules through the real profile: both are SLURM jobs; only the rule declaring `gpu=1` gets the GPU.

    The study's rules declare their GPUs the same way (`gpu=1` unless config `device` is cpu); the profile adds none.
    """
    (tmp_path / "Snakefile").write_text(SMOKE_SNAKEFILE)
    log = run_snakemake(
        ["--profile", str(SLURM_PROFILE), "--workflow-profile", "none", *slurm_options(slurm_cluster)], tmp_path
    )
    submitted = assert_all_jobs_on_slurm(log, slurm_cluster, target_rules={"all"})
    assert len(submitted) == 2
    lines = (tmp_path / "gpu.txt").read_text().split("\n")
    cpu_line, gpu_line = lines[0], lines[1]
    assert re.fullmatch(r"job=\d+ gpus=none", cpu_line), cpu_line
    assert re.fullmatch(r"job=\d+ gpus=1", gpu_line), f"the training rule got no GPU from SLURM: {gpu_line}"
    cpu_job, gpu_job = cpu_line.split()[0][4:], gpu_line.split()[0][4:]
    assert {cpu_job, gpu_job} == set(submitted.values())
    assert slurm_cluster.job_record(gpu_job).get("TresPerJob") == "gres:gpu:1"
    assert slurm_cluster.job_record(cpu_job).get("TresPerJob", "") == ""
    logs = sorted((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} == set(submitted.values()), logs


# Table columns that measure the machine (wall time, memory), not the study: they differ between any two runs.


def cluster_study_config() -> dict:
    """The shared tiny study config (tests/conftest.py), cut to one generator, one target, one baseline.

    Why smaller than the local tiny study: every SLURM job pays a Snakemake start-up inside the job, and the
    test node has 2 CPUs, so each rule's jobs must be few for the run to stay within minutes.
    """
    from conftest import TINY_CONFIG  # the integrator's tiny study; keeps this test on the current keys

    config = copy.deepcopy(TINY_CONFIG)
    config["generators"]["models"] = ["vae"]
    config["synthesis"]["targets"] = [30]
    config["classifier"]["baselines"] = ["oversample"]
    config["seeds"] = [0]
    # `auto`: the model rules ask SLURM for a GPU (the node's GPU is a stand-in, so torch still finds no CUDA and
    # runs on the CPU, as the local run does; the tables must match).
    config["device"] = "auto"
    config["evaluation"] = {"folds": 1}
    config["generators"]["replicates"] = 1
    return config


def read_tables(workdir: Path, config: dict) -> dict[str, pd.DataFrame]:
    """Every CSV table of a finished study, as strings, without the machine-measured columns."""
    folder = workdir / config["results"] / config["dataset"]["name"] / "tables"
    tables = {p.name: pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(folder.glob("*.csv"))}
    assert tables, f"no tables in {folder}"
    return {name: df.drop(columns=[c for c in df.columns if c in MEASURED_COLUMNS]) for name, df in tables.items()}


def test_slurm_study_matches_local_run(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """The tiny study through `--profile profiles/slurm`: every job is a completed SLURM job, and the
    result tables equal those of a local run of the same config and seed."""
    from conftest import write_config

    config = cluster_study_config()
    runs = {}
    for mode in ("local", "slurm"):
        workdir = tmp_path / mode
        workdir.mkdir()
        config_path = write_config(workdir, config)
        common = ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(config_path)]
        if mode == "local":
            log = run_snakemake([*common, "--cores", "2", "--workflow-profile", "none"], workdir)
        else:
            log = run_snakemake(
                [*common, "--profile", str(SLURM_PROFILE), "--workflow-profile", "none", *slurm_options(slurm_cluster)],
                workdir,
            )
        runs[mode] = (workdir, log)

    slurm_dir, slurm_log = runs["slurm"]
    submitted = assert_all_jobs_on_slurm(slurm_log, slurm_cluster, target_rules={"all"} | REPORT_RULES)
    jobs = executed_jobs(slurm_log)
    rules = {jobs[jid] for jid in submitted}
    assert {"phantom", "extract", "split", "train_generator", "synthesise", "evaluate_generator",
            "train_classifier"} <= rules, rules
    assert not rules & REPORT_RULES, f"report rules were submitted to SLURM: {rules & REPORT_RULES}"
    assert {"local:classification_table", "local:provenance"} <= set(jobs.values()), sorted(set(jobs.values()))
    for jid, slurm_id in submitted.items():
        # the rules that run a torch model on config `device` (tests/workflow/test_workflow.py: GPU_RULES)
        wants_gpu = jobs[jid] in ("train_generator", "synthesise", "evaluate_generator", "export_latents",
                                  "train_classifier", "tstr")
        got = slurm_cluster.job_record(slurm_id).get("TresPerJob", "")
        assert (got == "gres:gpu:1") == wants_gpu, f"rule {jobs[jid]} (SLURM job {slurm_id}): TresPerJob={got!r}"

    local_tables, slurm_tables = read_tables(runs["local"][0], config), read_tables(slurm_dir, config)
    assert local_tables.keys() == slurm_tables.keys()
    for name in local_tables:
        pd.testing.assert_frame_equal(slurm_tables[name], local_tables[name], check_exact=True, obj=name)
