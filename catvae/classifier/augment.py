"""Classical augmentation, the baseline a reviewer asks for: flips, small rotations, intensity jitter.

A recipe is drawn once per extra image when the training set is built (seeded) and stored with the row, so
the same arm and seed give the same images, and the recipe of every augmented image can be inspected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage.transform import rotate

MAX_ROTATION_DEG = 10.0
BRIGHTNESS = 0.1  # additive shift, uniform in [-BRIGHTNESS, BRIGHTNESS] of the [0, 1] range
CONTRAST = 0.1  # multiplicative factor around the image mean, uniform in [1 - CONTRAST, 1 + CONTRAST]


def draw_recipe(rng: np.random.Generator) -> dict[str, Any]:
    """Draw one augmentation: independent horizontal / vertical flips, a rotation, brightness and contrast."""
    return {
        "flip_h": bool(rng.random() < 0.5),
        "flip_v": bool(rng.random() < 0.5),
        "angle": float(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG)),
        "brightness": float(rng.uniform(-BRIGHTNESS, BRIGHTNESS)),
        "contrast": float(rng.uniform(1.0 - CONTRAST, 1.0 + CONTRAST)),
    }


def apply_recipe(image: np.ndarray, recipe: dict[str, Any]) -> np.ndarray:
    """Apply a recipe to one float image `[C, H, W]` in [0, 1]; returns a new float32 image in [0, 1].

    Rotation pads with the edge value (background for MRI slices) so no artificial black corners appear.
    """
    out = np.asarray(image, dtype=np.float64)
    if recipe["flip_h"]:
        out = out[:, :, ::-1]
    if recipe["flip_v"]:
        out = out[:, ::-1, :]
    if recipe["angle"]:
        out = np.stack([rotate(ch, recipe["angle"], order=1, mode="edge", preserve_range=True) for ch in out])
    mean = out.mean()
    out = (out - mean) * recipe["contrast"] + mean + recipe["brightness"]
    return np.clip(out, 0.0, 1.0).astype(np.float32)
