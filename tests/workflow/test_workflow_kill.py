"""A generator job killed with SIGKILL mid-training (Snakemake and its jobs, as a cluster's time limit or an OOM
killer would) resumes under `--rerun-incomplete` from its last resume checkpoint, to the very weights of a run that
was never interrupted (CPU, bitwise).

The in-process resume tests (tests/generators/test_train.py) raise an exception inside the training loop; this one
goes through everything a real kill touches: the process group dies at an arbitrary point, Snakemake's lock and
incomplete-job markers stay behind, and the rerun deletes the job's declared outputs but must keep `.resume/`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch

from catvae.generators.checkpoint import load_checkpoint
from conftest import TINY_CONFIG, run_snakemake, snakemake_command, write_config

pytestmark = pytest.mark.workflow

EPOCHS = 6  # the kill lands after epoch 1 (a poll every 20 ms); each epoch takes 0.1-1 s on 2 CPU cores


def kill_config(model: str) -> dict:
    """The tiny study reduced to what one generator job needs: one model, a resume checkpoint every epoch."""
    config = json.loads(json.dumps(TINY_CONFIG))
    options = {**TINY_CONFIG["generators"].get(model, {}), "epochs": EPOCHS, "batch_size": 16, "checkpoint_every": 1}
    config["generators"] = {"models": [model], model: options}
    config["evaluation"] = {"folds": 1}
    return config


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    assert proc.returncode == 0, f"{what} failed:\n{proc.stderr[-4000:]}"


@pytest.mark.parametrize("model", ["vae", "ddpm"])  # a Keras-ported VAE; the diffusion model (noise + timesteps drawn)
def test_sigkill_mid_training_then_rerun_incomplete_equals_uninterrupted(model, tmp_path):
    workdir = tmp_path / "study"
    workdir.mkdir()
    config_path = write_config(workdir, kill_config(model))
    target = f"results/tiny/generators/fold0/{model}/rep0/Tumor/checkpoint.pt"
    group = (workdir / target).parent

    # 1. the uninterrupted run (data stage included), kept aside; then its generator outputs go
    _check(run_snakemake(workdir, config_path, target), "uninterrupted run")
    straight = tmp_path / "straight"
    shutil.copytree(group, straight)
    assert json.loads((straight / "train_stats.json").read_text())["resumed_from_epoch"] is None
    shutil.rmtree(group)

    # 2. the same job again, SIGKILLed (Snakemake and its whole process group) once a resume checkpoint exists
    cmd, env = snakemake_command(workdir, config_path, target)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    resume = group / ".resume" / "resume.pt"
    deadline = time.monotonic() + 600
    try:
        while not resume.is_file():
            assert proc.poll() is None, "Snakemake ended before the first resume checkpoint"
            assert time.monotonic() < deadline, "no resume checkpoint within 600 s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (group / "checkpoint.pt").exists(), f"training finished before the kill; raise EPOCHS ({EPOCHS})"
    killed_at = int(load_checkpoint(resume)["epoch"])
    assert 1 <= killed_at < EPOCHS

    # 3. what a user does next: unlock the working directory, re-run the incomplete job
    _check(run_snakemake(workdir, config_path, "--unlock"), "unlock")
    rerun = run_snakemake(workdir, config_path, target, "--rerun-incomplete")
    _check(rerun, "rerun")

    stats = json.loads((group / "train_stats.json").read_text())
    assert stats["resumed_from_epoch"] == killed_at  # it continued; a restart from scratch would say None
    assert stats["epochs"] == EPOCHS and not resume.exists()
    a = load_checkpoint(straight / "checkpoint.pt")["model_state"]
    b = load_checkpoint(group / "checkpoint.pt")["model_state"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ha = pd.read_csv(straight / "history.csv").drop(columns="seconds")
    hb = pd.read_csv(group / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(ha, hb)
