"""Peak memory and generation time, measured the same way for every generator (DESIGN.md section 2).

Peak memory means different things per device, and `PeakMemory.scope` records which one was measured:

- `cuda_allocated`: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`, i.e. the peak of tensors
  allocated by this process on that GPU inside the block (not the caching allocator's reserve, not other processes).
- `process_rss_block`: CPU. The peak resident set size of the whole process (all threads, not child processes such
  as DataLoader workers) inside the block. Linux lets a process reset its RSS high-water mark by writing "5" to
  `/proc/self/clear_refs`; after that reset `getrusage(RUSAGE_SELF).ru_maxrss` is the peak since entering the block.
  It includes memory that was already resident at entry (the interpreter, torch, the data): it is the process's
  footprint, not the model's increment. The reset is process-wide, so CPU measurements must not be nested.
- `process_rss_lifetime`: CPU where that reset is not possible (not Linux, or not permitted): `ru_maxrss` is then
  the high-water mark since the process started, which can be larger than anything the block used.
"""

from __future__ import annotations

import logging
import math
import resource
import sys
import time
from collections.abc import Callable

import torch

from catvae.errors import CatvaeError

log = logging.getLogger("catvae.metrics.resources")

MB = 1024.0 * 1024.0


def _reset_rss_high_water_mark() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False where the system does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _max_rss_mb() -> float:
    """`ru_maxrss` in MB: Linux reports kilobytes, macOS bytes."""
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value / MB if sys.platform == "darwin" else value / 1024.0


class PeakMemory:
    """Context manager measuring peak memory of the block; `peak_mb` and `scope` are set on exit.

    >>> with PeakMemory("cpu") as pm:
    ...     train()
    >>> pm.peak_mb, pm.scope
    """

    def __init__(self, device: str | torch.device):
        self.device = torch.device(device)
        self.peak_mb: float | None = None
        self.scope: str | None = None

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.scope = "cuda_allocated"
        else:
            self.scope = "process_rss_block" if _reset_rss_high_water_mark() else "process_rss_lifetime"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / MB
        else:
            self.peak_mb = _max_rss_mb()
        log.debug("peak memory %.1f MB (%s)", self.peak_mb, self.scope)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_generation(
    fn: Callable[[int], torch.Tensor], n_images: int, batch_size: int, device, min_seconds: float = 0.0
) -> float:
    """Milliseconds per generated image: `fn(k)` makes k images, in batches of `batch_size`.

    At least `n_images` images are made, and more (in whole batches) until at least `min_seconds` have passed,
    so a fast GPU is timed over many batches instead of a few milliseconds (evaluation asks for 1 s). One warm-up
    batch runs first and is not timed (it pays for lazy initialisation, cuDNN kernel selection, caches). On CUDA
    the clock is read only after `torch.cuda.synchronize` (kernels run asynchronously), once per round: the first
    round makes `n_images`, each later round the number of images the rate so far says will fill the remaining
    time, so the timed loop itself never waits on the GPU. Gradients are off: generation never needs them, and
    keeping the graph would time (and hold) memory that inference does not use.
    """
    if n_images < 1 or batch_size < 1:
        raise CatvaeError(f"time_generation needs n_images >= 1 and batch_size >= 1, got {n_images}, {batch_size}")
    if not min_seconds >= 0:
        raise CatvaeError(f"time_generation needs min_seconds >= 0, got {min_seconds}")
    device = torch.device(device)
    with torch.no_grad():
        fn(min(batch_size, n_images))
        _synchronize(device)
        start = time.perf_counter()
        made, todo = 0, n_images
        while True:
            target = made + todo
            while made < target:
                k = min(batch_size, target - made)
                out = fn(k)
                if len(out) != k:
                    raise CatvaeError(f"time_generation: asked the generator for {k} images, got {len(out)}")
                made += k
            _synchronize(device)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
            rate = made / max(elapsed, 1e-9)  # images per second so far
            todo = batch_size * max(1, math.ceil((min_seconds - elapsed) * rate / batch_size))
    ms = 1000.0 * elapsed / made
    log.info("generation: %d images in batches of %d on %s in %.2f s, %.3f ms/image", made, batch_size, device,
             elapsed, ms)
    return ms
