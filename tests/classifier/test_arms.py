"""Arm parsing and training-set composition: exact counts, the synthetic prefix rule, seeded baselines."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catvae.classifier.arms import EXTRA_COLUMNS, build_training_set, parse_arm
from catvae.classifier.augment import apply_recipe, draw_recipe
from catvae.data.images import read_manifest, save_png
from catvae.errors import CatvaeError

CLASSES = ["NoTumor", "Tumor"]
LAYOUT = {"train": {"NoTumor": 3, "Tumor": 6}, "val": {"NoTumor": 2, "Tumor": 2}, "test": {"NoTumor": 3, "Tumor": 3}}


def _image(rng: np.random.Generator, cls: str, size: int) -> np.ndarray:
    """A dark noisy disc; Tumor images add a bright square at a random place (learnable, not trivial)."""
    yy, xx = np.mgrid[:size, :size]
    image = 0.3 * (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size * 0.4) ** 2) + 0.05 * rng.random((size, size))
    if cls == "Tumor":
        r, c = rng.integers(size // 4, size - size // 4 - 4, size=2)
        image[r : r + size // 6 + 2, c : c + size // 6 + 2] = 0.95
    elif cls == "Edema":
        image[rng.integers(size // 4, size - size // 4), size // 5 : size - size // 5] = 0.8
    return np.clip(image, 0, 1)


def make_dataset(root: Path, size: int = 16, layout: dict = LAYOUT, n_synthetic: int = 10,
                 generator: str = "vae", seed: int = 0) -> tuple[str, dict[str, str]]:
    """Write a tiny split.csv (two slices per subject) and one synthetic manifest per class; return their paths."""
    rng = np.random.default_rng(seed)
    rows = []
    for partition, per_class in layout.items():
        for cls, n in per_class.items():
            for i in range(n):
                rel = f"slices/{cls}/{partition}_{i:03d}.png"
                save_png(root / "data" / rel, _image(rng, cls, size))
                rows.append({"subject": f"{partition}-{cls}-{i // 2}", "modality": "flair", "plane": "axial",
                             "slice_index": i, "class": cls, "tumor_voxels": 10 * (cls == "Tumor"),
                             "brain_fraction": 0.5, "path": rel, "partition": partition})
    split_csv = root / "data" / "split.csv"
    pd.DataFrame(rows).to_csv(split_csv, index=False)
    manifests = {}
    for cls in dict.fromkeys(c for per_class in layout.values() for c in per_class):
        folder = root / "synthetic" / generator / cls
        for i in range(n_synthetic):
            save_png(folder / f"{i:05d}.png", _image(rng, cls, size))
        manifest = pd.DataFrame({"index": range(n_synthetic), "class": cls, "model": generator,
                                 "path": [f"{i:05d}.png" for i in range(n_synthetic)]})
        manifest.to_csv(folder / "manifest.csv", index=False)
        manifests[cls] = str(folder / "manifest.csv")
    return str(split_csv), manifests


@pytest.fixture
def dataset(tmp_path):
    split_csv, manifests = make_dataset(tmp_path)
    return read_manifest(split_csv), manifests


@pytest.mark.parametrize(
    "arm, expected",
    [("none", ("none", None)), ("weighted", ("weighted", None)), ("vae@437", ("vae", 437)), ("catvae@balance", ("catvae", "balance")),
     ("oversample@1000", ("oversample", 1000)), ("classic@2000", ("classic", 2000)), ("my_gan@5", ("my_gan", 5))],
)
def test_parse_arm_accepts_the_documented_forms(arm, expected):
    assert parse_arm(arm) == expected


@pytest.mark.parametrize("arm", ["", "vae", "vae@", "@437", "vae@0", "vae@-3", "vae@1.5", "vae@abc",
                                 "none@437", "weighted@437", "vae@437@2", "va e@4", "../x@4"])
def test_parse_arm_rejects_malformed_names(arm):
    with pytest.raises(CatvaeError):
        parse_arm(arm)


@pytest.mark.parametrize("arm", ["none", "weighted"])
def test_none_and_weighted_are_the_real_training_split_only(dataset, arm):
    split, manifests = dataset
    ts = build_training_set(split, arm, CLASSES, manifests, seed=0)
    assert ts.method == arm and ts.counts == {"NoTumor": {"total": 3, "real": 3, "synthetic": 0},
                         "Tumor": {"total": 6, "real": 6, "synthetic": 0}}
    assert ts.extra.empty and len(ts.table()) == 9 and set(ts.real["partition"]) == {"train"}


def test_generator_arm_fills_each_class_up_to_the_target(dataset):
    split, manifests = dataset
    ts = build_training_set(split, "vae@8", CLASSES, manifests, seed=0)
    assert ts.counts == {"NoTumor": {"total": 8, "real": 3, "synthetic": 5},
                         "Tumor": {"total": 8, "real": 6, "synthetic": 2}}
    assert set(ts.extra["source"]) == {"vae"}


def test_synthetic_origin_is_absolute_when_the_manifest_path_is_relative(dataset, tmp_path, monkeypatch):
    """Snakemake passes paths relative to its working directory; training_set.csv stores `origin` relative to the
    classifier folder, which is right only if `origin` is absolute first (as `abspath` is)."""
    split, manifests = dataset
    monkeypatch.chdir(tmp_path)
    relative = {c: str(Path(m).relative_to(tmp_path)) for c, m in manifests.items()}
    ts = build_training_set(split, "vae@8", CLASSES, relative, seed=0)
    assert {Path(p) for p in ts.extra["origin"]} == {Path(m).resolve() for m in manifests.values()}


def test_generator_arm_takes_the_first_manifest_rows(dataset):
    split, manifests = dataset
    ts = build_training_set(split, "vae@8", CLASSES, manifests, seed=3)
    for cls, n in (("NoTumor", 5), ("Tumor", 2)):
        first = read_manifest(manifests[cls])["abspath"].iloc[:n].tolist()
        assert ts.extra[ts.extra["class"] == cls]["abspath"].tolist() == first


def test_balance_fills_the_minority_to_the_majority_count(dataset):
    split, manifests = dataset
    ts = build_training_set(split, "vae@balance", CLASSES, manifests, seed=0)
    assert ts.target_count == 6
    assert ts.counts == {"NoTumor": {"total": 6, "real": 3, "synthetic": 3},
                         "Tumor": {"total": 6, "real": 6, "synthetic": 0}}


def test_a_class_needing_no_extras_needs_no_manifest(dataset):
    split, manifests = dataset
    ts = build_training_set(split, "vae@balance", CLASSES, {"NoTumor": manifests["NoTumor"]}, seed=0)
    assert ts.counts["Tumor"]["synthetic"] == 0


def test_too_short_or_missing_or_mismatched_manifest_is_an_error(dataset, tmp_path):
    split, manifests = dataset
    with pytest.raises(CatvaeError, match="manifest.csv has 10 rows"):
        build_training_set(split, "vae@20", CLASSES, manifests, seed=0)
    with pytest.raises(CatvaeError, match="no manifest was given for class 'NoTumor'"):
        build_training_set(split, "catvae@8", CLASSES, {}, seed=0)
    with pytest.raises(CatvaeError, match="should hold only class 'NoTumor' from model 'catvae'"):
        build_training_set(split, "catvae@8", CLASSES, manifests, seed=0)


@pytest.mark.parametrize("method", ["oversample", "classic"])
def test_baselines_fill_to_the_target_from_real_training_images(dataset, method):
    split, manifests = dataset
    ts = build_training_set(split, f"{method}@10", CLASSES, {}, seed=0)
    assert ts.counts == {"NoTumor": {"total": 10, "real": 3, "synthetic": 7},
                         "Tumor": {"total": 10, "real": 6, "synthetic": 4}}
    train_paths = set(ts.real["abspath"])
    assert set(ts.extra["abspath"]) <= train_paths
    for cls in CLASSES:
        sources = set(ts.real[ts.real["class"] == cls]["abspath"])
        assert set(ts.extra[ts.extra["class"] == cls]["abspath"]) <= sources
    recipes = ts.extra["recipe"].tolist()
    assert all(recipes) if method == "classic" else not any(recipes)


@pytest.mark.parametrize("method", ["oversample", "classic"])
def test_baselines_are_seeded_and_nested(dataset, method):
    split, _ = dataset
    a = build_training_set(split, f"{method}@10", CLASSES, {}, seed=1).extra
    b = build_training_set(split, f"{method}@10", CLASSES, {}, seed=1).extra
    c = build_training_set(split, f"{method}@30", CLASSES, {}, seed=2).extra
    small = build_training_set(split, f"{method}@8", CLASSES, {}, seed=1).extra
    pd.testing.assert_frame_equal(a, b)
    assert not a[["abspath", "recipe"]].equals(c[["abspath", "recipe"]].iloc[: len(a)].reset_index(drop=True))
    for cls in CLASSES:
        n = len(small[small["class"] == cls])
        pd.testing.assert_frame_equal(small[small["class"] == cls].reset_index(drop=True),
                                      a[a["class"] == cls].iloc[:n].reset_index(drop=True))


def test_unknown_class_in_split_is_an_error(dataset):
    split, manifests = dataset
    with pytest.raises(CatvaeError, match="not in the configured classes"):
        build_training_set(split, "none", ["Tumor", "Other"], manifests, seed=0)


def test_augmentation_recipe_is_bounded_and_flips_exactly():
    rng = np.random.default_rng(0)
    image = rng.random((1, 16, 16)).astype(np.float32)
    for _ in range(20):
        recipe = draw_recipe(rng)
        assert -10 <= recipe["angle"] <= 10 and 0.9 <= recipe["contrast"] <= 1.1
        out = apply_recipe(image, recipe)
        assert out.shape == image.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
        json.dumps(recipe)
    flip = {"flip_h": True, "flip_v": False, "angle": 0.0, "brightness": 0.0, "contrast": 1.0}
    np.testing.assert_allclose(apply_recipe(image, flip), image[:, :, ::-1], atol=1e-6)
    rotated = apply_recipe(image, {**flip, "flip_h": False, "angle": 10.0})
    assert not np.allclose(rotated, image)


@pytest.mark.parametrize("method", ["oversample", "classic"])
def test_every_extra_row_records_its_source_origin_subject_and_recipe(dataset, method):
    """What training_set.csv records of a baseline extra: the method, the real image it copies (origin = abspath)
    and that image's subject (so the leakage guard sees it), and for `classic` the recipe as key-sorted JSON."""
    split, _ = dataset
    ts = build_training_set(split, f"{method}@10", CLASSES, {}, seed=0)
    assert list(ts.extra.columns) == EXTRA_COLUMNS and list(ts.table().columns) == EXTRA_COLUMNS
    subject_of = dict(zip(ts.real["abspath"], ts.real["subject"].astype(str)))
    for _, row in ts.extra.iterrows():
        assert row["source"] == method and row["origin"] == row["abspath"]
        assert row["subject"] == subject_of[row["abspath"]]
        if method == "classic":
            recipe = json.loads(row["recipe"])
            assert set(recipe) == {"flip_h", "flip_v", "angle", "brightness", "contrast"}
            assert row["recipe"] == json.dumps(recipe, sort_keys=True)
        else:
            assert row["recipe"] == ""


