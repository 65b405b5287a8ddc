"""Reconstruction metrics (SSIM, PSNR, MSE) on tiny generated arrays."""

import numpy as np
import pytest

from catvae.errors import CatvaeError
from catvae.metrics import reconstruction_metrics
from catvae.metrics.reconstruction import PSNR_CAP_DB
from metrics import smooth_images


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
