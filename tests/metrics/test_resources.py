"""Resource measurement: peak memory and generation time, measured the same way for every generator."""

import math
import time

import numpy as np
import pytest
import torch

from catvae.errors import CatvaeError
from catvae.metrics import PeakMemory, time_generation


def test_peak_memory_sees_a_large_allocation_on_cpu():
    with PeakMemory("cpu") as small:
        pass
    with PeakMemory(torch.device("cpu")) as big:
        block = np.ones(300 * 1024 * 1024 // 8)  # 300 MB, touched so it is resident
        block.sum()
        del block
    assert small.scope in ("process_rss_block", "process_rss_lifetime")
    assert big.peak_mb > 300
    if big.scope == "process_rss_block":  # the high-water mark was reset on entry, so the two blocks differ
        assert small.peak_mb < big.peak_mb - 200


def test_time_generation_counts_every_image():
    calls = []

    def fn(k):
        calls.append(k)
        return torch.zeros(k, 1, 4, 4)

    ms = time_generation(fn, n_images=10, batch_size=4, device="cpu")
    assert calls == [4, 4, 4, 2]  # one warm-up batch, then 10 images
    assert ms >= 0.0 and math.isfinite(ms)


def test_time_generation_runs_for_at_least_min_seconds():
    calls = []

    def fn(k):
        calls.append(k)
        time.sleep(0.01)
        return torch.zeros(k, 1, 4, 4)

    ms = time_generation(fn, n_images=10, batch_size=4, device="cpu", min_seconds=0.2)
    timed = calls[1:]  # after the warm-up batch
    assert timed[:3] == [4, 4, 2] and len(timed) > 3 and all(k == 4 for k in timed[3:])  # then whole batches
    assert ms * sum(timed) / 1000.0 >= 0.2  # the clock covered at least min_seconds
    assert ms * sum(timed) / 1000.0 >= 0.01 * len(timed)


def test_time_generation_rejects_bad_calls():
    with pytest.raises(CatvaeError):
        time_generation(lambda k: torch.zeros(k), n_images=0, batch_size=4, device="cpu")
    with pytest.raises(CatvaeError, match="asked the generator for 3"):
        time_generation(lambda k: torch.zeros(1), n_images=3, batch_size=4, device="cpu")
    with pytest.raises(CatvaeError, match="min_seconds"):
        time_generation(lambda k: torch.zeros(k), n_images=3, batch_size=4, device="cpu", min_seconds=-1)
