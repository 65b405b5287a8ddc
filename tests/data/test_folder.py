"""Class-folder datasets (BUSI layout): discovery, mask/non-image reporting, the on_error policy for corrupt
images, conversion, split units."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from catvae.config import validate_config
from catvae.data.folder import prepare_folder_dataset
from catvae.data.images import image_to_gray, read_manifest
from catvae.errors import CatvaeError

MANIFEST_COLUMNS = ["subject", "modality", "plane", "slice_index", "class", "tumor_voxels", "brain_fraction", "path"]


def _gray(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(30, 220, (h, w), dtype=np.uint8)


def make_busi(root: Path, n_per_class: int = 4) -> Path:
    """normal/benign/malignant with masks beside the images, a 16-bit, an RGBA and a palette image,
    a non-image file and one corrupt PNG (in benign)."""
    for k, cls in enumerate(["normal", "benign", "malignant"]):
        folder = root / cls
        folder.mkdir(parents=True)
        for i in range(1, n_per_class + 1):
            Image.fromarray(_gray(20, 30, 10 * k + i)).convert("RGB").save(folder / f"{cls} ({i}).png")
            Image.fromarray(np.zeros((20, 30), np.uint8)).save(folder / f"{cls} ({i})_mask.png")
    Image.fromarray(np.full((12, 12), 4000, np.uint16)).save(root / "normal" / "normal (90).png")  # 16-bit constant
    rgba = np.zeros((10, 16, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, :8, 3] = 255  # left half opaque white, right half transparent white
    Image.fromarray(rgba, "RGBA").save(root / "malignant" / "malignant (90).png")
    Image.fromarray(_gray(16, 16, 99)).convert("P").save(root / "benign" / "benign (90).png")
    (root / "benign" / "notes.txt").write_text("not an image")
    (root / "benign" / "benign (91).png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return root


def dataset(root: Path, on_error: str = "skip", **folder) -> dict:
    """The validated dataset block; `skip` unless a test is about the policy (make_busi holds a corrupt PNG)."""
    cfg = validate_config({"dataset": {"name": "busi", "kind": "folder", "root": str(root), "image_size": 16,
                                       "on_error": on_error, "folder": folder}})
    return cfg["dataset"]


def test_busi_tree_becomes_manifest_slices_and_reports(tmp_path, caplog):
    root = make_busi(tmp_path / "BUSI")
    out = tmp_path / "data"
    with caplog.at_level(logging.INFO, logger="catvae.data.folder"):
        summary = prepare_folder_dataset(dataset(root, classes=["normal", "benign", "malignant"]), out)

    manifest = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert summary.counts == {"normal": 5, "benign": 5, "malignant": 5}
    assert summary.skipped_subjects == ["benign (91)"] and summary.subjects_skipped == 1  # the corrupt PNG
    assert summary.discarded_count == 13 and summary.subjects_used == 15 and summary.plane_counts == {}
    assert set(manifest["plane"]) == {""} and set(manifest["brain_fraction"]) == {""}  # NaN is written empty
    assert set(manifest["slice_index"]) == {"-1"} and set(manifest["tumor_voxels"]) == {"-1"}
    assert set(manifest["modality"]) == {"busi"}
    assert "benign (3)" in set(manifest["subject"])  # the image id is the file stem
    assert not manifest["path"].str.contains("mask").any()

    for rel in manifest["path"]:
        with Image.open(out / rel) as img:
            assert img.mode == "L" and img.size == (16, 16)
        assert rel.startswith("slices/") and " " not in rel

    discarded = pd.read_csv(out / "discarded.csv", keep_default_na=False)
    reasons = discarded["reason"].tolist()
    assert reasons.count("mask") == 12 and reasons.count("not_an_image") == 1 and len(reasons) == 13
    skipped = pd.read_csv(out / "skipped_subjects.csv", keep_default_na=False)
    assert list(skipped.columns) == ["subject", "reason"]
    assert skipped["subject"].tolist() == ["benign (91)"]
    assert skipped["reason"].iloc[0].startswith("corrupt image benign/benign (91).png: ")
    assert "benign (91).png" in caplog.text and "normal 5" in caplog.text

    loaded = read_manifest(out / "manifest.csv")
    assert all(Path(p).is_file() for p in loaded["abspath"])


def test_odd_modes_convert_like_gray_and_keep_aspect(tmp_path):
    root = make_busi(tmp_path / "BUSI")
    out = tmp_path / "data"
    prepare_folder_dataset(dataset(root), out)
    manifest = pd.read_csv(out / "manifest.csv")
    png = {s: np.asarray(Image.open(out / p)) for s, p in zip(manifest["subject"], manifest["path"])}

    # 20x30 source: padded to 30x30 then resized -> black bands top and bottom, content in the middle
    band = png["normal (1)"]
    assert band[0].max() == 0 and band[-1].max() == 0 and band[8].min() > 0
    # RGBA: opaque white on the left, transparent composited to black on the right (10x16 -> rows padded too)
    rgba = png["malignant (90)"]
    assert rgba[8, 2] == 255 and rgba[8, 13] == 0
    # 16-bit constant image scales to zeros (min-max per image, as load_image reads 16-bit PNGs)
    assert png["normal (90)"].max() == 0
    # palette image ends up as the same gray as its source
    source = _gray(16, 16, 99)
    assert np.abs(png["benign (90)"].astype(int) - source.astype(int)).max() <= 1


def test_image_to_gray_modes():
    rgb = Image.fromarray(np.dstack([np.full((2, 2), v, np.uint8) for v in (255, 0, 0)]))
    assert image_to_gray(rgb)[0, 0] == pytest.approx(76 / 255)  # ITU-R 601 luma, as PIL's "L"
    ramp = Image.fromarray(np.array([[0, 1000], [2000, 3000]], np.uint16))
    np.testing.assert_allclose(image_to_gray(ramp), [[0, 1 / 3], [2 / 3, 1]])


def test_classes_default_to_sorted_folders_and_split_by_image(tmp_path):
    from catvae.data.split import split_manifest

    root = make_busi(tmp_path / "BUSI", n_per_class=6)
    out = tmp_path / "data"
    summary = prepare_folder_dataset(dataset(root), out)
    assert list(summary.counts) == ["benign", "malignant", "normal"]
    manifest = pd.read_csv(out / "manifest.csv", dtype={"subject": str})
    assert manifest["subject"].is_unique  # one unit per image
    split = split_manifest(manifest, {"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
    assert set(split["partition"]) == {"train", "val", "test"}
    assert split.groupby("class")["partition"].nunique().min() == 3


def test_id_pattern_groups_images_of_one_patient(tmp_path):
    from catvae.data.split import split_manifest

    root = tmp_path / "cases"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for patient in range(6):
            for view in range(2):
                Image.fromarray(_gray(8, 8, patient * 3 + view)).save(root / cls / f"P{patient:02d}{cls}_view{view}.png")
    out = tmp_path / "data"
    prepare_folder_dataset(dataset(root, id_pattern=r"^(P\d+)"), out)
    manifest = pd.read_csv(out / "manifest.csv", dtype={"subject": str})
    assert sorted(set(manifest["subject"])) == [f"P{p:02d}" for p in range(6)]
    assert manifest.groupby("subject").size().eq(4).all()
    split = split_manifest(manifest, {"train": 0.5, "val": 0.25, "test": 0.25}, seed=1)
    assert split.groupby("subject")["partition"].nunique().eq(1).all()  # never one patient on both sides


def test_same_stem_in_two_classes_stays_two_images(tmp_path):
    root = tmp_path / "plain"
    for cls in ("x", "y"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(_gray(8, 8, i)).save(root / cls / f"{i:03d}.png")
    out = tmp_path / "data"
    prepare_folder_dataset(dataset(root), out)
    manifest = pd.read_csv(out / "manifest.csv", dtype={"subject": str})
    assert manifest["subject"].is_unique and len(manifest) == 4


@pytest.mark.parametrize(
    "change, key",
    [
        ({"root": "missing"}, "dataset.root"),
        ({"folder": {"classes": ["normal", "nope"]}}, "dataset.folder.classes"),
        ({"folder": {"id_pattern": r"^(case\d+)"}}, "dataset.folder.id_pattern"),
        ({"folder": {"id_pattern": r"^benign"}}, "dataset.folder.id_pattern"),
        ({"folder": {"exclude_pattern": "(["}}, "dataset.folder.exclude_pattern"),
    ],
)
def test_bad_layout_or_config_names_the_key(tmp_path, change, key):
    root = make_busi(tmp_path / "BUSI", n_per_class=1)
    ds = dataset(root)
    if "root" in change:
        ds["root"] = str(tmp_path / change["root"])
    else:
        ds["folder"].update(change["folder"])
    with pytest.raises(CatvaeError, match=key.replace(".", r"\.")):
        prepare_folder_dataset(ds, tmp_path / "data")
    assert not (tmp_path / "data" / "manifest.csv").exists()


def test_corrupt_images_stop_the_run_listing_every_one_by_default(tmp_path):
    root = make_busi(tmp_path / "BUSI", n_per_class=2)
    (root / "normal" / "normal (1).png").write_bytes(b"")  # a zero-byte file in another class
    out = tmp_path / "data"
    out.mkdir()
    (out / "manifest.csv").write_text("stale\n")  # an earlier run's: must not survive a run that stops
    with pytest.raises(CatvaeError) as err:
        prepare_folder_dataset(dataset(root, on_error="stop"), out)
    message = str(err.value)
    assert "2 broken image(s)" in message and "dataset.on_error" in message
    assert "benign (91): corrupt image benign/benign (91).png" in message
    assert "normal (1): corrupt image normal/normal (1).png" in message
    assert not (out / "manifest.csv").exists() and not (out / "slices").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".slices")]


def test_corrupt_images_skipped_leave_the_rest_unaffected(tmp_path):
    root = make_busi(tmp_path / "BUSI", n_per_class=2)
    (root / "normal" / "normal (1).png").write_bytes(b"")
    skip = prepare_folder_dataset(dataset(root), tmp_path / "skip")
    skipped = pd.read_csv(tmp_path / "skip" / "skipped_subjects.csv")
    assert skipped["subject"].tolist() == ["benign (91)", "normal (1)"]
    for broken in ((root / "benign" / "benign (91).png"), (root / "normal" / "normal (1).png")):
        broken.unlink()
    clean = prepare_folder_dataset(dataset(root, on_error="stop"), tmp_path / "clean")
    assert skip.counts == clean.counts
    a = pd.read_csv(tmp_path / "skip" / "manifest.csv")
    b = pd.read_csv(tmp_path / "clean" / "manifest.csv")
    pd.testing.assert_frame_equal(a, b)
    for rel in a["path"]:
        assert (tmp_path / "skip" / rel).read_bytes() == (tmp_path / "clean" / rel).read_bytes()
    assert pd.read_csv(tmp_path / "clean" / "skipped_subjects.csv").empty


def test_nothing_usable_is_an_error_but_reports_why(tmp_path):
    root = tmp_path / "bad"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        (root / cls / "x.png").write_bytes(b"garbage")
    out = tmp_path / "data"
    with pytest.raises(CatvaeError, match="no usable image"):
        prepare_folder_dataset(dataset(root), out)
    assert not (out / "manifest.csv").exists()
    assert pd.read_csv(out / "skipped_subjects.csv")["reason"].str.startswith("corrupt image").sum() == 2


def test_a_class_left_empty_is_an_error(tmp_path):
    root = make_busi(tmp_path / "BUSI", n_per_class=1)
    for p in (root / "malignant").glob("malignant (*).png"):
        p.write_bytes(b"garbage") if "_mask" not in p.name else None
    with pytest.raises(CatvaeError, match=r"\['malignant'\].*no usable image"):
        prepare_folder_dataset(dataset(root), tmp_path / "data")


def test_manifest_values_are_nan_not_text(tmp_path):
    root = make_busi(tmp_path / "BUSI", n_per_class=1)
    prepare_folder_dataset(dataset(root), tmp_path / "data")
    frame = read_manifest(tmp_path / "data" / "manifest.csv")
    assert all(math.isnan(v) for v in frame["brain_fraction"])