def test_synthetic_rows_record_the_generator_and_no_subject_or_recipe(dataset):
    split, manifests = dataset
    ts = build_training_set(split, "vae@8", CLASSES, manifests, seed=0)
    assert list(ts.extra.columns) == EXTRA_COLUMNS
    assert set(ts.extra["source"]) == {"vae"} and set(ts.extra["subject"]) == {""} and set(ts.extra["recipe"]) == {""}
    exact = build_training_set(split, "vae@13", CLASSES, manifests, seed=0).counts  # NoTumor: all 10 rows
    assert exact["NoTumor"]["synthetic"] == 10 and exact["Tumor"]["synthetic"] == 7


def _manifest_copy(manifests: dict[str, str], cls: str, folder: Path, **changes) -> str:
    frame = read_manifest(manifests[cls]).assign(**changes)
    frame["path"] = frame.pop("abspath")
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "manifest.csv", index=False)
    return str(folder / "manifest.csv")


def test_a_manifest_of_the_wrong_class_or_model_or_columns_is_refused_with_what_it_holds(dataset, tmp_path):
    split, manifests = dataset
    wrong_class = _manifest_copy(manifests, "NoTumor", tmp_path / "a", **{"class": "Tumor"})
    with pytest.raises(CatvaeError, match="^" + re.escape(
            f"synthetic manifest {wrong_class} should hold only class 'NoTumor' from model 'vae', found class(es) "
            "['Tumor'] and model(s) ['vae']") + "$"):
        build_training_set(split, "vae@8", CLASSES, {**manifests, "NoTumor": wrong_class}, seed=0)
    wrong_model = _manifest_copy(manifests, "NoTumor", tmp_path / "b", model="gan")
    with pytest.raises(CatvaeError, match="^" + re.escape(
            f"synthetic manifest {wrong_model} should hold only class 'NoTumor' from model 'vae', found class(es) "
            "['NoTumor'] and model(s) ['gan']") + "$"):
        build_training_set(split, "vae@8", CLASSES, {**manifests, "NoTumor": wrong_model}, seed=0)
    frame = pd.read_csv(wrong_model).drop(columns="model")
    frame.to_csv(tmp_path / "b" / "manifest.csv", index=False)
    with pytest.raises(CatvaeError, match="model"):
        build_training_set(split, "vae@8", CLASSES, {**manifests, "NoTumor": wrong_model}, seed=0)


