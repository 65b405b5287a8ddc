"""Bad BraTS/phantom data never becomes a wrong label: mask and voxel validation, the on_error / nonfinite policies,
one pass that reports every broken subject, and explicit per-subject file overrides (BraTS 2020 subject 355).

Every fixture is built here with nibabel; each broken case is checked against a clean cohort, so "the rest of the
dataset is unaffected" is a comparison, not an assumption.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from helpers_nifti import SHAPE, brain, tumour_mask, write_nifti, write_subject
from PIL import Image

from catvae.config import validate_config
from catvae.data.brats.discover import discover_brats, parse_overrides
from catvae.data.brats.extract import extract_dataset
from catvae.data.brats.normalize import normalize_volume
from catvae.data.kinds import prepare_dataset
from catvae.data.brats.validate import mask_problem
from catvae.errors import CatvaeError

GOOD = ("BraTS20_Training_001", "BraTS20_Training_002", "BraTS20_Training_003")
SETTINGS = dict(modalities=["flair", "t2"], planes=["axial", "sagittal", "coronal"],
                selection={"mode": "center", "k": 3}, image_size=16,
                filter={"min_brain_fraction": 0.05, "min_std": 0.01})


def good_cohort(root: Path) -> Path:
    for i, subject in enumerate(GOOD):
        write_subject(root, subject, modalities=["flair", "t2"], seed=10 * i)
    return root


def extract(root: Path, out: Path, **kwargs):
    return extract_dataset(root, out, **{**SETTINGS, **kwargs})


def manifest(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "manifest.csv", dtype={"subject": str})


def skipped(out: Path) -> dict[str, str]:
    frame = pd.read_csv(out / "skipped_subjects.csv", dtype=str, keep_default_na=False)
    return dict(zip(frame["subject"], frame["reason"]))


def assert_nothing_complete(out: Path) -> None:
    """No manifest, no slices, no temporary slices folder left behind."""
    assert not (out / "manifest.csv").exists() and not (out / "slices").exists()
    if out.exists():
        assert not [p for p in out.iterdir() if p.name.startswith(".slices")]


def assert_rest_unaffected(out: Path, reference: Path, subjects=GOOD) -> None:
    """The good subjects' rows and PNGs are exactly those of a run on the clean cohort."""
    got, want = manifest(out), manifest(reference)
    want = want[want["subject"].isin(subjects)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[got["subject"].isin(subjects)].reset_index(drop=True), want)
    for rel in want["path"]:
        assert (out / rel).read_bytes() == (reference / rel).read_bytes()


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """Extraction of the clean three-subject cohort, the reference every broken case is compared with."""
    base = tmp_path_factory.mktemp("clean")
    extract(good_cohort(base / "brats"), base / "out")
    return base / "out"


def broken_mask_subject(root: Path, subject: str = "BraTS20_Training_009") -> None:
    """A mask that is not a BraTS mask: negative and fractional values, where `mask > 0` would label it NoTumor."""
    write_subject(root, subject, modalities=["flair", "t2"], seed=90)
    mask = tumour_mask().astype(np.float32)
    mask[mask > 0] = -1.0
    mask[10, 10, 8] = 0.5
    write_nifti(root / subject / f"{subject}_seg.nii.gz", mask)


# ---------------------------------------------------------------- mask labels


def test_mask_problem_lists_offending_values():
    mask = tumour_mask().astype(np.float64)
    assert mask_problem(mask, (0, 1, 2, 4)) is None
    mask[0, 0, 0], mask[0, 0, 1], mask[0, 0, 2] = -1, 0.5, np.nan
    why = mask_problem(mask, (0, 1, 2, 4))
    assert why.startswith("mask labels not in {0,1,2,4}: -1, 0.5, nan (3 voxel(s)")
    assert mask_problem(tumour_mask(), (0, 1, 2, 3)).startswith("mask labels not in {0,1,2,3}: 4 ")


def test_non_brats_mask_stops_the_run_by_default(tmp_path):
    root = good_cohort(tmp_path / "brats")
    broken_mask_subject(root)
    with pytest.raises(CatvaeError) as err:
        extract(root, tmp_path / "out")
    message = str(err.value)
    assert "1 broken subject(s)" in message
    assert "BraTS20_Training_009: BraTS20_Training_009_seg.nii.gz: mask labels not in {0,1,2,4}: -1, 0.5" in message
    assert_nothing_complete(tmp_path / "out")


