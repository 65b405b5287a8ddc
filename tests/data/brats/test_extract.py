"""Normalisation, slice selection / labels / filter, and extraction end to end on tiny generated subjects."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from helpers_nifti import SHAPE, TUMOUR_BOX, brain, write_nifti, write_subject
from PIL import Image

from catvae.data.brats.extract import extract_dataset
from catvae.data.images import square_image
from catvae.data.manifest import DISCARDED_COLUMNS, MANIFEST_COLUMNS
from catvae.data.brats.normalize import brain_mask, load_volume, normalization_params, normalize_volume
from catvae.data.brats.slicing import (
    PLANE_AXES,
    Selection,
    SliceFilter,
    candidate_slices,
    discard_reason,
    label_slice,
    parse_filter,
    parse_selection,
    slice_indices,
    take_slice,
)
from catvae.errors import CatvaeError

ALL = {"mode": "all", "k": 1, "stride": 1}
LOOSE = {"min_brain_fraction": 0.05, "min_std": 0.01}

# ---------------------------------------------------------------- normalisation


def _check_normalised(volume: np.ndarray, out: np.ndarray, background) -> None:
    brain_voxels = volume != background
    assert out.dtype == np.float32 and out.shape == volume.shape
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.all(out[~brain_voxels] == 0.0)
    lo, hi = np.percentile(volume[brain_voxels].astype(np.float64), [1, 99])
    inner = brain_voxels & (volume > lo) & (volume < hi)
    expected = (volume[inner].astype(np.float64) - lo) / (hi - lo)
    np.testing.assert_allclose(out[inner], expected, atol=1e-5)
    assert np.all(out[brain_voxels & (volume >= hi)] == 1.0)


def test_normalise_int16_with_negative_values():
    rng = np.random.default_rng(1)
    volume = np.zeros((20, 20, 10), dtype=np.int16)
    values = rng.integers(-800, 600, size=(12, 12, 6), dtype=np.int16)
    values[values == 0] = 1  # keep every brain voxel distinct from the zero background
    volume[4:16, 4:16, 2:8] = values
    out = normalize_volume(volume, 1, 99)
    _check_normalised(volume, out, 0)


def test_normalise_negative_constant_background():
    # e.g. a volume shifted so background is -1024: the background is what dominates the faces, not zero
    rng = np.random.default_rng(2)
    volume = np.full((20, 20, 10), -1024, dtype=np.int16)
    volume[4:16, 4:16, 2:8] = rng.integers(-300, 300, size=(12, 12, 6), dtype=np.int16)
    assert brain_mask(volume).sum() == 12 * 12 * 6 - np.count_nonzero(volume[4:16, 4:16, 2:8] == -1024)
    _check_normalised(volume, normalize_volume(volume, 1, 99), -1024)


def test_normalise_float64():
    rng = np.random.default_rng(3)
    volume = np.zeros((16, 16, 8), dtype=np.float64)
    volume[3:13, 3:13, 2:6] = rng.normal(1e-3, 5e-4, size=(10, 10, 4)) + 1e-2
    out = normalize_volume(volume, 1, 99)
    _check_normalised(volume, out, 0)


def test_normalise_constant_brain_and_empty_volume_give_zeros():
    volume = np.zeros((8, 8, 8), dtype=np.float64)
    assert not normalize_volume(volume).any()
    volume[2:6, 2:6, 2:6] = 7.0
    assert not normalize_volume(volume).any()


@pytest.mark.parametrize(
    "cfg, key",
    [({"lower_percentile": 60, "upper_percentile": 50}, "upper_percentile"),
     ({"lower_percentile": -1}, "lower_percentile"),
     ({"upper": 99}, "dataset.normalization.upper")],
)
def test_bad_normalisation_config_names_key(cfg, key):
    with pytest.raises(CatvaeError, match=key):
        normalization_params(cfg)


def test_corrupt_or_4d_volume_names_file(tmp_path):
    bad = tmp_path / "S01_flair.nii.gz"
    bad.write_bytes(b"this is not a nifti file")
    with pytest.raises(CatvaeError, match="S01_flair.nii.gz"):
        load_volume(bad)
    four_d = write_nifti(tmp_path / "v.nii", np.zeros((4, 4, 4, 2), dtype=np.int16))
    with pytest.raises(CatvaeError, match="v.nii"):
        load_volume(four_d)


# ---------------------------------------------------------------- slicing


def test_paper_rule_gives_exactly_three_candidates():
    selection = parse_selection({"mode": "center", "k": 1})
    candidates = candidate_slices((240, 240, 155), ["axial", "sagittal", "coronal"], selection)
    assert candidates == [("axial", 77), ("sagittal", 120), ("coronal", 120)]


def test_selection_modes():
    assert slice_indices(16, Selection("center", 3, 2)) == [6, 8, 10]
    assert slice_indices(16, Selection("center", 2, 1)) == [7, 8]
    assert slice_indices(5, Selection("center", 9, 1)) == [0, 1, 2, 3, 4]  # clipped to the volume
    assert slice_indices(10, Selection("all", 1, 1)) == list(range(10))
    assert slice_indices(11, Selection("stride", 1, 4)) == [1, 5, 9]  # the grid runs through the centre slice
    assert len(candidate_slices((24, 24, 16), ["sagittal", "axial"], Selection("all", 1, 1))) == 40


@pytest.mark.parametrize(
    "cfg, key",
    [({"mode": "random"}, "selection.mode"), ({"k": 0}, "selection.k"), ({"stride": 1.5}, "selection.stride"),
     ({"n": 3}, "selection.n")],
)
def test_bad_selection_names_key(cfg, key):
    with pytest.raises(CatvaeError, match=key):
        parse_selection(cfg)


def test_labels_follow_the_mask():
    mask = np.zeros((6, 6, 6), dtype=np.uint8)
    mask[1, 2, 3] = 4
    assert label_slice(take_slice(mask, "sagittal", 1)) == ("Tumor", 1)
    assert label_slice(take_slice(mask, "sagittal", 2)) == ("NoTumor", 0)
    assert label_slice(take_slice(mask, "axial", 3)) == ("Tumor", 1)
    assert take_slice(np.zeros((6, 5, 4)), "sagittal", 0).shape == (4, 5)  # rotated: superior up


def test_filter_reasons():
    rule = parse_filter({"min_brain_fraction": 0.25, "min_std": 0.05})
    brain_px = np.zeros((10, 10), dtype=bool)
    brain_px[:2, :] = True  # 20 % brain
    image = np.where(brain_px, np.linspace(0, 1, 100).reshape(10, 10), 0.0)
    assert discard_reason(image, brain_px, rule) == ("brain_fraction<0.25", pytest.approx(0.2))
    brain_px[:5, :] = True  # 50 % brain, constant intensity
    flat = np.where(brain_px, 0.4, 0.0) + np.where(brain_px, 1e-3, 0.0) * (np.arange(100).reshape(10, 10) % 2)
    reason, value = discard_reason(flat, brain_px, rule)
    assert reason == "std<0.05" and value == pytest.approx(5e-4)
    textured = np.where(brain_px, np.linspace(0, 1, 100).reshape(10, 10), 0.0)
    assert discard_reason(textured, brain_px, rule) is None
    zero_rule = SliceFilter(0.0, 0.0)
    assert discard_reason(np.zeros((4, 4)), np.zeros((4, 4), bool), zero_rule) == ("brain_fraction=0", 0.0)
    with pytest.raises(CatvaeError, match="dataset.filter.min_brain_fraction"):
        parse_filter({"min_brain_fraction": 1.5})


def test_square_image_keeps_aspect():
    image = np.ones((20, 10))
    out = square_image(image, 10)
    assert out.shape == (10, 10)
    assert (out[:, 3:7] > 0.99).all() and np.allclose(out[:, [0, -1]], 0.0)  # centred, padded left and right
    assert square_image(np.full((8, 8), 0.5), 8).max() == 0.5  # same size: untouched


# ---------------------------------------------------------------- extraction end to end


@pytest.fixture()
def cohort(tmp_path):
    root = tmp_path / "brats"
    write_subject(root, "BraTS20_Training_001", seed=0)  # tumour box across the centre slices
    write_subject(root, "BraTS-GLI-00002-000", naming="2023", ext=".nii", seed=10, box=((3, 5), (4, 6), (2, 3)))
    write_subject(root, "BraTS20_Training_003", seg=False)
    return root


def _expected_class(plane: str, index: int, box) -> str:
    lo, hi = box[PLANE_AXES[plane]]
    return "Tumor" if lo <= index <= hi else "NoTumor"


@pytest.mark.parametrize("threads", [1, 2])
def test_extract_end_to_end(cohort, tmp_path, threads, caplog):
    out = tmp_path / f"data{threads}"
    with caplog.at_level(logging.INFO, logger="catvae.data.brats.extract"):
        summary = extract_dataset(
            cohort, out, modalities=["flair"], planes=["axial", "sagittal", "coronal"],
            selection={"mode": "center", "k": 1}, image_size=32, normalization=None, filter=LOOSE, threads=threads,
        )
    manifest = pd.read_csv(out / "manifest.csv", dtype={"subject": str})
    assert list(manifest.columns) == MANIFEST_COLUMNS
    # paper rule: 3 slices per usable subject, none too empty at the centre
    assert len(manifest) == 6 and summary.kept == 6 and summary.subjects_used == 2 and summary.subjects_skipped == 1
    first = manifest[manifest.subject == "BraTS20_Training_001"]
    assert set(first["class"]) == {"Tumor"}
    assert first.set_index("plane")["tumor_voxels"].to_dict() == {"axial": 16, "sagittal": 16, "coronal": 16}
    assert set(manifest[manifest.subject == "BraTS-GLI-00002-000"]["class"]) == {"NoTumor"}
    assert summary.counts == {"NoTumor": 3, "Tumor": 3}
    assert summary.plane_counts == {"NoTumor": {"axial": 1, "sagittal": 1, "coronal": 1},
                                    "Tumor": {"axial": 1, "sagittal": 1, "coronal": 1}}
    assert summary.skipped_subjects == ["BraTS20_Training_003"] and summary.partitions == {}
    for row in manifest.to_dict("records"):
        name = f"{row['subject']}_flair_{row['plane']}_{row['slice_index']:03d}.png"
        assert row["path"] == f"slices/{row['class']}/{name}"
        with Image.open(out / row["path"]) as img:
            assert img.mode == "L" and img.size == (32, 32)
    skipped = pd.read_csv(out / "skipped_subjects.csv")
    assert skipped.to_dict("records") == [{"subject": "BraTS20_Training_003", "reason": "missing seg"}]
    assert list(pd.read_csv(out / "discarded.csv").columns) == DISCARDED_COLUMNS
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    messages = caplog.text
    assert "subject 2/2" in messages and "extraction summary: 2 subject(s) used, 1 skipped" in messages


def test_extract_all_labels_and_discards_against_known_mask(cohort, tmp_path):
    out = tmp_path / "data"
    summary = extract_dataset(cohort, out, modalities=["flair", "t2"], planes=["sagittal", "axial"],
                              selection=ALL, image_size=16, filter={"min_brain_fraction": 0.2, "min_std": 0.01})
    manifest = pd.read_csv(out / "manifest.csv", dtype={"subject": str})
    discarded = pd.read_csv(out / "discarded.csv", dtype={"subject": str})
    # every candidate slice of both sequences is either kept or discarded
    assert len(manifest) + len(discarded) == 2 * 2 * (SHAPE[0] + SHAPE[2])
    boxes = {"BraTS20_Training_001": TUMOUR_BOX, "BraTS-GLI-00002-000": ((3, 5), (4, 6), (2, 3))}
    for frame in (manifest, discarded):
        expected = [_expected_class(p, i, boxes[s]) for s, p, i in zip(frame.subject, frame.plane, frame.slice_index)]
        assert list(frame["class"]) == expected
    assert set(discarded["reason"]) <= {"brain_fraction<0.2", "std<0.01"}
    assert (discarded.loc[discarded.reason == "brain_fraction<0.2", "value"] < 0.2).all()
    assert (manifest["brain_fraction"] >= 0.2).all()
    # the edge slices hold no brain at all
    assert ((discarded.slice_index == 0) & (discarded.plane == "sagittal")).sum() == 4
    assert summary.discard_reasons["brain_fraction<0.2"] == len(discarded)
    # labels are the mask's, so both sequences of a slice agree
    per_seq = manifest.pivot_table(index=["subject", "plane", "slice_index"], columns="modality", values="class",
                                   aggfunc="first").dropna()
    assert (per_seq["flair"] == per_seq["t2"]).all() and len(per_seq) > 10


def test_threads_give_identical_outputs(cohort, tmp_path):
    kwargs = dict(modalities=["flair", "t1"], planes=["coronal"], selection={"mode": "stride", "stride": 3},
                  image_size=16, filter=LOOSE)
    extract_dataset(cohort, tmp_path / "a", threads=1, **kwargs)
    extract_dataset(cohort, tmp_path / "b", threads=2, **kwargs)
    a = (tmp_path / "a" / "manifest.csv").read_text()
    assert a == (tmp_path / "b" / "manifest.csv").read_text()
    for rel in pd.read_csv(tmp_path / "a" / "manifest.csv")["path"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


def test_rerun_replaces_stale_slices(cohort, tmp_path):
    out = tmp_path / "data"
    extract_dataset(cohort, out, selection=ALL, image_size=8, filter=LOOSE)
    extract_dataset(cohort, out, selection={"mode": "center", "k": 1}, image_size=8, filter=LOOSE)
    pngs = sorted(p.relative_to(out).as_posix() for p in (out / "slices").rglob("*.png"))
    assert pngs == sorted(pd.read_csv(out / "manifest.csv")["path"])


def test_nothing_left_after_filter_raises(cohort, tmp_path):
    out = tmp_path / "data"
    with pytest.raises(CatvaeError, match="no slice left after filtering"):
        extract_dataset(cohort, out, filter={"min_brain_fraction": 1.0, "min_std": 0.0})
    assert not (out / "manifest.csv").exists() and not (out / "slices").exists()
    assert len(pd.read_csv(out / "discarded.csv")) == 6


def test_bad_inputs(cohort, tmp_path):
    with pytest.raises(CatvaeError, match="dataset.root"):
        extract_dataset(tmp_path / "missing", tmp_path / "o1")
    empty = tmp_path / "empty"
    write_subject(empty, "S1", seg=False)
    with pytest.raises(CatvaeError, match="no usable BraTS subject"):
        extract_dataset(empty, tmp_path / "o2")
    assert "missing seg" in (tmp_path / "o2" / "skipped_subjects.csv").read_text()
    with pytest.raises(CatvaeError, match="dataset.planes"):
        extract_dataset(cohort, tmp_path / "o3", planes=["oblique"])
    with pytest.raises(CatvaeError, match="dataset.image_size"):
        extract_dataset(cohort, tmp_path / "o4", image_size=0)


def test_corrupt_volume_names_file(cohort, tmp_path):
    bad = cohort / "BraTS20_Training_001" / "BraTS20_Training_001_flair.nii.gz"
    bad.write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(CatvaeError, match="BraTS20_Training_001_flair.nii.gz"):
        extract_dataset(cohort, tmp_path / "o", threads=2)
    assert not (tmp_path / "o" / "manifest.csv").exists()


def test_shape_mismatch_names_both_files(tmp_path):
    root = tmp_path / "b"
    folder = write_subject(root, "S1")
    write_nifti(folder / "S1_flair.nii.gz", brain((20, 24, 16)))
    with pytest.raises(CatvaeError, match="S1_flair.nii.gz.*S1_seg.nii.gz"):
        extract_dataset(root, tmp_path / "o")