@pytest.mark.parametrize("arm, message", [
    (5, "classifier arm must be a non-empty string, got 5"),
    ("", "classifier arm must be a non-empty string, got ''"),
    ("vae", "classifier arm 'vae' must be one of ['none', 'weighted'] or '<method>@<target>' (one '@')"),
    ("none@4", "classifier arm 'none@4': method 'none' must be a generator name or one of "),
    ("vae@0", "classifier arm 'vae@0': target '0' must be a positive integer or 'balance'"),
])
def test_parse_arm_names_the_fault(arm, message):
    with pytest.raises(CatvaeError, match="^" + re.escape(message)):
        parse_arm(arm)
    assert parse_arm("vae@1") == ("vae", 1)  # the smallest target


def test_the_training_set_keeps_the_split_rows_and_records_the_arm(dataset):
    """The real rows are the split's training rows as they are (no index column added); the extras of every class
    are filled whatever the class order (a class that needs none does not stop the others); one training image of a
    class is enough, none is refused by name."""
    split, manifests = dataset
    ts = build_training_set(split, "vae@5", ["Tumor", "NoTumor"], manifests, seed=0)
    assert (ts.arm, ts.method, ts.target, ts.target_count, ts.classes) == ("vae@5", "vae", 5, 5, ["Tumor", "NoTumor"])
    assert list(ts.real.columns) == list(split.columns) and ts.real.index.equals(pd.RangeIndex(9))
    assert ts.counts["NoTumor"]["synthetic"] == 2 and ts.counts["Tumor"]["synthetic"] == 0
    assert ts.extra.index.equals(pd.RangeIndex(len(ts.extra)))
    both = build_training_set(split, "oversample@8", CLASSES, {}, seed=0).extra
    assert both.index.equals(pd.RangeIndex(len(both))) and len(both) == 5 + 2
    one = split.drop(split.index[(split["partition"] == "train") & (split["class"] == "NoTumor")][1:])
    assert build_training_set(one, "none", CLASSES, {}, seed=0).counts["NoTumor"]["real"] == 1
    none = split.drop(split.index[(split["partition"] == "train") & (split["class"] == "NoTumor")])
    with pytest.raises(CatvaeError, match="^" + re.escape("split.csv has no training images of class(es) "
                                                          "['NoTumor']") + "$"):
        build_training_set(none, "none", CLASSES, {}, seed=0)
