"""The dataset kinds (`dataset.kind`): one `DatasetKind` each says what the rest of the pipeline needs to know about it.

Its classes and modalities (known before any file is written: Snakemake needs them to build the DAG), the files
its `extract` job reads (declared as the rule's inputs), whether it needs `dataset.root` and what else its config
must hold, the subjects known before extraction (the pre-flight), and how it is prepared into `manifest.csv` +
slices. The kinds are the schema's `dataset.kind` enum (a test checks they agree). Torch-free; each kind's reader
module is imported only when it is used (none imports this module, so there is no cycle).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from catvae.data.publish import PreparedDataset
from catvae.errors import CatvaeError


class DatasetKind:
    """One dataset kind; the base is a kind that reads its images from `dataset.root`."""

    name: str = ""
    #: `dataset.root` must name the dataset's folder.
    needs_root: bool = True
    #: The `phantom` rule writes the volumes `extract` reads.
    phantom_cohort: bool = False

    def classes(self, dataset: Mapping[str, Any]) -> list[str]:
        """Class names in a fixed order (the order of the classifier's outputs and of every table)."""
        raise NotImplementedError

    def modalities(self, dataset: Mapping[str, Any]) -> list[str]:
        """Modality names the conditional VAE embeds (by default the dataset itself)."""
        from catvae.data.manifest import dataset_modality

        return [dataset_modality(dataset)]

    def inputs(self, dataset: Mapping[str, Any], cohort: str) -> dict[str, Any]:
        """The files and folders the `extract` job reads (its declared inputs); `cohort` is where the `phantom`
        rule writes the phantom cohort."""
        return {"root": str(dataset["root"])} if dataset.get("root") else {}

    def problems(self, dataset: Mapping[str, Any]) -> list[str]:
        """What the kind needs of its config block beyond the schema (validation reports them with the rest)."""
        if self.needs_root and not dataset.get("root"):
            return [f"config key 'dataset.root' is required for dataset.kind '{self.name}'"]
        return []

    def subjects(self, dataset: Mapping[str, Any]) -> int | None:
        """Subjects known before extraction (the pre-flight checks folds against them), or None."""
        return None

    def subjects_where(self, dataset: Mapping[str, Any]) -> str:
        """Where `subjects` counted them, for the pre-flight's message."""
        return f"subject folders under {dataset['root']}"

    def prepare(self, dataset: Mapping[str, Any], out_dir: str | os.PathLike, cohort: str | os.PathLike | None,
                threads: int) -> PreparedDataset:
        raise NotImplementedError


class BratsKind(DatasetKind):
    """A BraTS 2020/2021 or 2023 copy at `dataset.root`: NoTumor / Tumor slices of the configured MRI sequences."""

    name = "brats"

    def classes(self, dataset: Mapping[str, Any]) -> list[str]:
        from catvae.data.brats.slicing import NO_TUMOR, TUMOR

        return [NO_TUMOR, TUMOR]  # Tumor is the positive class

    def modalities(self, dataset: Mapping[str, Any]) -> list[str]:
        from catvae.data.brats.discover import canonical_modalities

        return canonical_modalities(dataset["modalities"])

    def subjects(self, dataset: Mapping[str, Any]) -> int | None:
        if dataset.get("root") and Path(dataset["root"]).is_dir():
            from catvae.data.brats.discover import subject_folders

            return len(subject_folders(Path(dataset["root"])))
        return None

    def volumes_root(self, dataset: Mapping[str, Any], cohort: str | os.PathLike | None) -> str | os.PathLike:
        root = dataset.get("root")
        if root is None:
            raise CatvaeError("config key 'dataset.root' is required for dataset.kind 'brats'")
        return root

    def prepare(self, dataset, out_dir, cohort, threads):
        from catvae.data.brats.extract import extract_dataset

        return extract_dataset(
            Path(self.volumes_root(dataset, cohort)),
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


class PhantomKind(BratsKind):
    """The embedded BraTS-format phantom cohort, written by the `phantom` rule and read as BraTS."""

    name = "phantom"
    needs_root = False
    phantom_cohort = True

    def inputs(self, dataset: Mapping[str, Any], cohort: str) -> dict[str, Any]:
        return {"cohort": cohort}

    def subjects(self, dataset: Mapping[str, Any]) -> int | None:
        return int(dataset["phantom"]["n_subjects"])

    def subjects_where(self, dataset: Mapping[str, Any]) -> str:
        return "dataset.phantom.n_subjects"

    def volumes_root(self, dataset: Mapping[str, Any], cohort: str | os.PathLike | None) -> str | os.PathLike:
        return cohort  # type: ignore[return-value]


class FolderKind(DatasetKind):
    """Class sub-folders of images at `dataset.root` (e.g. BUSI)."""

    name = "folder"

    def classes(self, dataset: Mapping[str, Any]) -> list[str]:
        from catvae.data.folder import folder_classes

        configured = (dataset.get("folder") or {}).get("classes")
        # the configured list as it stands (its folders are checked when the images are read), else the sub-folders
        return list(configured) if configured else folder_classes(Path(dataset["root"]), None)

    def prepare(self, dataset, out_dir, cohort, threads):
        from catvae.data.folder import prepare_folder_dataset

        return prepare_folder_dataset(dataset, Path(out_dir))


class MedmnistKind(DatasetKind):
    """Local MedMNIST `.npz` files, one modality per file, classes mapped to global classes."""

    name = "medmnist"
    needs_root = False

    def classes(self, dataset: Mapping[str, Any]) -> list[str]:
        from catvae.data.medmnist import medmnist_classes

        return medmnist_classes(dataset["medmnist"]["files"], dataset.get("on_error"))

    def modalities(self, dataset: Mapping[str, Any]) -> list[str]:
        from catvae.data.medmnist import medmnist_modalities

        return medmnist_modalities(dataset["medmnist"]["files"], dataset.get("on_error"))

    def inputs(self, dataset: Mapping[str, Any], cohort: str) -> dict[str, Any]:
        """The files extract reads: every configured file, less those `on_error: skip` leaves out."""
        from catvae.data.medmnist import resolve_files

        usable = resolve_files(dataset["medmnist"]["files"], dataset.get("on_error"))
        return {"medmnist": [str(f.path) for f in usable]}

    def problems(self, dataset: Mapping[str, Any]) -> list[str]:
        files = dataset["medmnist"]["files"]
        if not files:
            return ["config key 'dataset.medmnist.files' must list at least one .npz file for kind 'medmnist'"]
        paths = [f["path"] for f in files]
        twice = [p for i, p in enumerate(paths) if p in paths[:i]]
        if twice:  # the same images would enter the study twice, as two modalities or class ranges
            return [f"config key 'dataset.medmnist.files': path {twice[0]!r} is given more than once"]
        return []

    def prepare(self, dataset, out_dir, cohort, threads):
        from catvae.data.medmnist import prepare_medmnist_dataset

        return prepare_medmnist_dataset(dataset, Path(out_dir))


#: Every kind (the schema's `dataset.kind` enum, in its order).
KINDS: dict[str, DatasetKind] = {kind.name: kind for kind in (PhantomKind(), BratsKind(), FolderKind(), MedmnistKind())}


def dataset_kind(dataset: Mapping[str, Any]) -> DatasetKind:
    """The kind of a `dataset` config block; an unknown one raises CatvaeError naming `dataset.kind`."""
    try:
        return KINDS[dataset["kind"]]
    except KeyError:
        raise CatvaeError(f"config key 'dataset.kind': unknown kind {dataset['kind']!r}") from None


def dataset_classes(dataset: Mapping[str, Any]) -> list[str]:
    """Class names in a fixed order (the order of the classifier's outputs and of every table).

    BraTS-like data is NoTumor / Tumor (Tumor is the positive class). Class-folder datasets take the configured
    list, else their sub-folders sorted by name. MedMNIST takes the global class names of its files.
    """
    return dataset_kind(dataset).classes(dataset)


def dataset_modalities(dataset: Mapping[str, Any]) -> list[str]:
    """Modality names the conditional VAE embeds (one per MRI sequence, per MedMNIST file, or the dataset itself)."""
    return dataset_kind(dataset).modalities(dataset)


def prepare_dataset(
    dataset: Mapping[str, Any],
    out_dir: str | os.PathLike,
    cohort: str | os.PathLike | None = None,
    threads: int = 1,
) -> PreparedDataset:
    """Write `out_dir/slices/`, `manifest.csv`, `discarded.csv` and `skipped_subjects.csv` for `dataset` (the
    `extract` rule and `catvae extract`); every kind returns the same summary (`PreparedDataset`).

    `cohort` is the phantom folder written by the `phantom` rule (kind `phantom`); other kinds read `dataset.root`.
    The files of an earlier run are removed first, so a run that stops never leaves reports that look like its own.
    """
    from catvae.data.manifest import DatasetFiles

    kind = dataset_kind(dataset)
    files = DatasetFiles.in_folder(out_dir)
    for report in (files.manifest, files.discarded, files.skipped):
        report.unlink(missing_ok=True)
    return kind.prepare(dataset, out_dir, cohort, threads)
