"""Subject-level (and image-level) stratified split: no leakage, classes covered, seeded and validated."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from catvae.data.split import fold_split, read_split, split_manifest, validate_fractions, write_split
from catvae.errors import CatvaeError

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def make_manifest(n_subjects: int = 40, seed: int = 0, n_no_tumor_only: int = 3) -> pd.DataFrame:
    """Paper-rule-like manifest: 3 slices per subject, most subjects mostly Tumor, a few with NoTumor only."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        n_tumor = 0 if s < n_no_tumor_only else int(rng.integers(1, 4))
        for j, plane in enumerate(["axial", "sagittal", "coronal"]):
            cls = "Tumor" if j < n_tumor else "NoTumor"
            rows.append({"subject": f"S{s:03d}", "modality": "flair", "plane": plane, "slice_index": 60 + j,
                         "class": cls, "path": f"slices/{cls}/S{s:03d}_{plane}.png"})
    return pd.DataFrame(rows)


def test_subject_split_has_no_leakage_and_covers_classes():
    manifest = make_manifest()
    split = split_manifest(manifest, FRACTIONS, seed=0)
    assert list(split.columns) == [*manifest.columns, "partition"]
    assert split.drop(columns="partition").equals(manifest)
    per_subject = split.groupby("subject")["partition"].nunique()
    assert (per_subject == 1).all()
    subjects = split.drop_duplicates("subject")["partition"].value_counts().to_dict()
    assert subjects == {"train": 28, "val": 6, "test": 6}
    for part in ("train", "val", "test"):
        assert set(split.loc[split.partition == part, "class"]) == {"Tumor", "NoTumor"}


def test_stratification_keeps_class_mix_close():
    manifest = make_manifest(n_subjects=200, seed=3)
    split = split_manifest(manifest, FRACTIONS, seed=5)
    overall = (manifest["class"] == "Tumor").mean()
    for part in ("train", "val", "test"):
        share = (split.loc[split.partition == part, "class"] == "Tumor").mean()
        assert abs(share - overall) < 0.03, (part, share, overall)


def test_rare_class_reaches_train_and_test():
    # only 2 subjects have any NoTumor slice: one must land in train and one in test
    manifest = make_manifest(n_subjects=30, n_no_tumor_only=0)
    manifest["class"] = "Tumor"
    manifest.loc[manifest.subject.isin(["S004", "S017"]) & (manifest.plane == "axial"), "class"] = "NoTumor"
    for seed in range(10):
        split = split_manifest(manifest, FRACTIONS, seed=seed)
        rare = set(split.loc[split["class"] == "NoTumor", "partition"])
        assert {"train", "test"} <= rare, seed
        assert (split.groupby("subject")["partition"].nunique() == 1).all()


def test_same_seed_same_split_and_row_order_does_not_matter():
    manifest = make_manifest()
    a = split_manifest(manifest, FRACTIONS, seed=7)
    b = split_manifest(manifest, FRACTIONS, seed=7)
    assert a.equals(b)
    shuffled = manifest.sample(frac=1.0, random_state=1)
    c = split_manifest(shuffled, FRACTIONS, seed=7).sort_index()
    assert c["partition"].equals(a["partition"])
    different = [split_manifest(manifest, FRACTIONS, seed=s)["partition"] for s in range(1, 4)]
    assert any(not d.equals(a["partition"]) for d in different)


def test_image_level_split_is_stratified_by_class():
    manifest = make_manifest(n_subjects=50)
    split = split_manifest(manifest, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0, group_column=None)
    counts = pd.crosstab(split["class"], split["partition"])
    totals = manifest["class"].value_counts()
    for cls in totals.index:
        assert abs(counts.at[cls, "test"] - 0.2 * totals[cls]) <= 1
        assert abs(counts.at[cls, "train"] - 0.6 * totals[cls]) <= 1
    # an image split may put slices of one subject in different partitions, by design
    assert (split.groupby("subject")["partition"].nunique() > 1).any()


def test_without_val():
    split = split_manifest(make_manifest(), {"train": 0.8, "test": 0.2}, seed=0)
    assert set(split["partition"]) == {"train", "test"}


@pytest.mark.parametrize(
    "fractions, key",
    [
        ({"train": 0.7, "val": 0.2, "test": 0.2}, "dataset.split.train"),
        ({"train": 1.0, "val": 0.0, "test": 0.0}, "dataset.split.test"),
        ({"train": 0.0, "val": 0.5, "test": 0.5}, "dataset.split.train"),
        ({"train": 1.1, "val": -0.1, "test": 0.0}, "dataset.split.val"),
        ({"train": 0.7, "val": 0.15, "test": 0.15, "seed": 0}, "dataset.split.seed"),
        ({"train": "a", "test": 0.3}, "dataset.split.train"),
    ],
)
def test_bad_fractions_name_config_key(fractions, key):
    with pytest.raises(CatvaeError, match=key.replace(".", r"\.")):
        validate_fractions(fractions)


