"""MedMNIST .npz files: global class mapping, modalities, conversion, preset partitions, errors, configs."""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from catvae.config import validate_config
from catvae.config import load_config
from catvae.data.kinds import dataset_classes, dataset_modalities
from catvae.data.medmnist import medmnist_classes, medmnist_modalities, prepare_medmnist_dataset
from catvae.errors import CatvaeError

from conftest import REPO
SIZES = {"train": 6, "val": 3, "test": 4}


def make_npz(path: Path, n_classes: int, rgb: bool, side: int = 28, seed: int = 0, **drop) -> Path:
    """A tiny file in the MedMNIST layout: {train,val,test}_{images,labels}, labels [N, 1] uint8."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in SIZES.items():
        shape = (n, side, side, 3) if rgb else (n, side, side)
        arrays[f"{part}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{part}_labels"] = (np.arange(n) % n_classes).astype(np.uint8).reshape(-1, 1)
    for key in drop:
        arrays.pop(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture()
def two_files(tmp_path):
    return [
        {"path": str(make_npz(tmp_path / "pathmnist.npz", 3, rgb=True, seed=1))},
        {"path": str(make_npz(tmp_path / "octmnist_64.npz", 2, rgb=False, seed=2, side=28))},
    ]


def dataset(files, image_size=32) -> dict:
    # no generators: 28 is not a multiple of 8, which only the VAE / CAT-VAE need; this tests the data step alone
    return validate_config({"dataset": {"name": "mm", "kind": "medmnist", "image_size": image_size,
                                        "medmnist": {"files": files}}, "generators": {"models": []}})["dataset"]


def test_global_classes_and_modalities(two_files):
    assert medmnist_classes(two_files) == ["pathmnist_0", "pathmnist_1", "pathmnist_2", "octmnist_0", "octmnist_1"]
    assert medmnist_modalities(two_files) == ["pathmnist", "octmnist"]  # size suffix '_64' dropped
    ds = dataset(two_files)
    assert dataset_classes(ds) == medmnist_classes(two_files)
    assert dataset_modalities(ds) == ["pathmnist", "octmnist"]


def test_explicit_names_offsets_and_modality(two_files):
    files = [dict(two_files[1], modality="oct", class_names=["normal", "drusen"], class_offset=3),
             dict(two_files[0], class_offset=0, class_names=["adi", "back", "deb"])]
    assert medmnist_classes(files) == ["adi", "back", "deb", "normal", "drusen"]
    assert medmnist_modalities(files) == ["oct", "pathmnist"]


def test_classes_read_only_labels(two_files, monkeypatch):
    """Snakemake calls these at DAG build: image arrays must not be read."""
    real = np.lib.npyio.NpzFile.__getitem__
    touched = []

    def spy(self, key):
        touched.append(key)
        return real(self, key)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", spy)
    medmnist_classes(two_files)
    medmnist_modalities(two_files)
    assert touched and all(k.endswith("_labels") for k in touched)


def test_prepare_writes_manifest_with_preset_partitions(two_files, tmp_path, caplog):
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO, logger="catvae.data.medmnist"):
        summary = prepare_medmnist_dataset(dataset(two_files), out)
    manifest = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert list(manifest.columns) == [
        "subject", "modality", "plane", "slice_index", "class", "tumor_voxels", "brain_fraction", "path", "partition"
    ]
    assert len(manifest) == 2 * sum(SIZES.values()) == summary.kept
    assert summary.partitions == {part: 2 * n for part, n in SIZES.items()}
    assert manifest.groupby("modality")["partition"].value_counts().unstack().loc["pathmnist"].to_dict() == SIZES
    assert set(manifest["plane"]) == {""} and set(manifest["slice_index"]) == {"-1"}
    assert set(manifest["modality"]) == {"pathmnist", "octmnist"}
    row = manifest[manifest["subject"] == "pathmnist_val_2"].iloc[0]
    assert row["class"] == "pathmnist_2" and row["partition"] == "val"  # label 2 % 3
    assert row["path"] == "slices/pathmnist_2/pathmnist_val_2.png"
    assert manifest["subject"].is_unique
    assert pd.read_csv(out / "discarded.csv").empty
    assert list(pd.read_csv(out / "skipped_subjects.csv").columns) == ["subject", "reason"]
    assert "octmnist_1" in caplog.text

    # conversion: RGB -> the luma PIL's "L" gives; 28 -> 32 resized; 8-bit gray square
    with np.load(two_files[0]["path"]) as npz:
        source = npz["val_images"][2]
    with Image.open(out / row["path"]) as img:
        assert img.mode == "L" and img.size == (32, 32)
    expected = np.asarray(Image.fromarray(source).convert("L"))
    same = prepare_medmnist_dataset(dataset(two_files, image_size=28), tmp_path / "same")
    assert same.kept == summary.kept
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "same" / row["path"])), expected)


def test_gray_images_pass_through_unchanged_at_native_size(two_files, tmp_path):
    prepare_medmnist_dataset(dataset(two_files, image_size=28), tmp_path / "d")
    with np.load(two_files[1]["path"]) as npz:
        source = npz["test_images"][3]
    png = np.asarray(Image.open(tmp_path / "d" / "slices" / "octmnist_1" / "octmnist_test_3.png"))
    np.testing.assert_array_equal(png, source)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: {"path": str(d / "absent.npz")}, "file not found"),
        (lambda d: {"path": str(_write(d / "bad.npz", b"not a zip"))}, "not a readable .npz"),
        (lambda d: {"path": str(make_npz(d / "nolab.npz", 2, False, val_labels=1))}, "'val_labels' missing"),
        (lambda d: {"path": str(make_npz(d / "two.npz", 3, False)), "class_names": ["a", "b"]}, "lists only 2"),
        (lambda d: {"path": str(make_npz(d / "sp.npz", 2, False)), "class_names": ["a b", "c"]}, "may only use"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path, make, message):
    entry = make(tmp_path)
    with pytest.raises(CatvaeError, match=message) as err:
        medmnist_classes([entry])
    assert "dataset.medmnist.files" in str(err.value) and Path(entry["path"]).name in str(err.value)


def test_missing_image_array_and_truncated_member(tmp_path):
    entry = {"path": str(make_npz(tmp_path / "noimg.npz", 2, False, test_images=1))}
    with pytest.raises(CatvaeError, match=r"noimg\.npz.*'test_images' missing"):
        prepare_medmnist_dataset(dataset([entry]), tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.csv").exists()

    good = make_npz(tmp_path / "cut.npz", 2, False)
    with zipfile.ZipFile(good) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["train_images.npy"] = members["train_images.npy"][:-100]
    with zipfile.ZipFile(good, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    with pytest.raises(CatvaeError, match=r"cut\.npz.*truncated"):
        prepare_medmnist_dataset(dataset([{"path": str(good)}]), tmp_path / "out")


def test_clashing_classes_and_duplicate_modalities(tmp_path):
    a = str(make_npz(tmp_path / "a.npz", 2, False))
    b = str(make_npz(tmp_path / "b.npz", 2, False))
    with pytest.raises(CatvaeError, match="both"):
        medmnist_classes([{"path": a}, {"path": b, "class_offset": 1}])
    with pytest.raises(CatvaeError, match="no file provides global class"):
        medmnist_classes([{"path": a, "class_offset": 1}])
    with pytest.raises(CatvaeError, match="more than one file"):
        medmnist_classes([{"path": a, "modality": "x"}, {"path": b, "modality": "x"}])


def test_multi_label_sets_are_refused(tmp_path):
    path = make_npz(tmp_path / "chestmnist.npz", 2, False)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["train_labels"] = np.zeros((SIZES["train"], 14), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CatvaeError, match="multi-label"):
        medmnist_classes([{"path": str(path)}])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["busi.yaml", "medmnist_cvae.yaml"])
def test_shipped_configs_validate(name):
    cfg = load_config(REPO / "config" / name)
    assert cfg["classifier"]["paper_protocol"] is (name == "busi.yaml")
    if name == "busi.yaml":
        ds = cfg["dataset"]
        assert ds["kind"] == "folder" and ds["folder"]["classes"] == ["normal", "benign", "malignant"]
        assert (ds["image_size"], ds["channels"], cfg["classifier"]["image_size"]) == (128, 3, 224)
        assert cfg["synthesis"]["targets"] == [437, 1000, 2000]
    else:
        ds = cfg["dataset"]
        assert ds["kind"] == "medmnist" and ds["image_size"] == 28
        assert [f["path"] for f in ds["medmnist"]["files"]] == [
            "data/medmnist/pathmnist.npz", "data/medmnist/tissuemnist.npz", "data/medmnist/octmnist.npz"
        ]
        cvae = cfg["generators"]["cvae"]
        assert (cvae["latent_dim"], cvae["batch_size"], cvae["epochs"]) == (128, 256, 150)
        assert cvae["loss"] == {"mse": 1.0, "l1": 0.5, "perceptual": 0.1, "beta": 1.0, "gamma": 0.5}
        assert cvae["beta_warmup"] == {"start": 20, "epochs": 100}


def _truncate_member(path: Path, member: str, cut: int = 100) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[member] = members[member][:-cut]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.fixture()
def three_files_two_broken(tmp_path):
    """pathmnist (fine), a truncated 'cut' file and a 'short' file whose test images outnumber its labels."""
    cut = make_npz(tmp_path / "cut.npz", 2, False, seed=3)
    _truncate_member(cut, "val_images.npy")
    short = make_npz(tmp_path / "short.npz", 2, False, seed=4)
    with np.load(short) as npz:
        arrays = dict(npz)
    arrays["test_labels"] = arrays["test_labels"][:-1]
    np.savez(short, **arrays)
    return [{"path": str(make_npz(tmp_path / "pathmnist.npz", 3, rgb=True, seed=1))},
            {"path": str(cut)}, {"path": str(short)}]


def test_every_broken_file_is_named_in_one_error(three_files_two_broken, tmp_path):
    with pytest.raises(CatvaeError) as err:  # at DAG build already: classes depend on which files are usable
        medmnist_classes(three_files_two_broken)
    message = str(err.value)
    assert "2 broken file(s)" in message and "dataset.on_error: skip" in message
    assert re.search(r"cut: .*cut\.npz.*'val_images' is truncated", message)
    assert re.search(r"short: .*short\.npz.*'test_images' has 4 image\(s\) but 'test_labels' 3", message)
    with pytest.raises(CatvaeError, match="2 broken file"):
        prepare_medmnist_dataset(dataset(three_files_two_broken), tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_skip_leaves_broken_files_out_everywhere(three_files_two_broken, tmp_path):
    ds = validate_config({"dataset": {"name": "mm", "kind": "medmnist", "image_size": 28, "on_error": "skip",
                                      "medmnist": {"files": three_files_two_broken}},
                          "generators": {"models": []}})["dataset"]
    assert dataset_classes(ds) == ["pathmnist_0", "pathmnist_1", "pathmnist_2"]  # the DAG sees what is prepared
    assert dataset_modalities(ds) == ["pathmnist"]
    out = tmp_path / "out"
    summary = prepare_medmnist_dataset(ds, out)
    skipped = pd.read_csv(out / "skipped_subjects.csv")
    assert skipped["subject"].tolist() == ["cut", "short"]
    assert "truncated" in skipped["reason"][0] and "'test_labels' 3" in skipped["reason"][1]
    manifest = pd.read_csv(out / "manifest.csv")
    assert set(manifest["modality"]) == {"pathmnist"} and summary.kept == sum(SIZES.values())
    clean = prepare_medmnist_dataset(dataset([three_files_two_broken[0]], image_size=28), tmp_path / "clean")
    pd.testing.assert_frame_equal(manifest, pd.read_csv(tmp_path / "clean" / "manifest.csv"))
    assert clean.counts == summary.counts
