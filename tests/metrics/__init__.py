"""Tests of catvae/metrics/ (one file per module, named after it), and the images they share."""

import numpy as np


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