def test_bad_manifests():
    with pytest.raises(CatvaeError, match="at least 2 subjects"):
        split_manifest(make_manifest(1), FRACTIONS, seed=0)
    with pytest.raises(CatvaeError, match="empty"):
        split_manifest(make_manifest().iloc[:0], FRACTIONS, seed=0)
    with pytest.raises(CatvaeError, match="'patient'"):
        split_manifest(make_manifest(), FRACTIONS, seed=0, group_column="patient")


def test_write_split_roundtrip_and_path_rebasing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    manifest = make_manifest()
    manifest["subject"] = [f"{int(s[1:]):03d}" for s in manifest["subject"]]  # ids that look like numbers stay text
    manifest.to_csv(data / "manifest.csv", index=False)
    split = write_split(data / "manifest.csv", data / "split.csv", FRACTIONS, seed=0)
    back = pd.read_csv(data / "split.csv", dtype={"subject": str})
    assert list(back.columns) == [*manifest.columns, "partition"]
    assert back["subject"].iloc[0] == "000" and back["path"].equals(manifest["path"])
    assert back["partition"].equals(split["partition"])
    elsewhere = write_split(data / "manifest.csv", tmp_path / "other" / "split.csv", FRACTIONS, seed=0, by="image")
    assert elsewhere["path"].iloc[0] == "../data/" + manifest["path"].iloc[0]
    with pytest.raises(CatvaeError, match="manifest not found"):
        write_split(tmp_path / "nope.csv", tmp_path / "s.csv", FRACTIONS, seed=0)
    with pytest.raises(CatvaeError, match="'slice'"):
        write_split(data / "manifest.csv", tmp_path / "s.csv", FRACTIONS, seed=0, by="slice")