def test_non_brats_mask_is_skipped_with_values_and_rest_unaffected(tmp_path, clean):
    root = good_cohort(tmp_path / "brats")
    broken_mask_subject(root)
    out = tmp_path / "out"
    summary = extract(root, out, on_error="skip")
    assert skipped(out)["BraTS20_Training_009"].startswith(
        "BraTS20_Training_009_seg.nii.gz: mask labels not in {0,1,2,4}: -1, 0.5"
    )
    assert summary.skipped_subjects == ["BraTS20_Training_009"] and summary.subjects_used == 3
    assert "BraTS20_Training_009" not in set(manifest(out)["subject"])
    assert not list((out / "slices").rglob("BraTS20_Training_009_*"))
    assert_rest_unaffected(out, clean)


def test_label_set_follows_the_naming_and_the_config(tmp_path):
    root = tmp_path / "brats"
    write_subject(root, "BraTS-GLI-00001-000", naming="2023")  # labels 1, 2, 3: a 2023 mask
    folder = write_subject(root, "BraTS-GLI-00002-000", naming="2023")
    write_nifti(folder / "BraTS-GLI-00002-000-seg.nii.gz", tumour_mask(enhancing=4))  # a 2020 label in 2023 naming
    out = tmp_path / "out"
    extract(root, out, on_error="skip")
    assert set(manifest(out)["subject"]) == {"BraTS-GLI-00001-000"}
    assert "mask labels not in {0,1,2,3}: 4 " in skipped(out)["BraTS-GLI-00002-000"]
    extract(root, out, brats={"labels": [0, 1, 2, 3, 4]})  # the config decides when it says so
    assert set(manifest(out)["subject"]) == {"BraTS-GLI-00001-000", "BraTS-GLI-00002-000"}
    with pytest.raises(CatvaeError, match="dataset.brats.labels"):
        extract(root, out, brats={"labels": [0, 1.5]})
    with pytest.raises(CatvaeError, match="dataset.brats.typo"):
        extract(root, out, brats={"typo": 1})


# ---------------------------------------------------------------- voxels


def nan_flair_subject(root: Path, subject: str = "BraTS20_Training_008") -> np.ndarray:
    """A FLAIR with a 4x4x4 block of NaN voxels inside the brain, through the centre slices."""
    write_subject(root, subject, modalities=["flair", "t2"], seed=80)
    flair = brain(seed=80).astype(np.float32)
    flair[10:14, 10:14, 6:10] = np.nan
    write_nifti(root / subject / f"{subject}_flair.nii.gz", flair)
    return flair


def test_nan_block_is_reported_with_its_count(tmp_path, clean):
    root = good_cohort(tmp_path / "brats")
    nan_flair_subject(root)
    with pytest.raises(CatvaeError, match=r"BraTS20_Training_008_flair\.nii\.gz: 64 non-finite voxel\(s\) \(64 NaN"):
        extract(root, tmp_path / "stop")
    assert_nothing_complete(tmp_path / "stop")
    extract(root, tmp_path / "skip", on_error="skip")
    assert "64 non-finite voxel(s) (64 NaN, 0 Inf)" in skipped(tmp_path / "skip")["BraTS20_Training_008"]
    assert_rest_unaffected(tmp_path / "skip", clean)


def test_nonfinite_zero_uses_the_volume_and_logs_the_count(tmp_path, clean, caplog):
    root = good_cohort(tmp_path / "brats")
    nan_flair_subject(root)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="catvae.data.brats.extract"):
        summary = extract(root, out, nonfinite="zero")
    assert summary.nonfinite_zeroed == {"BraTS20_Training_008/flair": 64}
    assert "BraTS20_Training_008: flair BraTS20_Training_008_flair.nii.gz has 64 non-finite voxel(s), used as 0" \
        in caplog.text
    rows = manifest(out).set_index(["subject", "modality", "plane", "slice_index"])
    axial = rows.loc[("BraTS20_Training_008", "flair", "axial", 8)]
    assert axial["class"] == "Tumor"
    with Image.open(out / axial["path"]) as img:  # 24x24 -> 16x16: the 4x4 NaN block is a dark patch
        pixels = np.asarray(img)
    assert pixels.min() == 0 and (pixels[5:11, 5:11] == 0).sum() >= 4
    assert_rest_unaffected(out, clean)


