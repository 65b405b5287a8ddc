"""Load NIfTI volumes and normalise their intensities per volume, robustly, to [0, 1].

MRI intensities have no absolute scale: the same tissue reads 300 in one scan and 3,000 in another. Every
volume is therefore mapped on its own brain voxels' percentiles (not min/max, which a few hot voxels decide),
so that slices of different subjects and sequences are comparable pixels for the generators and the CNN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import nibabel as nib
import numpy as np

from catvae.config import config_block, defaults
from catvae.errors import CatvaeError

def load_volume(path: str | os.PathLike, dtype: Any = np.float64) -> np.ndarray:
    """The 3D voxel array of a NIfTI file (scaling applied); a corrupt or non-3D file is a CatvaeError naming it.

    float64 by default: a float64 file with values past float32's range (3.4e38) would turn into Inf in float32,
    and then look like background to every later step.
    """
    path = Path(path)
    try:
        image = nib.load(str(path))
        _check_3d(image.shape, path)
        data = np.asarray(image.get_fdata(dtype=dtype))
    except CatvaeError:
        raise
    except Exception as exc:  # nibabel, gzip and numpy raise many types for a damaged file
        raise CatvaeError(f"cannot read NIfTI volume {path}: {exc}") from exc
    return data[..., 0] if data.ndim == 4 else data


def volume_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """The 3D shape from a NIfTI header alone (cheap: no voxel is decoded); CatvaeError naming the file if the
    header is unreadable or the volume is not 3D."""
    path = Path(path)
    try:
        shape = tuple(int(n) for n in nib.load(str(path)).shape)
    except Exception as exc:  # a zero-byte, truncated-header or non-NIfTI file
        raise CatvaeError(f"cannot read NIfTI header of {path}: {exc}") from exc
    return _check_3d(shape, path)


def _check_3d(shape: tuple[int, ...], path: Path) -> tuple[int, int, int]:
    """The shape without a trailing singleton time axis (some tools write one); CatvaeError if not 3D."""
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise CatvaeError(f"NIfTI volume {path} has shape {tuple(shape)}; a 3D volume is needed")
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def normalization_params(normalization: Mapping[str, Any] | None) -> tuple[float, float]:
    """(lower, upper) percentiles from the `dataset.normalization` config block, validated."""
    cfg = config_block(normalization, defaults("dataset", "normalization"), "dataset.normalization")
    try:
        lower, upper = float(cfg["lower_percentile"]), float(cfg["upper_percentile"])
    except (TypeError, ValueError) as exc:
        raise CatvaeError(f"config key 'dataset.normalization': percentiles must be numbers ({exc})") from exc
    if not 0.0 <= lower < 100.0:
        raise CatvaeError(f"config key 'dataset.normalization.lower_percentile': {lower} is not in [0, 100)")
    if not lower < upper <= 100.0:
        raise CatvaeError(
            f"config key 'dataset.normalization.upper_percentile': {upper} must be in (lower_percentile, 100]"
        )
    return lower, upper


def brain_mask(volume: np.ndarray) -> np.ndarray:
    """Voxels that belong to the head, i.e. differ from the background value.

    BraTS volumes are skull-stripped with a constant background (0, or a negative constant after some
    preprocessing), so the background is the value that dominates the volume's outer faces. Where the faces
    hold no dominant value (a volume that is not skull-stripped), every finite voxel counts.
    """
    finite = np.isfinite(volume)
    faces = np.concatenate(
        [volume[[0, -1], :, :].ravel(), volume[:, [0, -1], :].ravel(), volume[:, :, [0, -1]].ravel()]
    )
    faces = faces[np.isfinite(faces)]
    if faces.size:
        values, counts = np.unique(faces, return_counts=True)
        top = int(np.argmax(counts))
        if counts[top] >= 0.5 * faces.size:
            return finite & (volume != values[top])
    return finite


def normalize_volume(
    volume: np.ndarray,
    lower_percentile: float = 0.5,
    upper_percentile: float = 99.5,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """float32 copy of `volume` with brain voxels mapped so the two percentiles go to 0 and 1 (clipped), background 0.

    Works on any numeric dtype (int16 with negative values, float64 ...). The arithmetic runs in float64, so values
    past float32's range normalise like any others; a range too wide even for float64 (the percentiles' difference
    overflows) is a CatvaeError giving the range. Non-finite voxels are never brain (see `brain_mask`) and come out
    as 0. A brain of constant intensity maps to 0, which the slice filter then drops as constant.
    """
    data = np.asarray(volume)
    if data.ndim != 3:
        raise CatvaeError(f"normalize_volume needs a 3D volume, got shape {data.shape}")
    mask = brain_mask(data) if mask is None else mask
    out = np.zeros(data.shape, dtype=np.float32)
    if not mask.any():
        return out
    brain = data[mask].astype(np.float64, copy=False)
    lo, hi = np.percentile(brain, [lower_percentile, upper_percentile])
    with np.errstate(over="ignore"):
        span = hi - lo
    if not np.isfinite(span):
        raise CatvaeError(
            f"intensity range [{lo:g}, {hi:g}] (percentiles {lower_percentile:g}-{upper_percentile:g} of the brain) "
            "is too wide to normalise even in float64"
        )
    if not span > 0:
        return out
    with np.errstate(over="ignore"):  # an outlier far past the upper percentile gives Inf, clipped to 1
        out[mask] = np.clip((brain - lo) / span, 0.0, 1.0)
    return out
