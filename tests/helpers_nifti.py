"""Tiny BraTS-format subjects written with nibabel, for tests that need real NIfTI files on disk.

The tumour is a box at a known place, so a test can state each slice's label without re-deriving it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import nibabel as nib
import numpy as np

SHAPE = (24, 24, 16)
#: tumour box (inclusive index ranges per axis: sagittal x, coronal y, axial z); it covers the centre slices
TUMOUR_BOX = ((10, 13), (10, 13), (6, 9))
NAMES_2023 = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w", "seg": "seg"}


def write_nifti(path: Path, data: np.ndarray) -> Path:
    """Write `data` as a NIfTI file (identity affine); the extension picks .nii or .nii.gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return path


def brain(shape=SHAPE, seed: int = 0, dtype=np.int16) -> np.ndarray:
    """An ellipsoid 'brain' of textured intensities (about 100-900) on a zero background."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    radii = [0.42 * n for n in shape]
    inside = sum((g / r) ** 2 for g, r in zip(grid, radii)) <= 1.0
    values = 500 + 20 * grid[0] + 10 * grid[2] + rng.normal(0, 60, shape)
    return np.where(inside, np.clip(values, 100, 900), 0).astype(dtype)


def tumour_mask(shape=SHAPE, box=TUMOUR_BOX, enhancing: int = 4) -> np.ndarray:
    """uint8 mask with labels 1, 2 and `enhancing` (4 in BraTS 2020/2021, 3 in BraTS 2023) inside `box`, 0 elsewhere;
    `box=None` gives an empty mask."""
    mask = np.zeros(shape, dtype=np.uint8)
    if box is not None:
        (x0, x1), (y0, y1), (z0, z1) = box
        mask[x0 : x1 + 1, y0 : y1 + 1, z0 : z1 + 1] = 2
        mask[x0, y0, z0] = enhancing
        mask[x1, y1, z1] = 1
    return mask


def write_subject(
    root: Path,
    subject: str,
    naming: str = "2020",
    ext: str = ".nii.gz",
    modalities: Iterable[str] = ("flair", "t1", "t1ce", "t2"),
    seg: bool = True,
    shape=SHAPE,
    box=TUMOUR_BOX,
    seed: int = 0,
) -> Path:
    """Write one subject folder in the 2020/2021 (`<ID>_flair`) or 2023 (`<ID>-t2f`) naming; returns the folder."""
    folder = root / subject
    sep = "_" if naming == "2020" else "-"

    def name(seq: str) -> str:
        return f"{subject}{sep}{seq if naming == '2020' else NAMES_2023[seq]}{ext}"

    for i, seq in enumerate(modalities):
        write_nifti(folder / name(seq), brain(shape, seed=seed + i))
    if seg:
        write_nifti(folder / name("seg"), tumour_mask(shape, box, enhancing=4 if naming == "2020" else 3))
    return folder
