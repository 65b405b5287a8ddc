"""Memorisation: nearest-real-neighbour SSIM and the near-copy share, on tiny generated arrays."""

import numpy as np
import pytest

from catvae.errors import CatvaeError
from catvae.metrics import memorisation
from metrics import smooth_images


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