def test_values_past_float32_range_normalise_like_any_others(tmp_path, clean):
    """A float64 FLAIR scaled by 1e36 (max ~9e38 > float32's 3.4e38) gives the slices its unscaled twin gives."""
    root = good_cohort(tmp_path / "brats")
    twin = "BraTS20_Training_002"
    huge = brain(seed=10).astype(np.float64) * 1e36
    assert huge.max() > np.finfo(np.float32).max
    write_nifti(root / twin / f"{twin}_flair.nii.gz", huge)
    out = tmp_path / "out"
    summary = extract(root, out)
    assert not summary.discard_reasons and summary.skipped_subjects == []
    got, want = manifest(out), manifest(clean)
    pd.testing.assert_frame_equal(got, want)  # same slices, labels and brain fractions: nothing discarded
    for rel in want["path"]:
        a, b = (np.asarray(Image.open(d / rel), dtype=int) for d in (out, clean))
        assert np.abs(a - b).max() <= 1  # float rounding of the scaled percentiles only


def test_range_too_wide_for_float64_names_file_and_range(tmp_path):
    volume = brain().astype(np.float64)
    volume[volume > 0] = np.where(np.arange(np.count_nonzero(volume)) % 2, 1.5e308, -1.5e308)
    with pytest.raises(CatvaeError, match=r"intensity range \[-1\.5e\+308, 1\.5e\+308\]"):
        normalize_volume(volume)
    root = good_cohort(tmp_path / "brats")
    write_nifti(root / GOOD[0] / f"{GOOD[0]}_flair.nii.gz", volume)
    with pytest.raises(CatvaeError, match=rf"{GOOD[0]}_flair\.nii\.gz: intensity range .* too wide"):
        extract(root, tmp_path / "out")


# ---------------------------------------------------------------- one pass, every broken subject


def broken_cohort(root: Path) -> dict[str, str]:
    """The clean cohort plus one subject per way to break: {subject: a fragment its reason must hold}."""
    good_cohort(root)
    expect = {}
    s = "BraTS20_Training_101"  # zero-byte mask
    write_subject(root, s, modalities=["flair", "t2"])
    (root / s / f"{s}_seg.nii.gz").write_bytes(b"")
    expect[s] = "cannot read NIfTI header"
    s = "BraTS20_Training_102"  # FLAIR of another shape than its mask
    write_subject(root, s, modalities=["flair", "t2"])
    write_nifti(root / s / f"{s}_flair.nii.gz", brain((20, 24, 16)))
    expect[s] = f"{s}_flair.nii.gz has shape (20, 24, 16) but the mask {s}_seg.nii.gz has {SHAPE}"
    s = "BraTS20_Training_103"  # a 2D "volume"
    write_subject(root, s, modalities=["flair", "t2"])
    write_nifti(root / s / f"{s}_t2.nii.gz", brain()[:, :, 0])
    expect[s] = "a 3D volume is needed"
    s = "BraTS20_Training_104"  # truncated gzip: the header reads, the voxels do not
    write_subject(root, s, modalities=["flair", "t2"])
    path = root / s / f"{s}_flair.nii.gz"
    path.write_bytes(path.read_bytes()[:-200])
    expect[s] = f"cannot read NIfTI volume {path}"
    s = "BraTS20_Training_105"  # non-BraTS mask values
    broken_mask_subject(root, s)
    expect[s] = "mask labels not in {0,1,2,4}: -1, 0.5"
    s = "BraTS20_Training_106"  # NaN block, and a second problem in another sequence: both are reported
    nan_flair_subject(root, s)
    write_nifti(root / s / f"{s}_t2.nii.gz", np.full(SHAPE, np.inf, np.float32))
    n = int(np.prod(SHAPE))
    expect[s] = (f"{s}_flair.nii.gz: 64 non-finite voxel(s) (64 NaN, 0 Inf); dataset.nonfinite: zero would use them "
                 f"as 0; {s}_t2.nii.gz: {n} non-finite voxel(s) (0 NaN, {n} Inf)")
    return expect


