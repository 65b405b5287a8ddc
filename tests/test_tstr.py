"""Train on synthetic, test on real: synthetic images only in training, real validation and test, the score recorded."""

import json

import pytest
from test_arms import CLASSES, make_dataset

from catvae.classifier.tstr import run_tstr
from catvae.data.images import read_manifest
from catvae.errors import CatvaeError

OPTIONS = {"image_size": 32, "channels": 1, "epochs": 6, "batch_size": 4, "lr": 0.001}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tstr"), size=32, n_synthetic=12)


def _run(dataset, out, manifests=None, **kwargs):
    split_csv, own = dataset
    args = dict(model="vae", classes=CLASSES, tstr_images=10, targets=[8], options=OPTIONS, seed=0,
                config_name="test", fold=1, replicate=2, device="cpu")
    return run_tstr(split_csv, manifests or own, out, **{**args, **kwargs})


def test_tstr_trains_on_synthetic_images_and_scores_the_real_test_set(dataset, tmp_path):
    result = _run(dataset, tmp_path / "tstr.json")
    on_disk = json.loads((tmp_path / "tstr.json").read_text())
    assert on_disk == result
    assert result["n_per_class"] == 10 and result["n_train"] == 20 and result["n_test"] == 6
    assert result["fold"] == 1 and result["replicate"] == 2 and result["protocol"] == "train-synthetic-test-real"
    assert 0 <= result["balanced_accuracy"] <= 1
    assert result["select"] == "last" and result["selected_epoch"] == result["epochs_run"] == OPTIONS["epochs"]
    # the synthetic images of this fixture carry their class (Tumor: a bright square): well above chance
    assert result["balanced_accuracy"] > 0.5


def test_tstr_count_defaults_to_the_largest_target(dataset, tmp_path):
    assert _run(dataset, tmp_path / "a.json", tstr_images="largest", targets=[5, 9])["n_per_class"] == 9
    # 'balance' = the majority class's real training count (6 Tumor images in the fixture)
    assert _run(dataset, tmp_path / "b.json", tstr_images="largest", targets=["balance"])["n_per_class"] == 6


def test_swapped_synthetic_labels_score_below_chance(dataset, tmp_path):
    """The score follows what the synthetic images show: a generator whose classes are swapped fails the real test."""
    _, manifests = dataset
    swapped = {}
    for cls, other in zip(CLASSES, reversed(CLASSES)):
        frame = read_manifest(manifests[other]).assign(**{"class": cls})
        frame["path"] = frame.pop("abspath")  # absolute: the copy lives elsewhere
        frame.to_csv(tmp_path / f"{cls}.csv", index=False)
        swapped[cls] = str(tmp_path / f"{cls}.csv")
    result = _run(dataset, tmp_path / "swapped.json", manifests=swapped)
    assert result["balanced_accuracy"] < 0.5 and result["selected_epoch"] == OPTIONS["epochs"]


def test_tstr_refuses_too_few_or_missing_synthetic_images(dataset, tmp_path):
    with pytest.raises(CatvaeError, match="has 12 rows but"):
        _run(dataset, tmp_path / "x.json", tstr_images=20)
    with pytest.raises(CatvaeError, match="missing"):
        _run(dataset, tmp_path / "y.json", manifests={"Tumor": dataset[1]["Tumor"]})
    with pytest.raises(CatvaeError, match="quality.tstr_images"):
        _run(dataset, tmp_path / "z.json", tstr_images=0)
    assert not (tmp_path / "x.json").exists()