def test_preset_partition_is_kept(tmp_path):
    """MedMNIST ships its own split: write_split keeps it instead of drawing a new one."""
    import pandas as pd

    from catvae.data.split import write_split

    manifest = pd.DataFrame(
        {"subject": ["a", "b", "c", "d"], "class": ["x", "y", "x", "y"], "path": ["1", "2", "3", "4"],
         "partition": ["train", "train", "val", "test"]}
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    out = write_split(tmp_path / "manifest.csv", tmp_path / "split.csv", {"train": 0.5, "val": 0.25, "test": 0.25}, 0)
    assert list(out["partition"]) == ["train", "train", "val", "test"]


# ------------------------------------------------------------------------------------------- k-fold


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_every_subject_is_tested_exactly_once_and_validation_comes_from_training_folds(folds):
    manifest = make_manifest(n_subjects=41, seed=2)
    splits = [fold_split(manifest, FRACTIONS, seed=4, fold=f, folds=folds) for f in range(folds)]
    tested = pd.concat([s.loc[s["partition"] == "test", "subject"].drop_duplicates() for s in splits])
    assert sorted(tested) == sorted(manifest["subject"].unique())  # each subject in exactly one test fold
    sizes = [s.loc[s["partition"] == "test", "subject"].nunique() for s in splits]
    assert max(sizes) - min(sizes) <= 1
    for split in splits:
        assert (split.groupby("subject")["partition"].nunique() == 1).all()
        assert split.drop(columns="partition").equals(manifest)  # every image, every fold: nothing dropped
        parts = split.drop_duplicates("subject")["partition"].value_counts()
        # train : val keeps the configured 0.7 : 0.15 among the fold's non-test subjects
        assert abs(parts["val"] / (parts["train"] + parts["val"]) - 0.15 / 0.85) < 0.05
        for part in ("train", "val", "test"):
            assert set(split.loc[split.partition == part, "class"]) == {"Tumor", "NoTumor"}


def test_folds_are_stratified_by_class_mix():
    manifest = make_manifest(n_subjects=200, seed=3)
    overall = (manifest["class"] == "Tumor").mean()
    for f in range(5):
        split = fold_split(manifest, FRACTIONS, seed=1, fold=f, folds=5)
        share = (split.loc[split.partition == "test", "class"] == "Tumor").mean()
        assert abs(share - overall) < 0.04, (f, share, overall)


def test_one_fold_is_the_single_split_and_folds_are_seeded():
    manifest = make_manifest()
    assert fold_split(manifest, FRACTIONS, seed=7, fold=0, folds=1).equals(split_manifest(manifest, FRACTIONS, 7))
    a = fold_split(manifest, FRACTIONS, seed=7, fold=1, folds=3)
    assert a.equals(fold_split(manifest.sample(frac=1.0, random_state=0), FRACTIONS, seed=7, fold=1,
                               folds=3).sort_index())
    assert not a["partition"].equals(fold_split(manifest, FRACTIONS, seed=8, fold=1, folds=3)["partition"])


def test_bad_fold_settings_name_the_key(tmp_path):
    manifest = make_manifest(n_subjects=4)
    with pytest.raises(CatvaeError, match="evaluation.folds"):
        fold_split(manifest, FRACTIONS, seed=0, fold=0, folds=5)
    with pytest.raises(CatvaeError, match="evaluation.folds"):
        fold_split(manifest, FRACTIONS, seed=0, fold=0, folds=0)
    with pytest.raises(CatvaeError, match="fold 3"):
        fold_split(manifest, FRACTIONS, seed=0, fold=3, folds=3)
    preset = manifest.assign(partition=["train"] * 6 + ["val"] * 3 + ["test"] * 3)
    preset.to_csv(tmp_path / "manifest.csv", index=False)
    with pytest.raises(CatvaeError, match="evaluation.folds"):
        write_split(tmp_path / "manifest.csv", tmp_path / "split.csv", FRACTIONS, 0, fold=0, folds=2)


def test_write_split_writes_one_fold(tmp_path):
    manifest = make_manifest(n_subjects=12)
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    out = tmp_path / "fold1" / "split.csv"
    written = write_split(tmp_path / "manifest.csv", out, FRACTIONS, 0, fold=1, folds=3)
    back = pd.read_csv(out)
    assert back["partition"].equals(written["partition"])
    assert back["path"].iloc[0] == "../" + manifest["path"].iloc[0]
    assert written["partition"].equals(fold_split(manifest, FRACTIONS, 0, fold=1, folds=3)["partition"])


def _split_frame() -> pd.DataFrame:
    return pd.DataFrame({"subject": ["a", "b", "c"], "modality": ["flair", None, "flair"],
                         "class": ["NoTumor", "Tumor", "Tumor"], "path": ["a.png", "b.png", "c.png"],
                         "partition": ["train", "val", "test"]})


def test_read_split_is_the_one_reader_every_stage_uses(tmp_path):
    """One reader: paths become absolute next to the file, a missing modality becomes '' (not NaN)."""
    path = tmp_path / "fold0" / "split.csv"
    path.parent.mkdir()
    _split_frame().to_csv(path, index=False)
    split = read_split(path, ["NoTumor", "Tumor"])
    assert split["abspath"].tolist() == [str((path.parent / p).resolve()) for p in ("a.png", "b.png", "c.png")]
    assert split["modality"].tolist() == ["flair", "", "flair"]


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns="subject"), r"split\.csv lacks column\(s\) \['subject'\]"),
    (lambda f: f.assign(partition=["train", "holdout", "test"]), r"split\.csv has unknown partition value\(s\) \['holdout'\]"),
    (lambda f: f.assign(**{"class": ["NoTumor", "Tumour", "Tumor"]}), r"split\.csv has class\(es\) \['Tumour'\] not in"),
])
def test_read_split_names_the_file_and_the_fault(tmp_path, change, message):
    path = tmp_path / "split.csv"
    change(_split_frame()).to_csv(path, index=False)
    with pytest.raises(CatvaeError, match=message):
        read_split(path, ["NoTumor", "Tumor"])


# ------------------------------------------------------------- sizes, strata, coverage: the split's rules


def subject_counts(split: pd.DataFrame) -> dict[str, int]:
    return split.drop_duplicates("subject")["partition"].value_counts().to_dict()


@pytest.mark.parametrize("n, fractions, expected", [
    # largest remainder: 7, 1.5, 1.5 -> 7, 1, 1 and the one left goes to the first of the tied remainders (val)
    (10, FRACTIONS, {"train": 7, "val": 2, "test": 1}),
    (40, FRACTIONS, {"train": 28, "val": 6, "test": 6}),  # divides evenly: nothing left over
    (7, {"train": 0.6, "val": 0.2, "test": 0.2}, {"train": 4, "val": 2, "test": 1}),  # remainders .2 .4 .4
    (9, {"train": 0.5, "val": 0.25, "test": 0.25}, {"train": 5, "val": 2, "test": 2}),  # remainders .5 .25 .25
    (5, {"train": 0.8, "test": 0.2}, {"train": 4, "test": 1}),  # no val asked: none given
    # at least one unit in every partition asked for, taken from the largest while it keeps one
    (3, {"train": 0.9, "val": 0.05, "test": 0.05}, {"train": 1, "val": 1, "test": 1}),
    (2, {"train": 0.9, "val": 0.05, "test": 0.05}, {"train": 1, "test": 1}),  # train cannot give its last
])
def test_partition_sizes_are_the_largest_remainder_of_the_fractions(n, fractions, expected):
    manifest = make_manifest(n_subjects=n, n_no_tumor_only=1)
    for seed in range(3):
        assert subject_counts(split_manifest(manifest, fractions, seed=seed)) == expected


