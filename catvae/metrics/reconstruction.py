"""SSIM, PSNR and MSE of reconstructions, with scikit-image.

DESIGN.md section 2 asks for these on *held-out* real images: which images go in is the caller's choice, this
module only measures. Every score is computed per image and then averaged, so one image's contrast does not
leak into another's score (as it would if the whole batch were treated as one big image).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from catvae.errors import CatvaeError

#: PSNR reported for a pair with MSE exactly 0 (identical images), where PSNR is infinite. Infinity would make the
#: mean infinite and is not valid JSON; 100 dB lies above any non-identical pair of 8-bit images up to 256x256
#: (one grey level off in one pixel of a 256x256 image is about 96 dB), so a capped value still reads as "identical".
PSNR_CAP_DB = 100.0


def check_images(arr: np.ndarray, name: str) -> np.ndarray:
    """Return `arr` as float32 `[N, C, H, W]` in [0, 1], or raise CatvaeError naming `name`.

    Shared by every metric here, so they all reject the same bad input with the same message. float32 (not 64)
    because thousands of 3x128x128 images are passed around; the per-image scores accumulate in float64.
    """
    arr = np.asarray(arr)
    if arr.ndim != 4:
        raise CatvaeError(f"{name}: expected images as [N, C, H, W], got shape {arr.shape}")
    if arr.shape[1] not in (1, 3):
        raise CatvaeError(f"{name}: expected 1 or 3 channels on axis 1, got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if arr.size == 0:
        return arr
    if not np.isfinite(arr).all():
        raise CatvaeError(f"{name}: contains NaN or infinite values")
    low, high = float(arr.min()), float(arr.max())
    if low < -1e-6 or high > 1 + 1e-6:
        raise CatvaeError(f"{name}: values must lie in [0, 1], got [{low:.4g}, {high:.4g}]")
    return np.clip(arr, 0.0, 1.0) if low < 0.0 or high > 1.0 else arr


def ssim_win_size(height: int, width: int) -> int:
    """SSIM window: scikit-image's default 7, shrunk to the largest odd size that fits a tiny image."""
    win = min(7, height, width)
    if win % 2 == 0:
        win -= 1
    if win < 3:
        raise CatvaeError(f"SSIM needs images of at least 3x3 pixels, got {height}x{width}")
    return win


def ssim_pair(a: np.ndarray, b: np.ndarray, win_size: int) -> float:
    """SSIM of two `[C, H, W]` images in [0, 1] (scikit-image defaults: uniform window, sample covariance)."""
    if a.shape[0] == 1:
        return float(structural_similarity(a[0], b[0], data_range=1.0, win_size=win_size))
    return float(structural_similarity(a, b, data_range=1.0, win_size=win_size, channel_axis=0))


def psnr_pair(a: np.ndarray, b: np.ndarray, mse: float) -> float:
    """PSNR in dB with data_range 1; identical images (MSE 0) get PSNR_CAP_DB instead of infinity."""
    if mse == 0.0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, float(peak_signal_noise_ratio(a, b, data_range=1.0)))


def reconstruction_metrics(real: np.ndarray, recon: np.ndarray) -> dict:
    """Mean per-image SSIM, PSNR (dB) and MSE between real images and their reconstructions.

    Both arrays are `[N, C, H, W]` floats in [0, 1], paired by index. Returns `{"ssim", "psnr", "mse", "n"}`;
    with N = 0 the three scores are None. PSNR of an identical pair is capped at PSNR_CAP_DB (see there).
    """
    real = check_images(real, "real images")
    recon = check_images(recon, "reconstructed images")
    if real.shape != recon.shape:
        raise CatvaeError(f"real images {real.shape} and reconstructions {recon.shape} differ in shape")
    n = real.shape[0]
    if n == 0:
        return {"ssim": None, "psnr": None, "mse": None, "n": 0}
    win = ssim_win_size(real.shape[2], real.shape[3])
    ssim, psnr, mse = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        mse[i] = float(mean_squared_error(real[i], recon[i]))
        psnr[i] = psnr_pair(real[i], recon[i], mse[i])
        ssim[i] = ssim_pair(real[i], recon[i], win)
    return {"ssim": float(ssim.mean()), "psnr": float(psnr.mean()), "mse": float(mse.mean()), "n": int(n)}
