"""Reading manifests and PNG images into arrays, turning source images into square [0, 1] gray, writing 8-bit PNGs.

One place for this logic because every dataset kind writes its slices the same way, and generators, synthesis,
classifier and metrics all read the same slices.
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
    """Load one image as float32 `[channels, image_size, image_size]` in [0, 1] (gray by `image_to_gray`).

    Grayscale is replicated to 3 channels when asked (the paper fed RGB-replicated slices to its models).
    """
    try:
        with Image.open(path) as img:
            img.load()
            arr = image_to_gray(img)
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


def image_to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL image -> float64 ``[H, W]`` gray in [0, 1], the same rule for every source mode.

    16-bit / 32-bit integer and float images are min-max scaled per image (ultrasound and X-ray often use only
    part of the 16-bit range). Images with transparency (RGBA, LA, palette with a
    transparent index) are composited onto black, the padding colour, so transparent areas do not turn into
    whatever colour they happen to store. Colour becomes luma (ITU-R 601, PIL's "L").
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def square_image(image: np.ndarray, image_size: int) -> np.ndarray:
    """Zero-pad a 2D [0, 1] image to a centred square, then resize it to `image_size` (aspect ratio kept)."""
    h, w = image.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    padded = np.pad(image, ((top, side - h - top), (left, side - w - left)))
    if side != image_size:
        padded = resize(padded, (image_size, image_size), order=1, anti_aliasing=side > image_size,
                        preserve_range=True)
    return np.clip(padded, 0.0, 1.0)
