"""Pick the images that the real-vs-generated sample figure shows."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from catvae.data.images import load_images, read_manifest
from catvae.data.split import read_split


def collect_samples(
    split_csv: str,
    synthetic_manifests: Mapping[tuple[str, str], str],
    *,
    classes: list[str],
    image_size: int,
    per_row: int = 6,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
    """Real training images drawn at random per class, and the first generated images of each (model, class).

    `synthetic_manifests` maps (model, class) to a manifest path. Returns `(real[class], generated[model][class])`,
    arrays `[N, 1, S, S]` in [0, 1]. Real images come from the training split only: the figure shows what the
    generators learned from, not the test set.
    """
    rng = np.random.default_rng(seed)
    split = read_split(split_csv)
    train = split[split["partition"] == "train"]
    real = {}
    for cls in classes:
        paths = train.loc[train["class"] == cls, "abspath"].to_numpy()
        chosen = rng.choice(paths, size=min(per_row, len(paths)), replace=False) if len(paths) else []
        real[cls] = load_images(list(chosen), image_size, 1)
    generated: dict[str, dict[str, np.ndarray]] = {}
    for (model, cls), manifest in synthetic_manifests.items():
        frame = read_manifest(manifest)
        generated.setdefault(model, {})[cls] = load_images(list(frame["abspath"][:per_row]), image_size, 1)
    return real, generated
