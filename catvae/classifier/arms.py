"""Training-set arms: which images, beyond the real training split, a classifier run is trained on.

An arm name is `none`, `weighted`, `<generator>@<target>`, `oversample@<target>` or `classic@<target>`, where the
target is a per-class image count or `balance` (the majority class's real training count). Every arm with a target
fills each class with `max(0, target - n_real_train[class])` extra images, so arms differ only in where extras come
from. `none` and `weighted` train on the real images alone; `weighted` weighs the loss by inverse class frequency
(the first remedy a practitioner tries; the trainer applies it, the training set is the same as `none`'s).
Extras are drawn image by image from a per-class seeded stream, so a larger target's extras start with a
smaller target's extras, as the synthetic manifests' prefix rule does for generators.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from catvae.classifier.augment import draw_recipe
from catvae.data.images import read_manifest
from catvae.data.split import check_split
from catvae.errors import CatvaeError
from catvae.vocabulary.arms import BALANCE, RESAMPLING, Arm

EXTRA_COLUMNS = ["class", "abspath", "source", "origin", "subject", "recipe"]


def parse_arm(arm: str) -> tuple[str, int | str | None]:
    """Split an arm name into (method, target), raising CatvaeError on anything malformed (`Arm.parse`).

    `"none"` -> `("none", None)`; `"weighted"` -> `("weighted", None)`; `"catvae@1000"` -> `("catvae", 1000)`;
    `"classic@balance"` -> `("classic", "balance")`.
    """
    parsed = Arm.parse(arm)
    return parsed.method, parsed.target


@dataclass
class TrainingSet:
    """What one arm trains on: the real training rows, the extra rows, and the per-class composition.

    `extra` has columns `class, abspath, source, origin, subject, recipe`: `source` is the method
    (generator name, `oversample` or `classic`), `origin` the synthetic manifest or the real image an extra
    was copied from, `subject` that real image's subject (empty for synthetic images), `recipe` the
    augmentation as JSON (empty when the image is used as is).
    """

    arm: str
    method: str
    target: int | str | None
    target_count: int | None
    classes: list[str]
    real: pd.DataFrame
    extra: pd.DataFrame
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per training image (real first), the form the trainer loads and `training_set.csv` records."""
        real = pd.DataFrame(
            {
                "class": self.real["class"].to_numpy(),
                "abspath": self.real["abspath"].to_numpy(),
                "source": "real",
                "origin": "",
                "subject": self.real["subject"].astype(str).to_numpy(),
                "recipe": "",
            }
        )
        return pd.concat([real, self.extra[EXTRA_COLUMNS]], ignore_index=True)


def build_training_set(
    split: pd.DataFrame,
    arm: str,
    classes: list[str],
    synthetic_manifests: dict[str, str],
    seed: int,
) -> TrainingSet:
    """Real training split plus the arm's extras for each class.

    `synthetic_manifests` maps class name -> `synthetic/<generator>/<class>/manifest.csv` of the arm's
    generator (ignored for `none` and the baselines); a class that needs no extras needs no manifest.
    """
    method, target = parse_arm(arm)
    split = check_split(split, classes)
    real = split[split["partition"] == "train"].reset_index(drop=True)
    n_real = {c: int((real["class"] == c).sum()) for c in classes}
    empty = [c for c, n in n_real.items() if n == 0]
    if empty:
        raise CatvaeError(f"split.csv has no training images of class(es) {empty}")
    target_count = None if target is None else (max(n_real.values()) if target == BALANCE else int(target))

    parts = []
    for k, cls in enumerate(classes):
        n_extra = 0 if target_count is None else max(0, target_count - n_real[cls])
        if n_extra == 0:
            continue
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), k]))
        pool = real[real["class"] == cls].reset_index(drop=True)
        if method in RESAMPLING:
            parts.append(_resample(pool, cls, n_extra, rng, augment=method == "classic"))
        else:
            parts.append(synthetic_rows(method, cls, n_extra, synthetic_manifests))
    extra = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=EXTRA_COLUMNS)
    counts = {}
    for cls in classes:
        n_syn = int((extra["class"] == cls).sum())
        counts[cls] = {"total": n_real[cls] + n_syn, "real": n_real[cls], "synthetic": n_syn}
    return TrainingSet(arm, method, target, target_count, list(classes), real, extra, counts)


def _resample(pool: pd.DataFrame, cls: str, n: int, rng: np.random.Generator, augment: bool) -> pd.DataFrame:
    """Draw `n` real training images with replacement (one draw per image, so targets nest), with recipes if asked."""
    rows: list[dict[str, Any]] = []
    for _ in range(n):
        src = pool.iloc[int(rng.integers(len(pool)))]
        rows.append(
            {
                "class": cls,
                "abspath": src["abspath"],
                "source": "classic" if augment else "oversample",
                "origin": src["abspath"],
                "subject": str(src["subject"]),
                "recipe": json.dumps(draw_recipe(rng), sort_keys=True) if augment else "",
            }
        )
    return pd.DataFrame(rows, columns=EXTRA_COLUMNS)


def synthetic_rows(generator: str, cls: str, n: int, manifests: dict[str, str]) -> pd.DataFrame:
    """The first `n` rows of the generator's manifest for `cls` (generation order: targets are nested)."""
    if cls not in manifests:
        raise CatvaeError(
            f"arm needs {n} synthetic '{cls}' images from generator '{generator}' but no manifest was given "
            f"for class '{cls}' (got classes {sorted(manifests)})"
        )
    path = manifests[cls]
    frame = read_manifest(path, required=("index", "class", "model", "path"))
    wrong_class = sorted(set(frame["class"].astype(str)) - {cls})
    wrong_model = sorted(set(frame["model"].astype(str)) - {generator})
    if wrong_class or wrong_model:
        raise CatvaeError(
            f"synthetic manifest {path} should hold only class '{cls}' from model '{generator}', "
            f"found class(es) {wrong_class or [cls]} and model(s) {wrong_model or [generator]}"
        )
    if len(frame) < n:
        raise CatvaeError(f"synthetic manifest {path} has {len(frame)} rows but the arm needs {n} '{cls}' images")
    head = frame.iloc[:n]
    return pd.DataFrame(
        {
            "class": cls,
            "abspath": head["abspath"].to_numpy(),
            "source": generator,
            "origin": str(Path(path).resolve()),  # absolute, like `abspath`: training_set.csv makes both relative
            "subject": "",
            "recipe": "",
        },
        columns=EXTRA_COLUMNS,
    )
