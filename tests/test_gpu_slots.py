"""Several GPU jobs per GPU: which device each job is pinned to, and that no device gets more than its share.

No GPU is needed: the devices are names in CUDA_VISIBLE_DEVICES, and the slot locks are real `flock` locks held by
real processes (a lock held by one process blocks the others exactly as it does between Snakemake jobs).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from catvae.gpu_slots import acquire_slot, pin_job, visible_gpus
from catvae.runner import run_step


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0,1", ["0", "1"]), ("2", ["2"]), ("GPU-aa,GPU-bb", ["GPU-aa", "GPU-bb"]), ("", []), ("-1", []),
     ("0,-1,1", ["0"])],  # CUDA ignores every entry from the first that names no device
)
def test_visible_gpus_reads_cuda_visible_devices(value, expected):
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": value}) == expected


def test_visible_gpus_without_the_variable_or_nvidia_smi_is_empty(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert visible_gpus({}) == []


def _hold(devices, lock_dir, ready, release, out):
    """A job: take a slot, report the device, hold the slot until told to end (a child process, like a job)."""
    slot = acquire_slot(devices, Path(lock_dir))
    out.put((slot.device, slot.index))
    ready.release()
    release.wait()


@pytest.mark.parametrize(("devices", "per_device"), [(["0", "1"], 4), (["0", "1", "2"], 2)])
def test_a_pool_of_n_per_device_never_puts_more_than_n_jobs_on_a_device(tmp_path, devices, per_device):
    """P = devices x N concurrent jobs (what `--resources gpu=P` lets Snakemake run): exactly N on each device.
    Then two jobs of one device end and two new ones start: they fill that device again, not the others."""
    ctx = multiprocessing.get_context("fork")
    ready, release, out = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    first_wave_ends = ctx.Event()
    pool = len(devices) * per_device
    jobs = []
    for i in range(pool):
        # the first device's first two jobs are the ones that end early
        stop = first_wave_ends if i in (0, len(devices)) else release
        jobs.append(ctx.Process(target=_hold, args=(devices, tmp_path, ready, stop, out)))
        jobs[-1].start()
        ready.acquire(timeout=30)  # one at a time, as the scheduler may start them
    held = [out.get(timeout=30) for _ in range(pool)]
    assert Counter(d for d, _ in held) == {d: per_device for d in devices}
    assert held[0][0] == held[len(devices)][0] == devices[0]
    first_wave_ends.set()
    for i in (0, len(devices)):
        jobs[i].join(timeout=30)
        assert jobs[i].exitcode == 0  # its process ended, so the kernel released its lock
    for _ in range(2):
        jobs.append(ctx.Process(target=_hold, args=(devices, tmp_path, ready, release, out)))
        jobs[-1].start()
        ready.acquire(timeout=30)
    assert [out.get(timeout=30)[0] for _ in range(2)] == [devices[0], devices[0]]
    release.set()
    for job in jobs:
        job.join(timeout=30)


@pytest.mark.parametrize(
    ("gpus", "device", "visible", "pinned"),
    [
        (1, "auto", "0,1", "0"),    # a GPU job on a two-GPU machine: pinned to one of them
        (1, "cuda", "4,7", "4"),    # the device names are SLURM's or the user's, kept as they are
        (1, "cuda:1", "0,1", None),  # the config names a device itself: left alone
        (0, "auto", "0,1", None),   # not a GPU job (device cpu makes every rule's gpu 0)
        (1, "auto", "3", None),     # one GPU visible (a SLURM job's own GPU): nothing to choose, no lock taken
    ],
)
def test_the_environment_a_job_receives(tmp_path, gpus, device, visible, pinned):
    environ = {"CUDA_VISIBLE_DEVICES": visible}
    slot = pin_job(gpus, device, environ, lock_dir=tmp_path)
    assert environ["CUDA_VISIBLE_DEVICES"] == (pinned or visible)
    assert (slot is None) == (pinned is None)
    assert list(tmp_path.iterdir()) == ([tmp_path / f"{pinned}.0.lock"] if pinned else [])


def test_run_step_pins_a_gpu_job_before_its_step_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setattr("catvae.gpu_slots.LOCK_DIR", tmp_path / "locks")
    job = SimpleNamespace(log=[str(tmp_path / "job.log")], rule="train_classifier", threads=1, wildcards={},
                          resources={"gpu": 1}, params=SimpleNamespace(device="auto"))
    # a second job holds GPU 0's first slot: this one goes to GPU 1
    held = acquire_slot(["0", "1"], tmp_path / "locks")
    try:
        assert run_step(job, lambda: os.environ["CUDA_VISIBLE_DEVICES"]) == "1"
    finally:
        held.release()
    assert "pinned to GPU 1 (slot 0" in (tmp_path / "job.log").read_text()


def test_a_job_that_uses_no_torch_does_not_import_it(tmp_path):
    """Start-up: a table or figure job pays no torch import (about 1.4 s of each such job on this machine)."""
    import subprocess

    code = (
        "import sys; from types import SimpleNamespace; from catvae.runner import run_step\n"
        f"job = SimpleNamespace(log=[{str(tmp_path / 'j.log')!r}], rule='tables', threads=1, wildcards={{}},"
        " resources={'gpu': 0}, params=SimpleNamespace())\n"
        "print('torch' in sys.modules, run_step(job, lambda: 'torch' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
