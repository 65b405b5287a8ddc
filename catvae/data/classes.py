"""Which classes a dataset has, known before any file is written (Snakemake needs them to build the DAG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from catvae.data.slicing import NO_TUMOR, TUMOR
from catvae.errors import CatvaeError

BRATS_CLASSES = [NO_TUMOR, TUMOR]


def dataset_classes(dataset: Mapping[str, Any]) -> list[str]:
    """Class names in a fixed order (the order of the classifier's outputs and of every table).

    BraTS-like data is NoTumor / Tumor (Tumor is the positive class). Class-folder datasets take the configured
    list, else their sub-folders sorted by name. MedMNIST takes the global class names of its files.
    """
    kind = dataset["kind"]
    if kind in ("phantom", "brats"):
        return list(BRATS_CLASSES)
    if kind == "folder":
        from catvae.data.folder import folder_classes

        configured = (dataset.get("folder") or {}).get("classes")
        # the configured list as it stands (its folders are checked when the images are read), else the sub-folders
        return list(configured) if configured else folder_classes(Path(dataset["root"]), None)
    if kind == "medmnist":
        from catvae.data.medmnist import medmnist_classes

        return medmnist_classes(dataset["medmnist"]["files"], dataset.get("on_error"))
    raise CatvaeError(f"config key 'dataset.kind': unknown kind {kind!r}")


def dataset_modalities(dataset: Mapping[str, Any]) -> list[str]:
    """Modality names the conditional VAE embeds (one per MRI sequence, per MedMNIST file, or the dataset itself)."""
    kind = dataset["kind"]
    if kind in ("phantom", "brats"):
        from catvae.data.brats import canonical_modalities

        return canonical_modalities(dataset["modalities"])
    if kind == "medmnist":
        from catvae.data.medmnist import medmnist_modalities

        return medmnist_modalities(dataset["medmnist"]["files"], dataset.get("on_error"))
    return [dataset.get("name", "image")]