@pytest.mark.parametrize("n", [40, 41, 42, 43, 44, 45])
@pytest.mark.parametrize("folds", [2, 3, 4, 5])
def test_test_folds_divide_evenly_or_differ_by_one_subject(n, folds):
    """Counts that divide evenly give equal folds; otherwise the first n % folds folds have one subject more."""
    manifest = make_manifest(n_subjects=n, seed=1)
    sizes = [subject_counts(fold_split(manifest, FRACTIONS, seed=2, fold=f, folds=folds))["test"] for f in range(folds)]
    assert sorted(sizes, reverse=True) == [n // folds + (f < n % folds) for f in range(folds)]


def strata_manifest(per_stratum: int = 10) -> pd.DataFrame:
    """Subjects of 4 slices with 0, 1, 2, 3 or 4 Tumor slices: five class mixes (shares 0, 1/4, 1/2, 3/4, 1),
    each in its own stratum of the split (share bins: none, (0, 1/3), [1/3, 2/3), [2/3, 1), all)."""
    rows = []
    for tumour in range(5):
        for k in range(per_stratum):
            subject = f"T{tumour}S{k:02d}"
            rows += [{"subject": subject, "class": "Tumor" if j < tumour else "NoTumor", "path": f"{subject}_{j}.png"}
                     for j in range(4)]
    return pd.DataFrame(rows)


def mix_counts(split: pd.DataFrame, part: str) -> list[int]:
    """Subjects of `part` per class mix (number of Tumor slices 0..4)."""
    subjects = split.loc[split["partition"] == part, "subject"].drop_duplicates()
    return [int((subjects.str[1] == str(t)).sum()) for t in range(5)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_class_mix_is_dealt_evenly_to_the_folds_and_partitions(seed):
    """Stratification by class mix: 10 subjects of each of 5 mixes over 5 folds put exactly 2 of each mix in every
    test fold; a 0.6 / 0.2 / 0.2 split puts exactly 6 / 2 / 2 of each mix in train / val / test."""
    manifest = strata_manifest()
    for fold in range(5):
        assert mix_counts(fold_split(manifest, FRACTIONS, seed=seed, fold=fold, folds=5), "test") == [2] * 5
    split = split_manifest(manifest, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=seed)
    assert [mix_counts(split, p) for p in ("train", "val", "test")] == [[6] * 5, [2] * 5, [2] * 5]


def three_class_manifest(rng: np.random.Generator) -> pd.DataFrame:
    """6-11 subjects of 4 slices drawn from A, B and a rare C: class mixes that the deal alone leaves uncovered."""
    n = int(rng.integers(6, 12))
    return pd.DataFrame([{"subject": f"S{s:02d}", "class": str(c), "path": f"S{s:02d}_{j}.png"}
                         for s in range(n) for j, c in enumerate(rng.choice(list("ABC"), 4, p=[0.45, 0.45, 0.1]))])


def test_a_class_held_by_enough_subjects_reaches_every_test_fold(caplog):
    """Coverage: a class that at least `folds` subjects hold is in every test fold (swaps keep the fold sizes);
    a class held by fewer is missing from a fold, and the warning names the class and that fold."""
    rng = np.random.default_rng(0)
    for case in range(60):
        manifest, folds, seed = three_class_manifest(rng), int(rng.integers(2, 4)), int(rng.integers(100))
        holders = manifest.drop_duplicates(["subject", "class"])["class"].value_counts()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="catvae.data.split"):
            tests = [fold_split(manifest, FRACTIONS, seed=seed, fold=f, folds=folds) for f in range(folds)]
        n = manifest["subject"].nunique()
        assert sorted(subject_counts(t)["test"] for t in tests) == sorted(n // folds + (f < n % folds)
                                                                         for f in range(folds))
        fold_warnings = {r.getMessage() for r in caplog.records if "too few units" in r.getMessage()}
        for cls, count in holders.items():
            missing = [f for f, t in enumerate(tests) if cls not in set(t.loc[t["partition"] == "test", "class"])]
            if count >= folds:
                assert missing == [], (case, cls)
            for f in missing:
                assert f"class {cls} has too few units to appear in partition {f}" in fold_warnings, (case, cls, f)


def test_a_rare_class_missing_from_a_one_subject_test_partition_is_reported(caplog):
    """10 subjects at 0.7 / 0.15 / 0.15 leave one test subject; when it lacks the rare class, no swap can keep its
    other class in test (the check does not count what the incoming subject brings), so a warning says so."""
    manifest = make_manifest(n_subjects=10, n_no_tumor_only=0)
    manifest["class"] = "Tumor"
    manifest.loc[manifest.subject.isin(["S004", "S007"]) & (manifest.plane == "axial"), "class"] = "NoTumor"
    for seed in range(10):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="catvae.data.split"):
            split = split_manifest(manifest, FRACTIONS, seed=seed)
        assert subject_counts(split)["test"] == 1
        parts = set(split.loc[split["class"] == "NoTumor", "partition"])
        assert "train" in parts, seed
        if "test" not in parts:
            assert ("class NoTumor: no swap puts it in partition test without emptying another class"
                    in caplog.text), seed