@pytest.mark.parametrize("threads", [1, 2])
def test_every_broken_subject_is_listed_in_one_error(tmp_path, threads):
    root = tmp_path / "brats"
    expect = broken_cohort(root)
    write_subject(root, "BraTS20_Training_200", seg=False)  # incomplete folder: a reported skip, not an error
    out = tmp_path / "out"
    out.mkdir()
    for name in ("manifest.csv", "skipped_subjects.csv", "discarded.csv"):  # an earlier run's
        (out / name).write_text("stale\n")
    with pytest.raises(CatvaeError) as err:
        prepare_dataset(dataset_block(root), out, threads=threads)
    message = str(err.value)
    assert f"{len(expect)} broken subject(s), nothing was written" in message and "dataset.on_error: skip" in message
    for subject, fragment in expect.items():
        line = next(line for line in message.splitlines() if line.strip().startswith(f"{subject}:"))
        assert fragment in line, (subject, line)
    assert not any(s in message for s in GOOD) and "BraTS20_Training_200" not in message
    assert_nothing_complete(out)
    assert sorted(p.name for p in out.iterdir()) == []  # no report of this run or the earlier one


@pytest.mark.parametrize("threads", [1, 2])
def test_skip_lists_every_broken_subject_and_keeps_the_rest(tmp_path, clean, threads):
    root = tmp_path / "brats"
    expect = broken_cohort(root)
    write_subject(root, "BraTS20_Training_200", seg=False)
    out = tmp_path / "out"
    summary = prepare_dataset(dataset_block(root, on_error="skip"), out, threads=threads)
    reasons = skipped(out)
    assert set(reasons) == set(expect) | {"BraTS20_Training_200"}
    for subject, fragment in expect.items():
        assert fragment in reasons[subject], subject
    assert reasons["BraTS20_Training_200"] == "missing seg"
    assert summary.subjects_used == 3 and summary.subjects_skipped == len(expect) + 1
    assert set(manifest(out)["subject"]) == set(GOOD)
    assert_rest_unaffected(out, clean)
    pngs = sorted(p.relative_to(out).as_posix() for p in (out / "slices").rglob("*.png"))
    assert pngs == sorted(manifest(out)["path"])  # no PNG of a broken subject left behind


def dataset_block(root: Path, **changes) -> dict:
    """The validated `dataset` config block for a BraTS folder (through the schema, so new keys are checked)."""
    cfg = {"name": "b", "kind": "brats", "root": str(root), "image_size": 16, "modalities": ["flair", "t2"],
           "selection": {"mode": "center", "k": 3}, **changes}
    return validate_config({"dataset": cfg, "generators": {"models": []}})["dataset"]


def test_schema_defaults_and_bad_values():
    ds = dataset_block(Path("x"))
    assert (ds["on_error"], ds["nonfinite"], ds["brats"]) == ("stop", "reject", {"labels": None, "overrides": {}})
    for change, key in [({"on_error": "ignore"}, "dataset.on_error"), ({"nonfinite": "nan"}, "dataset.nonfinite"),
                        ({"brats": {"labels": [-1]}}, "dataset.brats.labels"),
                        ({"brats": {"overrides": {"S1": {"dwi": "x.nii"}}}}, "dataset.brats.overrides.S1")]:
        with pytest.raises(CatvaeError, match=key.replace(".", r"\.")):
            dataset_block(Path("x"), **change)


# ---------------------------------------------------------------- overrides (BraTS 2020 subject 355)

S355 = "BraTS20_Training_355"
SEGM = "W39_1998.09.19_Segm.nii"
OVERRIDE = {S355: {"seg": SEGM}}


def subject_355(root: Path) -> None:
    """Shaped like BraTS 2020 subject 355: four well-named sequences and a segmentation under another name."""
    write_subject(root, S355, modalities=["flair", "t1", "t1ce", "t2"], seg=False, seed=35)
    write_nifti(root / S355 / SEGM, tumour_mask())


