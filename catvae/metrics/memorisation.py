"""Does a generator copy its training images? Nearest-real-neighbour similarity of each synthetic image.

A generator trained on a few hundred slices can reach a good FID simply by reproducing them, and a classifier
"helped" by near-copies learns nothing new. So each synthetic image is matched to its nearest *training* image
and we report how similar that nearest one is.

Method (fixed so numbers are comparable between runs): both sets are downsampled to `size x size` with
scikit-image's anti-aliased `resize` (copying is about global structure, and the smaller copy makes the all-pairs
search cheap); the nearest training image is the one at the smallest Euclidean (L2) distance on those copies,
found with a chunked `torch.cdist`; the SSIM is then computed between the synthetic image and *that* neighbour
(at the same downsampled size). This is "nearest by L2, then SSIM to it", not the maximum SSIM over all training
images: the latter needs N x M SSIM evaluations (millions for thousands of images) and, in practice, the
L2-nearest image is the one a reader would call the copy.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from skimage.transform import resize

from catvae.errors import CatvaeError
from catvae.metrics.reconstruction import check_images, ssim_pair, ssim_win_size

log = logging.getLogger("catvae.metrics.memorisation")

#: Synthetic images compared against all training images at once; bounds the distance matrix to CHUNK x M floats.
CHUNK = 1024


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """`[N, C, H, W]` -> `[N, C, size, size]` in one anti-aliased scikit-image resize (axes N and C untouched)."""
    n, c = images.shape[:2]
    if images.shape[2:] == (size, size):
        return images.astype(np.float32, copy=False)
    out = resize(images, (n, c, size, size), order=1, anti_aliasing=True, preserve_range=True)
    return out.astype(np.float32)


def nearest_neighbours(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index into `reference` and L2 distance of the nearest reference row for every `query` row (2-D arrays)."""
    ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float64))
    index = np.empty(len(query), dtype=np.int64)
    dist = np.empty(len(query), dtype=np.float64)
    for start in range(0, len(query), CHUNK):
        block = torch.from_numpy(np.ascontiguousarray(query[start : start + CHUNK], dtype=np.float64))
        d = torch.cdist(block, ref)
        best, arg = d.min(dim=1)
        index[start : start + len(block)] = arg.numpy()
        dist[start : start + len(block)] = best.numpy()
    return index, dist


def memorisation(fake: np.ndarray, train_real: np.ndarray, *, size: int = 32, near_copy_ssim: float = 0.95) -> dict:
    """Nearest-training-image statistics of synthetic images (method in the module docstring).

    `fake` and `train_real` are `[N, C, H, W]` floats in [0, 1] with the same channel count. Returns
    `{"median_nn_ssim", "near_copy_share", "median_nn_l2", "n", "size", "near_copy_ssim"}`: the median SSIM to the
    nearest training image, the share of synthetic images whose SSIM to it is >= `near_copy_ssim` (near copies),
    the median L2 distance to it on the `size x size` copies, and the number of synthetic images. With no synthetic
    images, `n` is 0 and the three statistics are None.
    """
    if not isinstance(size, int) or size < 3:
        raise CatvaeError(f"memorisation size must be an integer >= 3, got {size!r}")
    if not 0.0 < float(near_copy_ssim) <= 1.0:
        raise CatvaeError(f"config key 'quality.near_copy_ssim' must be in (0, 1], got {near_copy_ssim!r}")
    fake = check_images(fake, "synthetic images")
    train_real = check_images(train_real, "real training images")
    out = {"median_nn_ssim": None, "near_copy_share": None, "median_nn_l2": None, "n": int(len(fake)),
           "size": size, "near_copy_ssim": float(near_copy_ssim)}
    if len(fake) == 0:
        return out
    if len(train_real) == 0:
        raise CatvaeError("memorisation needs at least one real training image, got none")
    if fake.shape[1] != train_real.shape[1]:
        raise CatvaeError(
            f"synthetic images have {fake.shape[1]} channel(s) but real training images {train_real.shape[1]}"
        )
    log.info("memorisation: %d synthetic vs %d training images at %dx%d", len(fake), len(train_real), size, size)
    small_fake = downsample(fake, size)
    small_real = downsample(train_real, size)
    index, dist = nearest_neighbours(small_fake.reshape(len(fake), -1), small_real.reshape(len(train_real), -1))
    win = ssim_win_size(size, size)
    ssim = np.array([ssim_pair(small_fake[i], small_real[j], win) for i, j in enumerate(index)])
    out.update(
        median_nn_ssim=float(np.median(ssim)),
        near_copy_share=float(np.mean(ssim >= near_copy_ssim)),
        median_nn_l2=float(np.median(dist)),
    )
    return out
