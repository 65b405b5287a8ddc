"""Several GPU jobs per GPU on one machine: pin each Snakemake GPU job to one device through a slot lock.

Why: a study job uses a few GB of an 80-140 GB GPU and leaves it mostly idle (README, "On a GPU"), so one machine
runs several GPU jobs at once. Snakemake bounds how many run together (`--resources gpu=P`, every GPU rule asks
for `gpu=1`), but it does not say *which* GPU a job should use; without pinning every job would take the first
visible GPU. Each job therefore locks one slot file before it touches CUDA and sets `CUDA_VISIBLE_DEVICES` to that
slot's device.

Slots are tried in rounds: slot 0 of every device, then slot 1 of every device, and so on; a job takes the first it
can lock. A job can only reach slot k of a device when slots 0..k-1 of every device are held by running jobs, so
with a pool of P = D x N jobs on D devices no device ever runs more than N jobs (tested). The locks are `flock`
locks on files under the working directory's `.snakemake/` (Snakemake's own metadata folder, never in results/):
the kernel releases them when the job's process ends, so a killed job never leaves a slot taken.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping, MutableMapping

log = logging.getLogger("catvae.gpu_slots")

LOCK_DIR = Path(".snakemake") / "catvae-gpu-slots"
# CUDA ignores every entry from the first one that names no device; these are the common ways to hide all GPUs.
_NO_DEVICE = {"-1", "NoDevFiles", "none", ""}


@dataclass
class Slot:
    """A held slot: the device it pins the job to, its round, and the open lock file that holds it."""

    device: str
    index: int
    handle: IO[str]

    def release(self) -> None:
        self.handle.close()


def visible_gpus(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The GPUs this process may use, named as `CUDA_VISIBLE_DEVICES` names them, without initialising CUDA.

    `CUDA_VISIBLE_DEVICES` when set (SLURM sets it to a job's GPUs); else the indices `nvidia-smi` lists; else none.
    CUDA must not be initialised here: once it is, a changed `CUDA_VISIBLE_DEVICES` has no effect in this process.
    """
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        devices = []
        for entry in (e.strip() for e in value.split(",")):
            if entry in _NO_DEVICE:
                break
            devices.append(entry)
        return devices
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in listed.splitlines() if line.strip()]


def acquire_slot(devices: list[str], lock_dir: Path | None = None) -> Slot:
    """Lock the first free slot in rounds over `devices` (slot 0 of each, then slot 1 of each, ...).

    Never waits: Snakemake's pool bounds how many jobs run, so a free slot always exists within that many rounds.
    """
    if not devices:
        raise ValueError("acquire_slot needs at least one device")
    lock_dir = LOCK_DIR if lock_dir is None else lock_dir
    lock_dir.mkdir(parents=True, exist_ok=True)
    for index in itertools.count():
        for device in devices:
            handle = open(lock_dir / f"{_safe(device)}.{index}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return Slot(device, index, handle)
    raise AssertionError("unreachable")


def _safe(device: str) -> str:
    """A file name for a device entry (an index, a GPU-/MIG- UUID)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", device)


def pins_a_device(gpus_requested: int, device: str) -> bool:
    """Whether a job is pinned: it asked Snakemake for a GPU and its `device` lets us choose which one.

    `cuda:N` names a device itself (and N counts visible devices, which pinning would renumber), `cpu` needs none.
    """
    return gpus_requested > 0 and device in ("auto", "cuda")


def pin_job(gpus_requested: int, device: str, environ: MutableMapping[str, str] = os.environ,
            lock_dir: Path | None = None) -> Slot | None:
    """Pin this job to one visible GPU (set `CUDA_VISIBLE_DEVICES`) and return the held slot, or None.

    Nothing to choose with one visible GPU (a SLURM job's own GPU, a one-GPU workstation): the job keeps it and no
    lock is taken, so no lock file is ever needed on a cluster's shared file system.
    """
    if not pins_a_device(gpus_requested, device):
        return None
    devices = visible_gpus(environ)
    if len(devices) < 2:
        return None
    slot = acquire_slot(devices, lock_dir)
    environ["CUDA_VISIBLE_DEVICES"] = slot.device
    log.info("pinned to GPU %s (slot %d of that GPU; %d GPUs visible)", slot.device, slot.index, len(devices))
    return slot
