"""Device choice, seeding and the determinism settings shared by every stage that runs torch.

What is reproducible where (README.md, "On a GPU"):

- CPU: the same seed, thread count and machine type give bitwise-identical weights, images and tables, and a
  resumed generator run equals an uninterrupted one bitwise (tested).
- CUDA: `configure_determinism` makes cuDNN pick deterministic kernels without autotuning, fixes the cuBLAS
  workspace, and asks torch for deterministic algorithms with `warn_only=True`: an op that has no deterministic
  CUDA kernel (e.g. adaptive average pooling backward, in the cvae's perceptual loss) still runs, and torch logs a
  warning naming it. Runs on the same GPU model and software stack are bitwise-identical wherever no such warning
  appears, and agree within floating-point tolerance otherwise.
- CPU against GPU: never bitwise (different kernels and summation orders). The latents are identical (drawn on the
  CPU, see `GenerativeModel.draw_latents`), the images within float32 tolerance. Mixed precision (`amp`) is within
  the tolerance of its dtype (bf16 ~1e-2 relative) of a float32 run, and is not comparable across GPU generations.

The device's name and the AMP dtype are part of the resume fingerprint (a resume file from another GPU model or
precision is not reused) and are recorded in train_stats.json, quality.json and metrics.json.
"""

from __future__ import annotations

import logging
import os
import random

import numpy as np
import torch

from catvae.errors import CatvaeError

log = logging.getLogger("catvae.device")

# cuBLAS needs a fixed workspace to be deterministic (CUDA >= 10.2); ":4096:8" is the larger of the two values
# NVIDIA documents. It must be in the environment before the first cuBLAS call of the process.
CUBLAS_WORKSPACE = ":4096:8"


def resolve_device(name: str = "auto") -> torch.device:
    """Map the config's `device` value to a torch device with an explicit index for CUDA.

    `auto` takes CUDA when present so the same config runs on a workstation GPU and on a laptop CPU. `cuda`
    becomes `cuda:<current device>` (the first visible GPU unless the process changed it), so the stage knows
    exactly which device it uses (its RNG state, capability and name are read from that device). A CUDA device
    also gets the deterministic kernel settings (`configure_determinism`), so every stage that resolves its
    device has them.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not name.startswith("cuda"):
        raise CatvaeError(f"config key 'device' must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CatvaeError(f"config key 'device' is {name!r} but no CUDA device is available")
        device = torch.device(name)
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= count:
            raise CatvaeError(f"config key 'device' is {name!r} but only {count} CUDA device(s) are visible")
        device = torch.device("cuda", index)
        configure_determinism(device)
        return device
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    """A name for the hardware of `device`: the GPU model on CUDA ("NVIDIA H100 80GB HBM3"), "cpu" otherwise.

    CPUs are not told apart: a resume on another CPU model is allowed (its results agree within tolerance).
    """
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return device.type


def configure_determinism(device: torch.device) -> None:
    """Deterministic CUDA kernels for `device` (nothing changes on a CPU, whose results are already bitwise).

    Called once per process before the first model is built. `warn_only=True` because some kernels (adaptive
    average pooling backward, some attention backward kernels) have no deterministic CUDA version: torch then
    warns and runs the nondeterministic one instead of failing the job.
    """
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    log.info("deterministic CUDA kernels on %s (%s); CUBLAS_WORKSPACE_CONFIG=%s", device, device_name(device),
             os.environ["CUBLAS_WORKSPACE_CONFIG"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so a rule re-run with the same config gives the same numbers."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def set_threads(n: int) -> None:
    """Use exactly the threads Snakemake gave the rule, so parallel jobs do not oversubscribe the cores."""
    torch.set_num_threads(max(1, int(n)))
