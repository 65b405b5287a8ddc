"""The files every dataset kind writes: their names, the columns of ``manifest.csv`` and ``discarded.csv``, and the
rows of datasets without planes.

One home for the format, so BraTS extraction, class folders and MedMNIST write the same files without any kind
importing another (see docs/ARCHITECTURE.md, "File contracts"). Manifests are read back by
`catvae.data.images.read_manifest`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catvae.io import JobFiles
from catvae.vocabulary.layout import DATASET_FILES

MANIFEST_COLUMNS = ["subject", "modality", "plane", "slice_index", "class", "tumor_voxels", "brain_fraction", "path"]
DISCARDED_COLUMNS = ["subject", "modality", "plane", "slice_index", "class", "reason", "value"]


@dataclass(frozen=True)
class DatasetFiles(JobFiles):
    """The files one dataset preparation writes, all in one folder (the `extract` rule's outputs).

    A manifest's `path` column is relative to the manifest's folder (``slices/<class>/<name>.png``), so the names
    are fixed: `in_folder` is the only way the library builds them.
    """

    manifest: Path
    discarded: Path
    skipped: Path
    slices: Path

    DEFAULT_NAMES = DATASET_FILES


def dataset_modality(dataset: Any) -> str:
    """The one modality name of a dataset without MRI sequences or per-file modalities: the dataset's name."""
    return dataset.get("name", "image")


def manifest_row(subject: str, modality: str, cls: str, rel_path: str) -> list[Any]:
    """A manifest row for a dataset without planes: plane ``""``, slice_index -1, tumor_voxels -1,
    brain_fraction NaN (see docs/ARCHITECTURE.md)."""
    return [subject, modality, "", -1, cls, -1, float("nan"), rel_path]


def discarded_row(subject: str, modality: str, cls: str, reason: str, value: Any = "") -> list[Any]:
    """A ``discarded.csv`` row for a dataset without planes (the same placeholders as `manifest_row`)."""
    return [subject, modality, "", -1, cls, reason, value]


__all__ = ["DISCARDED_COLUMNS", "MANIFEST_COLUMNS", "DatasetFiles", "discarded_row", "manifest_row"]
