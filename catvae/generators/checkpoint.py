"""Generator checkpoints: one format for the final `checkpoint.pt` and the resume checkpoint.

Why one format: a resume checkpoint is a final checkpoint written mid-run, so resuming, synthesising and
evaluating all read the same keys. RNG states are stored as tensors and plain Python values so the file
loads with `torch.load(weights_only=True)` (no pickled code runs when a checkpoint is opened).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from catvae.errors import CatvaeError
from catvae.io import atomic_path
from catvae.vocabulary.steps import SYNTHESIS_ONLY_KEYS

FORMAT_VERSION = 1

# Option keys that change neither the model nor the per-epoch trajectory, so a resume is allowed across them:
# `epochs` (raising it continues a run; nothing in an epoch depends on the total), `checkpoint_every`, and
# `context` and `sampling` (read only by synthesis).
_NOT_FINGERPRINTED = ("epochs", "checkpoint_every", *SYNTHESIS_ONLY_KEYS)


def capture_rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """Snapshot every RNG a training epoch touches (torch CPU, the CUDA device in use, NumPy, Python).

    Only the CUDA generator of `device` is saved (None when training on a CPU): the other GPUs' generators draw
    nothing for this run, and a file holding one state per visible GPU could not be restored where fewer are
    visible.
    """
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": np_state[0],
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _to_lists(random.getstate()),
        "cuda": torch.cuda.get_rng_state(device) if device is not None and device.type == "cuda" else None,
    }
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Put back what `capture_rng_state` saved, so a resumed run draws the same numbers as an uninterrupted one.

    The saved CUDA state goes to `device`, whichever GPU index it has now: a run saved on `cuda:3` resumes on
    `cuda:0`. A CUDA state with no CUDA device in use is skipped (the resume fingerprint, which includes the
    device name, normally keeps such a file from being used at all). Files of format 1 before this change held
    a list with one state per visible GPU; the state of the device's index is taken when present.
    """
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    random.setstate(_to_tuples(state["python"]))
    cuda_state = state.get("cuda")
    if isinstance(cuda_state, (list, tuple)):  # older files: one state per visible GPU
        index = (device.index or 0) if device is not None else 0
        cuda_state = cuda_state[index] if index < len(cuda_state) else None
    if cuda_state is not None and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda_state, device)


def config_fingerprint(**config: Any) -> str:
    """Stable hash of everything that determines a training run, to decide whether a resume file belongs to it."""
    options = dict(config.get("options", {}))
    for key in _NOT_FINGERPRINTED:
        options.pop(key, None)
    config = {**config, "options": options}
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a crash while saving never leaves a truncated file that looks valid."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **payload}, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a missing or corrupt file raises CatvaeError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CatvaeError(f"generator checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        raise CatvaeError(f"cannot read generator checkpoint {path}: {exc}") from exc
    required = ("model_name", "model_state", "options", "image_size", "channels", "classes", "modalities", "epoch")
    missing = [key for key in required if key not in payload] if isinstance(payload, dict) else list(required)
    if missing:
        raise CatvaeError(f"generator checkpoint {path} lacks key(s) {missing}")
    return payload


def build_from_checkpoint(payload: dict[str, Any], device: torch.device) -> torch.nn.Module:
    """Rebuild the trained generator from a loaded checkpoint, in eval mode on `device`."""
    from catvae.models import build_generator

    model = build_generator(
        payload["model_name"],
        image_size=int(payload["image_size"]),
        channels=int(payload["channels"]),
        options=dict(payload["options"]),
        n_classes=int(payload.get("n_classes", 1)),
        n_modalities=int(payload.get("n_modalities", 1)),
    )
    model.load_state_dict(payload["model_state"])
    return model.to(device).eval()


def _to_lists(value: Any) -> Any:
    # Python's random state is nested tuples; keep it as lists/ints so weights_only loading accepts it.
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value


def _to_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuples(v) for v in value)
    return value
