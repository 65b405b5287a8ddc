"""One DatasetKind per dataset.kind (catvae/data/kinds.py): the schema's enum, the inputs each declares, no import cycle."""

from __future__ import annotations

import subprocess
import sys

import pytest

from catvae.config import schema_enum
from catvae.errors import CatvaeError


def test_dataset_kinds_are_the_schema_enum_and_declare_their_inputs():
    from catvae.data.kinds import KINDS, dataset_classes, dataset_kind

    assert tuple(KINDS) == schema_enum("dataset", "kind")
    assert dataset_kind({"kind": "phantom"}).inputs({"kind": "phantom"}, "results/x/phantom") == {
        "cohort": "results/x/phantom"}
    assert dataset_kind({"kind": "brats"}).inputs({"kind": "brats", "root": "/data/b"}, "c") == {"root": "/data/b"}
    assert [k for k, kind in KINDS.items() if kind.needs_root] == ["brats", "folder"]
    assert dataset_classes({"kind": "phantom"}) == ["NoTumor", "Tumor"]
    with pytest.raises(CatvaeError, match="dataset.kind"):
        dataset_kind({"kind": "gan"})


def test_the_kinds_and_their_readers_import_without_a_cycle():
    """Each module imports on its own, first, in a fresh interpreter (an import cycle fails one of them)."""
    for module in ("catvae.data.kinds", "catvae.data.folder", "catvae.data.medmnist", "catvae.config",
                   "catvae.vocabulary.steps", "catvae.vocabulary.layout", "catvae.preflight"):
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


def test_medmnist_declares_the_files_it_reads(tmp_path):
    """Every configured file; under `on_error: skip` a missing file is left out, not declared (the run skips it)."""
    import numpy as np

    from catvae.data.kinds import dataset_kind

    for name in ("a", "b"):
        np.savez(tmp_path / f"{name}.npz", **{f"{part}_{kind}": (np.zeros((2, 4, 4), np.uint8) if kind == "images"
                                                                  else np.array([0, 1]))
                                            for part in ("train", "val", "test") for kind in ("images", "labels")})
    files = [{"path": str(tmp_path / f"{n}.npz"), "modality": n} for n in ("a", "b")]
    medmnist = {"kind": "medmnist", "medmnist": {"files": files}}
    assert dataset_kind(medmnist).inputs(medmnist, "c") == {"medmnist": [f["path"] for f in files]}
    skip = {**medmnist, "on_error": "skip", "medmnist": {"files": [*files, {"path": str(tmp_path / "gone.npz")}]}}
    assert dataset_kind(skip).inputs(skip, "c") == {"medmnist": [f["path"] for f in files]}
