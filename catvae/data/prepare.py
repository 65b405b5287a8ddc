"""One entry point from a `dataset` config block to `manifest.csv` + slices, whatever the dataset kind.

The rest of the DAG reads only the manifest and split, so it never needs to know which kind produced them; every
kind returns the same summary (`catvae.data.publish.PreparedDataset`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from catvae.data.manifest import DatasetFiles
from catvae.data.publish import PreparedDataset
from catvae.errors import CatvaeError


def prepare_dataset(
    dataset: Mapping[str, Any],
    out_dir: str | os.PathLike,
    cohort: str | os.PathLike | None = None,
    threads: int = 1,
) -> PreparedDataset:
    """Write `out_dir/slices/`, `manifest.csv`, `discarded.csv` and `skipped_subjects.csv` for `dataset`.

    `cohort` is the phantom folder written by the `phantom` rule (kind `phantom`); other kinds read `dataset.root`.
    The files of an earlier run are removed first, so a run that stops never leaves reports that look like its own.
    """
    kind = dataset["kind"]
    files = DatasetFiles.in_folder(out_dir)
    for report in (files.manifest, files.discarded, files.skipped):
        report.unlink(missing_ok=True)
    if kind in ("phantom", "brats"):
        from catvae.data.brats_extract import extract_dataset

        root = cohort if kind == "phantom" else dataset.get("root")
        if root is None:
            raise CatvaeError("config key 'dataset.root' is required for dataset.kind 'brats'")
        return extract_dataset(
            Path(root),
            Path(out_dir),
            modalities=list(dataset["modalities"]),
            planes=list(dataset["planes"]),
            selection=dict(dataset["selection"]),
            image_size=int(dataset["image_size"]),
            normalization=dict(dataset["normalization"]),
            filter=dict(dataset["filter"]),
            threads=threads,
            brats=dict(dataset.get("brats") or {}),
            on_error=dataset.get("on_error"),
            nonfinite=dataset.get("nonfinite"),
        )
    if kind == "folder":
        from catvae.data.folder import prepare_folder_dataset

        return prepare_folder_dataset(dataset, Path(out_dir))
    if kind == "medmnist":
        from catvae.data.medmnist import prepare_medmnist_dataset

        return prepare_medmnist_dataset(dataset, Path(out_dir))
    raise CatvaeError(f"config key 'dataset.kind': unknown kind {kind!r}")
