"""Which real images a generator sees, and the codes that condition it: shared by training, synthesis and
evaluation, so all three select the same rows and encode them the same way.

- `class_rows`: one class's rows of one partition, in file order.
- `training_rows`: a generator's training (or validation) rows: one class for the per-class models (vae, catvae,
  ddpm), every configured class for the conditional VAE.
- `encode_conditions`: the conditional VAE's class and modality indices of rows, refusing values the config does
  not list.
- `modality_cycle`: the modality indices synthesis cycles through for one class (those of its training images).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from catvae.errors import CatvaeError
from catvae.registry import ALL_CLASSES, generator


def class_rows(split: pd.DataFrame, class_name: str, partition: str) -> pd.DataFrame:
    """Rows of one class in one partition, in file order (so results do not depend on pandas' sort)."""
    return split[(split["class"] == class_name) & (split["partition"] == partition)].reset_index(drop=True)


def encode_conditions(
    rows: pd.DataFrame, classes: Sequence[str], modalities: Sequence[str], split_csv: str
) -> tuple[np.ndarray, np.ndarray]:
    """Class index in `classes` and modality index in `modalities` for every row (the cvae's conditions)."""
    unknown_classes = sorted(set(rows["class"]) - set(classes))
    if unknown_classes:
        raise CatvaeError(f"split file {split_csv} has class(es) {unknown_classes} not in config classes {list(classes)}")
    unknown_modalities = sorted(set(rows["modality"]) - set(modalities))
    if unknown_modalities:
        raise CatvaeError(
            f"split file {split_csv} has modality value(s) {unknown_modalities} not in config key "
            f"'dataset.modalities' {list(modalities)}"
        )
    class_index = {c: i for i, c in enumerate(classes)}
    modality_index = {m: i for i, m in enumerate(modalities)}
    labels = np.array([class_index[c] for c in rows["class"]], dtype=np.int64)
    mods = np.array([modality_index[m] for m in rows["modality"]], dtype=np.int64)
    return labels, mods


def training_rows(
    split: pd.DataFrame, split_csv: str, model_name: str, group: str, classes: Sequence[str], partition: str = "train"
) -> pd.DataFrame:
    """The training (or `partition`) images of one generator: one class for vae/catvae, every class for cvae."""
    if generator(model_name).conditional:
        if group != ALL_CLASSES:
            raise CatvaeError(
                f"model {model_name!r} trains over all classes: group must be {ALL_CLASSES!r}, got {group!r}"
            )
        rows = split[split["partition"] == partition]
        rows = rows[rows["class"].isin(classes)].reset_index(drop=True)
        label = "any class"
    else:
        if group not in classes:
            raise CatvaeError(f"generator group {group!r} is not one of the classes {list(classes)}")
        rows = class_rows(split, group, partition)
        label = f"class {group!r}"
    if rows.empty:
        word = "training" if partition == "train" else ("validation" if partition == "val" else partition)
        raise CatvaeError(f"no {word} images of {label} in split file {split_csv}")
    return rows


def modality_cycle(payload: dict, train_rows: pd.DataFrame, class_name: str) -> list[int]:
    """Modality indices present among the class's training images, in the checkpoint's modality order."""
    present = set(train_rows["modality"])
    cycle = [i for i, m in enumerate(payload["modalities"]) if m in present]
    if not cycle:
        raise CatvaeError(
            f"class {class_name!r} training images have modalities {sorted(present)}, none of the generator's "
            f"{payload['modalities']}"
        )
    return cycle
