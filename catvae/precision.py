"""Mixed precision, memory layout and host-to-device copies for CUDA; on a CPU every helper here is a no-op.

Why each choice:

- **Which AMP dtype.** bfloat16 has float32's exponent range, so it needs no loss scaling; but only GPUs of compute
  capability 8.0 and later (Ampere, Hopper, ...) compute in it natively, older ones emulate it slowly. So: bf16 where
  the device *in use* has it natively, float16 with a `GradScaler` otherwise.
- **Never autocast on a CPU.** CPU runs are bitwise reproducible today and CPU bf16 is slower than float32 on most
  CPUs; `amp: true` on a CPU is logged and ignored.
- **channels_last only with AMP on CUDA.** Tensor-core convolutions run NHWC natively; NCHW inputs cost a transpose
  per layer there. On a CPU, and in float32, training keeps NCHW: its backward pass in another layout rounds
  differently, and checkpoints must not change with it. (Generation on a CPU is decided in the models:
  `VAE.generate` decodes NHWC there, because oneDNN's transposed convolutions are faster so and gave the same
  numbers bit for bit.)
- **Pinned memory + non-blocking copies** for the copies that repeat every batch or epoch (index permutations,
  evaluation batches): the copy overlaps with GPU work instead of stalling the host. One-off uploads of a whole
  data set use a plain copy (pinning would first duplicate it in host memory).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext

import torch

log = logging.getLogger("catvae.precision")

#: First compute capability (major) with native bfloat16 arithmetic (NVIDIA Ampere).
BF16_MIN_CAPABILITY = 8


def amp_dtype(enabled: bool, device: torch.device, key: str = "amp") -> torch.dtype | None:
    """The autocast dtype for `device`, or None for float32 (AMP off, or not a CUDA device).

    The capability is read from `device` itself (not the process's current GPU), so `cuda:1` on a machine whose
    GPU 0 is newer gets the dtype GPU 1 supports. `key` names the config key in the log line.
    """
    if not enabled:
        return None
    if device.type != "cuda":
        log.info("config key '%s' is true but the device is %s: running in float32 (no autocast on a CPU)", key, device)
        return None
    major, minor = torch.cuda.get_device_capability(device)
    dtype = torch.bfloat16 if major >= BF16_MIN_CAPABILITY else torch.float16
    log.info("mixed precision on %s (compute capability %d.%d): %s", device, major, minor, dtype_name(dtype))
    return dtype


def dtype_name(dtype: torch.dtype | None) -> str | None:
    """'bfloat16' / 'float16' for the outputs (JSON), None for float32 runs."""
    return str(dtype).replace("torch.", "") if dtype is not None else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """torch.autocast on a CUDA device with a dtype; a no-op context otherwise (never autocast on a CPU)."""
    if dtype is None or device.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def grad_scaler(dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A loss scaler that is active only for float16 (bf16 and float32 need none; disabled it is a pass-through)."""
    return torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)


def use_channels_last(device: torch.device, dtype: torch.dtype | None) -> bool:
    """Whether training's convolutions should run NHWC: on CUDA under autocast (tensor cores), never on a CPU."""
    return device.type == "cuda" and dtype is not None


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor to `device`: through pinned memory without blocking on CUDA, a plain `.to` otherwise.

    The pinned buffer comes from torch's caching host allocator, which keeps it alive until the copy has run.
    """
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
