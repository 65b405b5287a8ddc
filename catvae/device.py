"""Device choice and seeding, shared by every stage that runs torch."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from catvae.errors import CatvaeError


def resolve_device(name: str = "auto") -> torch.device:
    """Map the config's `device` value to a torch device.

    `auto` takes CUDA when present so the same config runs on a workstation GPU and on a laptop CPU.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CatvaeError(f"config key 'device' is {name!r} but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise CatvaeError(f"config key 'device' must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    return torch.device(name)


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
