"""End to end through Snakemake for the other dataset kinds: a class-folder tree and MedMNIST .npz files.

The rest of the DAG must not care which kind produced the slices: both runs go from raw files to the tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import TINY_CONFIG, run_snakemake, write_config
from catvae.config import deep_update

pytestmark = pytest.mark.workflow

TINY = deep_update(
    {k: v for k, v in TINY_CONFIG.items() if k != "dataset"},
    {
        # one fold, seed and generator, no baselines: the other axes (per-class generators, baselines, folds, seeds)
        # are the phantom tiny study's to test; the conditional VAE is one training job whatever the class count
        # (MedMNIST here has 5 classes) and uses what only these kinds vary: classes and modalities
        "seeds": [0],
        "evaluation": {"folds": 1},
        "generators": {"models": ["cvae"], "replicates": 1},
        "synthesis": {"targets": [30]},
        # 24, not TINY_CONFIG's 16: the paper CNN needs a side >= 22 for its three valid conv + pool stages
        "classifier": {"image_size": 24, "baselines": []},
    },
)


def _run(workdir: Path, dataset: dict) -> Path:
    config = deep_update(TINY, {"dataset": dataset})
    proc = run_snakemake(workdir, write_config(workdir, config))
    if proc.returncode != 0:
        logs = "\n".join(
            f"--- {p}\n{p.read_text()[-2500:]}" for p in sorted((workdir / "results").rglob("*.log"))
            if "error" in p.read_text().lower()
        )
        pytest.fail(f"snakemake failed:\n{proc.stderr[-4000:]}\n{logs}")
    return workdir / "results" / dataset["name"]


def _check_study(results: Path, classes: list[str], modalities: set[str]) -> pd.DataFrame:
    manifest = pd.read_csv(results / "data" / "manifest.csv", dtype={"subject": str})
    assert set(manifest["class"]) == set(classes)
    assert set(manifest["modality"]) == modalities
    split = pd.read_csv(results / "data" / "fold0" / "split.csv", dtype={"subject": str})
    assert split.groupby("subject")["partition"].nunique().eq(1).all()
    table = pd.read_csv(results / "tables" / "classification.csv")
    assert len(table) > 0
    metrics = json.loads((results / "classifier" / "fold0" / "cvae@30" / "seed0" / "metrics.json").read_text())
    assert metrics["classes"] == classes
    assert (results / "generators" / "fold0" / "cvae" / "rep0" / "all" / "checkpoint.pt").is_file()
    for cls in classes:
        assert (results / "generators" / "fold0" / "cvae" / "rep0" / cls / "quality.json").is_file()
    return split


def test_class_folder_study(tmp_path):
    root = tmp_path / "busi"
    rng = np.random.default_rng(0)
    for k, cls in enumerate(["normal", "benign", "malignant"]):
        (root / cls).mkdir(parents=True)
        for i in range(10 + 4 * k):
            img = (rng.random((18, 24)) * 80 + 60 * k).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{cls} ({i}).png")
            Image.fromarray(np.zeros((18, 24), np.uint8)).save(root / cls / f"{cls} ({i})_mask.png")
    (root / "benign" / "benign (99).png").write_bytes(b"corrupt")

    classes = ["normal", "benign", "malignant"]
    # on_error: skip, so the corrupt image is left out and listed (the default, stop, would end the run naming it)
    results = _run(tmp_path, {"name": "tinybusi", "kind": "folder", "root": str(root), "image_size": 16,
                              "on_error": "skip", "folder": {"classes": classes}})
    _check_study(results, classes, {"tinybusi"})
    discarded = pd.read_csv(results / "data" / "discarded.csv")
    assert (discarded["reason"] == "mask").sum() == 42 and len(discarded) == 42
    skipped = pd.read_csv(results / "data" / "skipped_subjects.csv")
    assert skipped["subject"].tolist() == ["benign (99)"]
    assert skipped["reason"].iloc[0].startswith("corrupt image benign/benign (99).png")


def _npz(path: Path, n_classes: int, rgb: bool, seed: int) -> str:
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in {"train": 24, "val": 10, "test": 10}.items():
        labels = np.arange(n) % n_classes
        base = (labels * 200 // n_classes).astype(np.uint8)[:, None, None]
        images = np.clip(base + rng.integers(0, 50, (n, 28, 28)), 0, 255).astype(np.uint8)
        arrays[f"{part}_images"] = np.repeat(images[..., None], 3, axis=3) if rgb else images
        arrays[f"{part}_labels"] = labels.reshape(-1, 1).astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return str(path)


def test_medmnist_study(tmp_path):
    files = [{"path": _npz(tmp_path / "pathmnist.npz", 3, True, 1)},
             {"path": _npz(tmp_path / "octmnist.npz", 2, False, 2)}]
    results = _run(tmp_path, {"name": "tinymnist", "kind": "medmnist", "image_size": 16, "medmnist": {"files": files}})
    classes = ["pathmnist_0", "pathmnist_1", "pathmnist_2", "octmnist_0", "octmnist_1"]
    split = _check_study(results, classes, {"pathmnist", "octmnist"})
    # MedMNIST's own partitions are kept: the subject id carries the partition the file gave it
    assert (split["subject"].str.split("_").str[1] == split["partition"]).all()