def test_subject_355_is_skipped_without_the_override_and_used_with_it(tmp_path, clean, caplog):
    root = good_cohort(tmp_path / "brats")
    subject_355(root)
    without = extract(root, tmp_path / "without")  # default policy: an incomplete folder is a reported skip
    assert without.subjects_used == 3 and without.skipped_subjects == [S355]
    assert skipped(tmp_path / "without")[S355].startswith(f"missing seg; unrecognised file '{SEGM}'")

    with caplog.at_level(logging.INFO, logger="catvae.data.brats.discover"):
        used = extract(root, tmp_path / "with", brats={"overrides": OVERRIDE})
    assert used.subjects_used == 4 and used.skipped_subjects == []
    assert f"subject {S355}: seg from {SEGM} (config key 'dataset.brats.overrides')" in caplog.text
    rows = manifest(tmp_path / "with")
    assert len(rows[rows["subject"] == S355]) == 18  # 3 slices x 3 planes x 2 sequences, from the overridden mask
    assert set(rows.loc[rows["subject"] == S355, "class"]) == {"Tumor"}
    assert_rest_unaffected(tmp_path / "with", clean)


def test_override_wins_over_a_well_named_file_and_accepts_2023_names(tmp_path, caplog):
    root = tmp_path / "brats"
    folder = write_subject(root, "S1", modalities=["flair"])
    write_nifti(folder / "other" / "flair_fixed.nii.gz", brain(seed=7))
    with caplog.at_level(logging.INFO, logger="catvae.data.brats.discover"):
        subjects, skipped_ = discover_brats(root, ["flair"], {"S1": {"t2f": "other/flair_fixed.nii.gz"}})
    assert skipped_ == []  # the sub-folder the override points into is not an off-naming entry
    assert subjects[0].images["flair"] == folder / "other" / "flair_fixed.nii.gz"
    assert subjects[0].overrides == {"flair": "other/flair_fixed.nii.gz"}
    assert "S1_flair.nii.gz ignored, flair taken from other/flair_fixed.nii.gz" in caplog.text


def test_override_problems(tmp_path, caplog):
    root = good_cohort(tmp_path / "brats")
    subject_355(root)
    (root / S355 / SEGM).unlink()  # e.g. a copy where the file was renamed by hand: the override is stale
    with pytest.raises(CatvaeError, match=rf"{S355}: override file '{SEGM}' not found .*"
                                          rf"dataset\.brats\.overrides\.{S355}\.seg"):
        extract(root, tmp_path / "o1", brats={"overrides": OVERRIDE})
    subject_355(root)
    with caplog.at_level(logging.WARNING, logger="catvae.data.brats.discover"):
        extract(root, tmp_path / "o2", brats={"overrides": {**OVERRIDE, "BraTS20_Training_999": {"seg": "x.nii"}}})
    assert "BraTS20_Training_999" in caplog.text and "override not used" in caplog.text
    for bad, key in [({"S": {"dwi": "x"}}, "overrides.S.dwi"), ({"S": {"seg": "/abs.nii"}}, "overrides.S.seg"),
                     ({"S": {"seg": "../S2/x.nii"}}, "overrides.S.seg"), ({"S": {}}, "overrides.S"),
                     ({"S": {"flair": "a.nii", "t2f": "b.nii"}}, "overrides.S.t2f")]:
        with pytest.raises(CatvaeError, match=key.replace(".", r"\.")):
            parse_overrides(bad)


def test_paper_config_carries_the_355_override():
    from catvae.config import load_config

    repo = REPO
    ds = load_config(repo / "config" / "paper.yaml")["dataset"]
    assert ds["brats"]["overrides"] == OVERRIDE


# ---------------------------------------------------------------- phantom volumes pass the same checks


def test_phantom_cohort_passes_validation(tmp_path):
    from catvae.data.brats.phantom import write_phantom_cohort

    cohort = tmp_path / "phantom"
    write_phantom_cohort(cohort, 2, shape=(24, 28, 20), seed=0)
    seg = np.asarray(nib.load(str(next(cohort.glob("*/*_seg.nii.gz")))).dataobj)
    assert set(np.unique(seg)) <= {0, 1, 2, 4}
    summary = extract(cohort, tmp_path / "out", image_size=16)
    assert summary.skipped_subjects == [] and summary.subjects_used == 2 and summary.nonfinite_zeroed == {}

