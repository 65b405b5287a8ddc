"""Diversity of a set of images without network weights: mean MS-SSIM over random pairs (MONAI's metric).

Why: FID/KID need Inception weights that an offline study often lacks, and the memorisation score only asks whether
a synthetic image copies a *training* image, not whether the synthetic images copy *each other*. The mean MS-SSIM
between random pairs of one class's synthetic images (as Odena et al. 2017 measured a GAN's per-class diversity) is
high when the images look alike: mode collapse and near-duplicates show as a figure above the one for random pairs
of the class's real training images, computed the same way, which is the yardstick. Lower = more diverse.

Scales (fixed so figures compare across runs): MONAI's ``MultiScaleSSIMMetric`` with the standard Gaussian window
(11 px, sigma 1.5) and Wang et al.'s five scale weights needs images of 256 px. Smaller images keep the first
scales whose coarsest image still holds the window (and pass MONAI's own size check), weights renormalised to sum
to 1: four scales at 128 px, three at 64, two at 32, one (plain Gaussian-window SSIM) at 16-31; below 11 px the
window shrinks to the largest odd size that fits. The result records the scales and window used.
"""

from __future__ import annotations

import numpy as np
import torch

from catvae.errors import CatvaeError
from catvae.metrics.reconstruction import check_images

#: Wang, Simoncelli and Bovik (2003): the five scale weights of MS-SSIM (MONAI's default).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
#: Pairs scored per batch (each is two images through five Gaussian filters per scale).
PAIR_BATCH = 256


def ms_ssim_settings(side: int) -> tuple[int, tuple[float, ...]]:
    """(window size, scale weights) of MS-SSIM for square-ish images whose smaller side is `side` (see module)."""
    if side < 3:
        raise CatvaeError(f"MS-SSIM needs images of at least 3x3 pixels, got a side of {side}")
    window = min(WINDOW, side if side % 2 else side - 1)
    scales = max(s for s in range(1, len(MS_SSIM_WEIGHTS) + 1)
                 if side // max(1, s - 1) ** 2 > window - 1 and side // 2 ** (s - 1) >= window)
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    return window, tuple(float(w) for w in weights / weights.sum())


def pair_diversity(images: np.ndarray, *, n_pairs: int, seed: int, name: str = "images") -> dict:
    """Mean MS-SSIM over `n_pairs` random pairs of distinct images of `images` ([N, C, H, W] in [0, 1]).

    Pairs are drawn with replacement from a NumPy generator seeded with `seed` (the first of a pair uniformly, the
    second uniformly among the others), so the same images and seed give the same figure. Fewer than two images
    give ``ms_ssim: None`` with a note.
    """
    from monai.metrics import MultiScaleSSIMMetric

    images = check_images(images, name)
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise CatvaeError(f"config key 'quality.diversity_pairs' must be a positive integer, got {n_pairs!r}")
    n = len(images)
    if n < 2:
        return {"ms_ssim": None, "ms_ssim_std": None, "n_pairs": 0, "n_images": n,
                "note": f"n/a: {n} image(s), a pair needs two"}
    window, weights = ms_ssim_settings(min(images.shape[2:]))
    rng = np.random.default_rng(int(seed))
    first = rng.integers(0, n, size=n_pairs)
    second = (first + rng.integers(1, n, size=n_pairs)) % n  # never the first image itself
    metric = MultiScaleSSIMMetric(spatial_dims=2, data_range=1.0, kernel_size=window, weights=weights)
    scores = []
    for start in range(0, n_pairs, PAIR_BATCH):
        a = torch.from_numpy(images[first[start:start + PAIR_BATCH]])
        b = torch.from_numpy(images[second[start:start + PAIR_BATCH]])
        scores.append(metric(a, b).reshape(-1).double().numpy())
    values = np.concatenate(scores)
    return {"ms_ssim": float(values.mean()), "ms_ssim_std": float(values.std(ddof=1)) if n_pairs > 1 else None,
            "n_pairs": int(n_pairs), "n_images": int(n), "window": window, "scales": len(weights)}