def test_split_logs_its_sizes_and_no_warning_when_every_class_fits(caplog):
    manifest = make_manifest()
    with caplog.at_level(logging.INFO, logger="catvae.data.split"):
        split_manifest(manifest, {"train": 0.8, "test": 0.2}, seed=0)  # no val asked: nothing to cover there
        fold_split(manifest, FRACTIONS, seed=0, fold=1, folds=4)
        split_manifest(manifest.iloc[:30], FRACTIONS, seed=0, group_column=None)
    messages = [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], messages
    assert messages[0].startswith("split 40 subjects into train: ") and "test: " in messages[0]
    assert messages[1].startswith("split 40 subjects into train: ")
    assert messages[2].startswith("split 30 images into train: ")


def test_as_many_folds_as_subjects_tests_each_subject_alone():
    manifest = make_manifest(n_subjects=5, n_no_tumor_only=1)
    tested = [fold_split(manifest, FRACTIONS, seed=0, fold=f, folds=5) for f in range(5)]
    assert sorted(t.loc[t["partition"] == "test", "subject"].unique()[0] for t in tested) == sorted(
        manifest["subject"].unique())


@pytest.mark.parametrize("kwargs, message", [
    ({"fold": 0, "folds": True}, r"'evaluation\.folds' must be a positive integer, got True"),
    ({"fold": 0, "folds": 2.0}, r"'evaluation\.folds' must be a positive integer, got 2\.0"),
    ({"fold": True, "folds": 3}, r"fold True is not one of 0\.\.2 \(config key 'evaluation\.folds' is 3\)"),
    ({"fold": 1.0, "folds": 3}, r"fold 1\.0 is not one of 0\.\.2 "),
    ({"fold": 3, "folds": 3}, r"fold 3 is not one of 0\.\.2 "),
])
def test_fold_settings_of_the_wrong_type_are_refused(kwargs, message):
    with pytest.raises(CatvaeError, match=message):
        fold_split(make_manifest(n_subjects=12), FRACTIONS, seed=0, **kwargs)


@pytest.mark.parametrize("manifest, group_column, folds, message", [
    (pd.DataFrame({"subject": ["a"], "path": ["a.png"]}), "subject", 1, r"^manifest has no 'class' column$"),
    (pd.DataFrame(columns=["subject", "class"]), "subject", 1, r"^manifest is empty: nothing to split$"),
    (pd.DataFrame({"class": ["A", "B"]}), "subject", 1, r"^manifest has no 'subject' column to split by$"),
    (pd.DataFrame({"subject": ["a", "a"], "class": ["A", "B"]}), "subject", 1,
     r"^need at least 2 subjects to split, got 1$"),
    (pd.DataFrame({"subject": ["a"], "class": ["A"]}), None, 1, r"^need at least 2 images to split, got 1$"),
    (pd.DataFrame({"subject": ["a", "b", "c"], "class": ["A", "B", "A"]}), "subject", 4,
     r"^config key 'evaluation\.folds' is 4 but there are only 3 subjects to deal into test folds$"),
    (pd.DataFrame({"subject": ["a", "b", "c"], "class": ["A", "B", "A"]}), None, 4,
     r"^config key 'evaluation\.folds' is 4 but there are only 3 images to deal into test folds$"),
])
def test_manifests_that_cannot_be_split_are_refused_with_the_reason(manifest, group_column, folds, message):
    with pytest.raises(CatvaeError, match=message):
        fold_split(manifest, FRACTIONS, seed=0, fold=0, folds=folds, group_column=group_column)
