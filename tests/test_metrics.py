"""Reconstruction metrics, memorisation and resource measurement on tiny generated arrays."""

import math
import time

import numpy as np
import pytest
import torch

from catvae.errors import CatvaeError
from catvae.metrics import PeakMemory, memorisation, reconstruction_metrics, time_generation
from catvae.metrics.reconstruction import PSNR_CAP_DB


def smooth_images(n, channels=1, size=32, seed=0):
    """Blurry random blobs: structured images (SSIM means something on them, unlike on white noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, channels, size, size), dtype=np.float32)
    for i in range(n):
        for c in range(channels):
            cx, cy, w = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
            out[i, c] = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w**2))
    return out


# --- reconstruction -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_identical_images_are_perfect(channels):
    x = smooth_images(4, channels)
    m = reconstruction_metrics(x, x.copy())
    assert m["n"] == 4
    assert m["ssim"] == pytest.approx(1.0)
    assert m["mse"] == 0.0
    assert m["psnr"] == PSNR_CAP_DB


def test_noise_lowers_scores_monotonically():
    x = smooth_images(6)
    rng = np.random.default_rng(1)
    small = np.clip(x + rng.normal(0, 0.02, x.shape), 0, 1)
    large = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
    m_small, m_large = reconstruction_metrics(x, small), reconstruction_metrics(x, large)
    assert 1.0 > m_small["ssim"] > m_large["ssim"]
    assert 0.0 < m_small["mse"] < m_large["mse"]
    assert PSNR_CAP_DB > m_small["psnr"] > m_large["psnr"]


def test_known_constant_pair():
    a = np.zeros((2, 1, 8, 8))
    b = np.full((2, 1, 8, 8), 0.1)
    m = reconstruction_metrics(a, b)
    assert m["mse"] == pytest.approx(0.01)
    assert m["psnr"] == pytest.approx(20.0)  # 10 log10(1 / 0.01)


def test_tiny_images_adapt_the_ssim_window():
    x = smooth_images(2, size=4)  # default 7x7 window does not fit; 3x3 does
    assert reconstruction_metrics(x, x)["ssim"] == pytest.approx(1.0)
    with pytest.raises(CatvaeError, match="3x3"):
        reconstruction_metrics(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 2, 2)))


def test_bad_input_raises():
    x = smooth_images(3)
    with pytest.raises(CatvaeError, match="differ in shape"):
        reconstruction_metrics(x, x[:2])
    with pytest.raises(CatvaeError, match=r"\[N, C, H, W\]"):
        reconstruction_metrics(x[0], x[0])
    with pytest.raises(CatvaeError, match=r"\[0, 1\]"):
        reconstruction_metrics(x, x * 3)
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(CatvaeError, match="NaN"):
        reconstruction_metrics(x, bad)


def test_empty_set():
    e = np.zeros((0, 1, 8, 8))
    assert reconstruction_metrics(e, e) == {"ssim": None, "psnr": None, "mse": None, "n": 0}


# --- memorisation ---------------------------------------------------------------------------------------------

def test_copies_of_training_images_are_flagged():
    train = smooth_images(20, size=48)
    fake = train[[3, 7, 7, 15, 0]]
    m = memorisation(fake, train, size=16)
    assert m["n"] == 5
    assert m["near_copy_share"] == 1.0
    assert m["median_nn_ssim"] == pytest.approx(1.0)
    assert m["median_nn_l2"] == pytest.approx(0.0, abs=1e-6)


def test_noise_is_not_a_copy():
    train = smooth_images(20, size=48)
    fake = np.random.default_rng(2).random((30, 1, 48, 48))
    m = memorisation(fake, train, size=16)
    assert m["n"] == 30
    assert m["near_copy_share"] == 0.0
    assert m["median_nn_ssim"] < 0.5
    assert m["median_nn_l2"] > 1.0


def test_threshold_splits_a_mixed_set():
    train = smooth_images(10, channels=3)
    noise = np.random.default_rng(3).random((3, 3, 32, 32))
    m = memorisation(np.concatenate([train[:1], noise]), train, size=16, near_copy_ssim=0.9)
    assert m["near_copy_share"] == pytest.approx(0.25)


def test_memorisation_edge_cases():
    train = smooth_images(4)
    m = memorisation(np.zeros((0, 1, 32, 32)), train)
    assert m["n"] == 0 and m["median_nn_ssim"] is None and m["near_copy_share"] is None
    with pytest.raises(CatvaeError, match="channel"):
        memorisation(smooth_images(2, channels=3), train)
    with pytest.raises(CatvaeError, match="near_copy_ssim"):
        memorisation(train, train, near_copy_ssim=1.5)
    with pytest.raises(CatvaeError, match="at least one real"):
        memorisation(train, np.zeros((0, 1, 32, 32)))


# --- resources ------------------------------------------------------------------------------------------------

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
