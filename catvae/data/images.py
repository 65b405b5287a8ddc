"""Reading manifests and PNG images into arrays, and writing 8-bit PNGs.

One place for this logic because generators, synthesis, classifier and metrics all read the same slices.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image
from skimage.transform import resize

from catvae.errors import CatvaeError


def read_manifest(path: str | os.PathLike, required: Sequence[str] = ("class", "path")) -> pd.DataFrame:
    """Read a manifest CSV and make its `path` column absolute (paths are relative to the CSV's folder)."""
    path = Path(path)
    if not path.is_file():
        raise CatvaeError(f"manifest not found: {path}")
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"subject": str, "class": str})
    except Exception as exc:  # pandas raises several types for a corrupt file
        raise CatvaeError(f"cannot read manifest {path}: {exc}") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise CatvaeError(f"manifest {path} lacks column(s) {missing}")
    if "path" in frame.columns:
        frame["abspath"] = [str((path.parent / str(p)).resolve()) for p in frame["path"]]
    return frame


def load_image(path: str | os.PathLike, image_size: int, channels: int = 1) -> np.ndarray:
    """Load one image as float32 `[channels, image_size, image_size]` in [0, 1].

    Grayscale is replicated to 3 channels when asked (the paper fed RGB-replicated slices to its models).
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                arr = np.asarray(img, dtype=np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
            else:
                arr = np.asarray(img.convert("L"), dtype=np.float64) / 255.0
    except (OSError, ValueError) as exc:
        raise CatvaeError(f"cannot read image {path}: {exc}") from exc
    if arr.shape != (image_size, image_size):
        arr = resize(arr, (image_size, image_size), order=1, anti_aliasing=True, preserve_range=True)
    arr = np.clip(arr, 0.0, 1.0).astype(np.float32)
    return np.repeat(arr[None], channels, axis=0)


def load_images(paths: Sequence[str | os.PathLike], image_size: int, channels: int = 1) -> np.ndarray:
    """Load many images into one float32 array `[N, channels, image_size, image_size]`."""
    out = np.empty((len(paths), channels, image_size, image_size), dtype=np.float32)
    for i, p in enumerate(paths):
        out[i] = load_image(p, image_size, channels)
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] float image (`[H, W]` or `[C, H, W]`, channels averaged) -> 8-bit grayscale `[H, W]`."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr.mean(axis=0)
    return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image in [0, 1] (or uint8) as an 8-bit grayscale PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = image if image.dtype == np.uint8 and image.ndim == 2 else to_uint8(image)
    Image.fromarray(arr, mode="L").save(path)
