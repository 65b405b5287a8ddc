"""Discovery of BraTS subjects: both namings, both extensions, and every way a folder can be unusable."""

from __future__ import annotations

import pytest

from catvae.config import schema_enum
from catvae.data.brats.discover import canonical_modalities, discover_brats
from catvae.errors import CatvaeError
from helpers_nifti import brain, write_nifti, write_subject


@pytest.mark.parametrize("naming", ["2020", "2023"])
@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
def test_discovers_both_namings_and_extensions(tmp_path, naming, ext):
    subject = "BraTS20_Training_001" if naming == "2020" else "BraTS-GLI-00000-000"
    folder = write_subject(tmp_path, subject, naming=naming, ext=ext)
    subjects, skipped = discover_brats(tmp_path, ["flair", "t1ce"])
    assert skipped == []
    assert [s.subject for s in subjects] == [subject]
    found = subjects[0]
    assert found.naming == naming
    assert set(found.images) == {"flair", "t1ce"}
    tag = {"2020": {"flair": "_flair", "t1ce": "_t1ce"}, "2023": {"flair": "-t2f", "t1ce": "-t1c"}}[naming]
    for seq, path in found.images.items():
        assert path == folder / f"{subject}{tag[seq]}{ext}"
    assert found.seg.name == f"{subject}{'_' if naming == '2020' else '-'}seg{ext}"
    assert found.available == ("flair", "t1", "t1ce", "t2")


def test_2023_names_are_accepted_as_requested_modalities(tmp_path):
    write_subject(tmp_path, "BraTS-GLI-00001-000", naming="2023")
    subjects, _ = discover_brats(tmp_path, ["t2f", "t1n"])
    assert list(subjects[0].images) == ["flair", "t1"]
    assert canonical_modalities(["T2W", "t1c"]) == ["t2", "t1ce"]


def test_mixed_cohort_sorted_and_skips_reported(tmp_path):
    write_subject(tmp_path, "S03", naming="2023", ext=".nii")
    write_subject(tmp_path, "S01")
    write_subject(tmp_path, "S02", seg=False)
    write_subject(tmp_path, "S04", modalities=["t1", "t2"])
    (tmp_path / "name_mapping.csv").write_text("a,b\n")  # root-level files are BraTS metadata, not subjects
    subjects, skipped = discover_brats(tmp_path, ["flair"])
    assert [s.subject for s in subjects] == ["S01", "S03"]
    reasons = {s.subject: s.reason for s in skipped}
    assert set(reasons) == {"S02", "S04"}
    assert reasons["S02"] == "missing seg"
    assert reasons["S04"] == "missing flair"
    # asking for a sequence S01 lacks does not hide the others' reasons
    write_subject(tmp_path, "S05", modalities=["flair"])
    subjects, skipped = discover_brats(tmp_path, ["flair", "t2"])
    assert "S05" in {s.subject for s in skipped}
    assert {s.subject: s.reason for s in skipped}["S05"] == "missing t2"


@pytest.mark.parametrize(
    "bad_name, expected",
    [
        ("S01_flair_old.nii.gz", "unknown sequence suffix '_flair_old'"),
        ("S99_flair.nii.gz", "prefix is not the folder id 'S01'"),
        ("S01_flair.mha", "not .nii or .nii.gz"),
        ("W39_1998.09.19_Segm.nii", "prefix is not the folder id"),
    ],
)
def test_off_naming_file_is_reported_not_used(tmp_path, bad_name, expected):
    write_subject(tmp_path, "S01")
    write_subject(tmp_path, "S02")
    write_nifti(tmp_path / "S01" / "placeholder.nii", brain()).rename(tmp_path / "S01" / bad_name)
    subjects, skipped = discover_brats(tmp_path, ["flair"])
    assert [s.subject for s in subjects] == ["S02"]
    assert len(skipped) == 1 and skipped[0].subject == "S01"
    assert bad_name in skipped[0].reason and expected in skipped[0].reason


def test_misnamed_seg_means_missing_seg_and_names_the_file(tmp_path):
    folder = write_subject(tmp_path, "S01", seg=False)
    write_nifti(folder / "S01_Segm.nii", brain())
    _, skipped = discover_brats(tmp_path, ["flair"])
    assert skipped[0].reason.startswith("missing seg; unrecognised file 'S01_Segm.nii'")


def test_duplicate_sequence_is_ambiguous(tmp_path):
    folder = write_subject(tmp_path, "S01", ext=".nii.gz")
    write_nifti(folder / "S01_flair.nii", brain())
    _, skipped = discover_brats(tmp_path, ["t1"])
    assert skipped[0].subject == "S01"
    assert "flair given 2 times: S01_flair.nii, S01_flair.nii.gz" in skipped[0].reason


def test_hidden_files_are_ignored_and_empty_folder_reported(tmp_path):
    folder = write_subject(tmp_path, "S01")
    (folder / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "S02").mkdir()
    subjects, skipped = discover_brats(tmp_path, ["flair"])
    assert [s.subject for s in subjects] == ["S01"]
    assert [(s.subject, s.reason) for s in skipped] == [("S02", "missing flair, seg")]


def test_missing_root_names_config_key(tmp_path):
    with pytest.raises(CatvaeError, match="dataset.root"):
        discover_brats(tmp_path / "nope", ["flair"])


@pytest.mark.parametrize("mods", [["dwi"], [], ["flair", "t2f"]])
def test_bad_modalities_name_config_key(tmp_path, mods):
    with pytest.raises(CatvaeError, match="dataset.modalities"):
        discover_brats(tmp_path, mods)


def test_the_brats_sequences_are_the_schema_enum():
    """The four canonical sequences and the 2023 aliases are `dataset.modalities`' enum; the phantom writes the four."""
    from catvae.data.brats import discover, phantom

    assert set(discover.MODALITIES) | set(discover.ALIASES) == set(schema_enum("dataset", "modalities"))
    assert phantom.MODALITIES is discover.MODALITIES
