"""The reference's protocol (catvae.classifier.paper_protocol), config/paper.yaml against the paper's values, and
the protocol-inflation table and figure (catvae.report.protocol_inflation)."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO
from classifier.test_arms import CLASSES, make_dataset

from catvae.classifier.arms import build_training_set
from catvae.classifier.paper_protocol import (
    PAPER_PROTOCOL,
    keras_validation_split,
    paper_split,
    paper_training_set,
    run_paper_protocol,
    write_paper_split,
)
from catvae.data.images import read_manifest
from catvae.errors import CatvaeError
from catvae.report.protocol_inflation import (
    PAPER_TABLE7,
    protocol_inflation_figure,
    protocol_inflation_table,
    rise_note,
    rise_summary,
)
from catvae.report.statistics import SubjectBootstrap

OPTIONS = {"image_size": 32, "channels": 1, "epochs": 2, "batch_size": 4, "lr": 0.001}


# ------------------------------------------------------------------------------- pool sizing (Table 7)


def _brats_like(tmp_path, n_tumor=830, n_no_tumor=277, n_synthetic=2000):
    """A split of the paper's BraTS counts (3 slices per subject, one subject-level fold) and synthetic manifests
    long enough for the largest target; no image files: the pool is sized before any image is read."""
    rows = []
    for cls, n in (("Tumor", n_tumor), ("NoTumor", n_no_tumor)):
        for i in range(n):
            subject = f"{cls}-{i // 3}"
            partition = ["train", "train", "train", "train", "val", "test"][(i // 3) % 6]
            rows.append({"subject": subject, "modality": "flair", "plane": "axial", "slice_index": i, "class": cls,
                         "path": f"/data/{cls}/{i:04d}.png", "partition": partition})
    manifests = {}
    for cls in CLASSES:
        folder = tmp_path / "synthetic" / cls
        folder.mkdir(parents=True)
        pd.DataFrame({"index": range(n_synthetic), "class": cls, "model": "catvae",
                      "path": [f"{i:05d}.png" for i in range(n_synthetic)]}).to_csv(folder / "manifest.csv",
                                                                                     index=False)
        manifests[cls] = str(folder / "manifest.csv")
    return pd.DataFrame(rows), manifests


# Table 7 of the paper: per arm, Tumor and NoTumor (total, real, synthetic).
TABLE7_COUNTS = {
    "catvae@balance": {"Tumor": (830, 830, 0), "NoTumor": (830, 277, 553)},
    "catvae@1000": {"Tumor": (1000, 830, 170), "NoTumor": (1000, 277, 723)},
    "catvae@2000": {"Tumor": (2000, 830, 1170), "NoTumor": (2000, 277, 1723)},
    "none": {"Tumor": (830, 830, 0), "NoTumor": (277, 277, 0)},
}


@pytest.mark.parametrize("arm", list(TABLE7_COUNTS))
def test_paper_pools_count_every_real_image_as_table7_does(tmp_path, arm):
    split, manifests = _brats_like(tmp_path)
    training = paper_training_set(split, arm, CLASSES, manifests, seed=0)
    for cls, (total, real, synthetic) in TABLE7_COUNTS[arm].items():
        assert training.counts[cls] == {"total": total, "real": real, "synthetic": synthetic}, cls
    assert len(training.table()) == sum(c[0] for c in TABLE7_COUNTS[arm].values())
    if arm == "catvae@balance":
        assert training.target_count == 830  # balance on the whole cohort is the paper's 830


def test_held_out_arms_size_the_extras_against_the_folds_training_images(tmp_path):
    """The held-out protocol counts the fold's *training* images: balance is the fold's Tumor count, so Tumor gets
    no synthetic image (the paper's 830 design), while an explicit 1000 holds more synthetic images than the
    paper's pool at 1000 (docs/DEPARTURES.md)."""
    split, manifests = _brats_like(tmp_path)
    n_train = split[split["partition"] == "train"]["class"].value_counts()
    balance = build_training_set(split, "catvae@balance", CLASSES, manifests, seed=0)
    assert balance.target_count == n_train["Tumor"] < 830 and balance.counts["Tumor"]["synthetic"] == 0
    at_1000 = build_training_set(split, "catvae@1000", CLASSES, manifests, seed=0)
    assert at_1000.counts["Tumor"]["synthetic"] == 1000 - n_train["Tumor"] > 170


def test_paper_split_makes_every_image_a_training_image_and_rejects_duplicates(tmp_path):
    split, _ = _brats_like(tmp_path, n_tumor=9, n_no_tumor=6, n_synthetic=1)
    out = paper_split(split)
    assert set(out["partition"]) == {"train"} and list(out["path"]) == list(split["path"])
    with pytest.raises(CatvaeError, match="more than once"):
        paper_split(pd.concat([split, split.iloc[:1]]))


def test_written_paper_split_keeps_paths_valid_from_its_own_folder(tmp_path):
    split_csv, _ = make_dataset(tmp_path, size=16)
    out = tmp_path / "elsewhere" / "deeper" / "split.csv"
    write_paper_split(split_csv, out)
    again = read_manifest(out)
    original = read_manifest(split_csv)
    assert list(again["abspath"]) == list(original["abspath"]) and set(again["partition"]) == {"train"}


# ------------------------------------------------------------------------------- Keras split and the run


def test_keras_split_is_the_last_fifth_of_a_seeded_shuffle():
    fit_idx, score_idx = keras_validation_split(50, 42)
    order = np.arange(50)
    np.random.RandomState(42).shuffle(order)
    assert set(score_idx) == set(order[-10:]) and sorted([*fit_idx, *score_idx]) == list(range(50))
    assert set(keras_validation_split(50, 7)[1]) != set(score_idx)
    with pytest.raises(CatvaeError, match="cannot split"):
        keras_validation_split(3, 42)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), size=32)


def test_run_paper_protocol_scores_the_seeded_fifth_of_the_whole_pool(dataset, tmp_path):
    split_csv, manifests = dataset
    n_real = len(pd.read_csv(split_csv))
    results = []
    for seed in (0, 1):
        out = tmp_path / str(seed)
        run_paper_protocol(split_csv, str(out), arm="vae@8", seed=seed, classes=CLASSES, synthetic_manifests=manifests,
                           options=OPTIONS, config_name="test", device="cpu", threads=1)
        paper = json.loads((out / "metrics_paper_protocol.json").read_text())
        results.append(paper)
        assert paper["protocol"] == PAPER_PROTOCOL and "NOT a held-out" in paper["note"] and "fold" not in paper
        # every real image (all partitions: 9 NoTumor... 11 Tumor) + extras up to 8 per class, real counted
        pool = paper["pool_counts"]
        assert paper["n_pool_real"] == n_real and pool["Tumor"]["real"] == 11 and pool["NoTumor"]["real"] == 8
        assert pool["Tumor"]["synthetic"] == 0 and pool["NoTumor"]["synthetic"] == 0  # 8 <= real counts
        assert paper["n_test"] == int(0.2 * paper["n_pool"]) and paper["n_train"] + paper["n_test"] == paper["n_pool"]
        assert paper["split_seed"] == 42 and paper["select"] == "last" and paper["selected_epoch"] == 2
        table = pd.read_csv(out / "training_set.csv")
        assert len(table) == paper["n_pool"] and table["scored"].sum() == paper["n_test"]
        assert len(pd.read_csv(out / "history.csv")) == 2
    # the split does not move with the classifier seed
    assert results[0]["n_test_synthetic"] == results[1]["n_test_synthetic"]
    assert results[0]["counts"] == results[1]["counts"]


def test_run_paper_protocol_counts_synthetic_images_in_the_scored_fifth(dataset, tmp_path):
    split_csv, manifests = dataset
    paper = run_paper_protocol(split_csv, str(tmp_path), arm="vae@14", seed=0, classes=CLASSES,
                               synthetic_manifests=manifests, options={**OPTIONS, "epochs": 1}, config_name="test",
                               device="cpu")
    assert paper["pool_counts"]["NoTumor"] == {"total": 14, "real": 8, "synthetic": 6}
    table = pd.read_csv(tmp_path / "training_set.csv")
    scored = table[table["scored"]]
    assert paper["n_test_synthetic"] == int((scored["source"] != "real").sum())
    assert paper["test_synthetic_share"] == pytest.approx(paper["n_test_synthetic"] / paper["n_test"])


# ------------------------------------------------------------------------------- config/paper.yaml vs the paper

# Every value below is the paper's, with where it says so. The CNN's 224 px input and batch 32 are not in the paper's
# text: they come from the authors' Keras notebooks (image_dataset_from_directory(image_size=(224, 224),
# batch_size=32)).
PAPER_VALUES = {
    ("synthesis", "targets"): (["balance", 1000, 2000], "Table 7: 830 (= the Tumor count: balance) / 1000 / 2000"),
    ("generators", "vae", "epochs"): (500, "Table 2: Epochs 500"),
    ("generators", "catvae", "epochs"): (500, "Table 2: Epochs 500"),
    ("generators", "vae", "batch_size"): (64, "Table 2: Batch Size 64"),
    ("generators", "catvae", "batch_size"): (64, "Table 2: Batch Size 64"),
    ("generators", "vae", "latent_dim"): (100, "Table 2: Latent Dim 100"),
    ("generators", "catvae", "latent_dim"): (100, "Table 2: Latent Dim 100"),
    ("dataset", "image_size"): (128, "Table 2: Image Shape 128 x 128 x 3"),
    ("dataset", "channels"): (3, "Table 2: Image Shape 128 x 128 x 3"),
    ("classifier", "epochs"): (20, "Tables 6 and 7: 'Epoch = 20'"),
    ("classifier", "image_size"): (224, "the notebooks: image_dataset_from_directory(image_size=(224, 224))"),
    ("classifier", "batch_size"): (32, "the notebooks: image_dataset_from_directory(batch_size=32)"),
    ("classifier", "paper_protocol_seed"): (42, "the notebooks: image_dataset_from_directory(seed=42)"),
}


@pytest.mark.parametrize("keys", list(PAPER_VALUES), ids=[".".join(k) for k in PAPER_VALUES])
def test_paper_preset_keeps_the_papers_values(keys):
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    value = config
    for key in keys:
        value = value[key]
    expected, source = PAPER_VALUES[keys]
    assert value == expected, f"config/paper.yaml {'.'.join(keys)} = {value!r}; the paper's is {expected!r} ({source})"


def test_breast_ultrasound_preset_keeps_table6_targets():
    config = yaml.safe_load((REPO / "config" / "busi.yaml").read_text())
    assert config["synthesis"]["targets"] == [437, 1000, 2000]  # Table 6: 437 = the benign count


# ------------------------------------------------------------------------------- protocol inflation


def _predictions(path, n_subjects, accuracy, rng):
    """Held-out predictions of `n_subjects` subjects x 2 slices, right with probability `accuracy`."""
    true = np.array([CLASSES[i % 2] for i in range(2 * n_subjects)])
    right = rng.random(len(true)) < accuracy
    pred = np.where(right, true, np.where(true == CLASSES[0], CLASSES[1], CLASSES[0]))
    prob = np.where(pred == CLASSES[1], 0.8, 0.2)
    pd.DataFrame({"subject": [f"s{i // 2}" for i in range(len(true))], "true": true, "pred": pred,
                  f"prob_{CLASSES[0]}": 1 - prob, f"prob_{CLASSES[1]}": prob}).to_csv(path, index=False)
    return float(right.mean())


def _inflation_inputs(tmp_path):
    rng = np.random.default_rng(0)
    # (target, pool count, held-out accuracy, paper-protocol accuracy, paper-protocol balanced accuracy)
    arms = {"none": (None, None, 0.70, 0.80, 0.60), "catvae@balance": ("balance", 416, 0.72, 0.85, 0.83),
            "catvae@501": (501, 501, 0.73, 0.88, 0.87), "catvae@1002": (1002, 1002, 0.74, 0.93, 0.92)}
    paper, heldout, predictions = [], [], []
    for arm, (target, count, held, pp, pp_balanced) in arms.items():
        method = arm.split("@")[0]
        for seed in (0, 1):
            path = tmp_path / f"{arm}_{seed}.csv"
            acc = _predictions(path, 40, held, rng)
            heldout.append({"arm": arm, "method": method, "target": target, "seed": seed, "fold": 0,
                            "classes": CLASSES, "accuracy": acc})
            predictions.append(path)
            paper.append({"arm": arm, "method": method, "target": target, "target_count": count, "seed": seed,
                          "accuracy": pp + 0.01 * seed, "balanced_accuracy": pp_balanced, "n_test": 100,
                          "n_test_synthetic": 0 if count is None else count // 20})
    bootstrap = SubjectBootstrap.from_records(heldout, predictions, resamples=200, seed=0)
    return paper, heldout, bootstrap


def test_protocol_inflation_table_puts_both_protocols_and_table7_side_by_side(tmp_path):
    paper, heldout, bootstrap = _inflation_inputs(tmp_path)
    frame = protocol_inflation_table(paper, bootstrap, heldout, ["catvae"])
    assert list(frame["_arm"]) == ["none", "catvae@balance", "catvae@501", "catvae@1002"]
    row = frame.set_index("_arm").loc["catvae@1002"]
    assert row["Paper-protocol accuracy"].mean == pytest.approx(0.935)
    assert row["Synthetic share of scored 20%"] == pytest.approx(0.5)
    held = bootstrap.interval("catvae@1002", "balanced_accuracy")
    assert row["Held-out balanced accuracy"] == held and held.low <= held.estimate <= held.high
    assert row["Paper − held-out"] == pytest.approx(0.935 - held.estimate)
    # targets matched to Table 7 by rank: balance -> 830, 501 -> 1000, 1002 -> 2000
    assert list(frame["Paper Table 7"]) == [PAPER_TABLE7[("none", None)], PAPER_TABLE7[("catvae", 0)],
                                            PAPER_TABLE7[("catvae", 1)], PAPER_TABLE7[("catvae", 2)]]
    held_out = {arm: bootstrap.interval(arm, "balanced_accuracy").estimate for arm in bootstrap.arms}
    summary = rise_summary(frame, bootstrap).set_index(["method", "step"])
    # real only -> largest target, both protocols in balanced accuracy (Table 7's accuracy beside)
    step = summary.loc[("catvae", "augmentation")]
    assert (step["from"], step["to"]) == ("real only", 1002)
    assert step["paper rise"] == pytest.approx(0.92 - 0.60)
    assert step["paper accuracy rise"] == pytest.approx(0.935 - 0.805)
    assert step["held-out rise"] == pytest.approx(held_out["catvae@1002"] - held_out["none"])
    assert step["held-out rise CI"] == bootstrap.compare("catvae@1002", "none", "balanced_accuracy")[0]
    assert step["protocol share"] == pytest.approx(1 - step["held-out rise"] / step["paper rise"])
    # the rise with the target: smallest -> largest target of the method
    step = summary.loc[("catvae", "target")]
    assert (step["from"], step["to"]) == ("balance", 1002)
    assert step["paper rise"] == pytest.approx(0.92 - 0.83)
    assert step["held-out rise"] == pytest.approx(held_out["catvae@1002"] - held_out["catvae@balance"])
    assert step["held-out rise CI"] == bootstrap.compare("catvae@1002", "catvae@balance", "balanced_accuracy")[0]
    note = rise_note(rise_summary(frame, bootstrap))
    assert "CAT-VAE, real only -> 1002: paper protocol +32.0 points (accuracy +13.0)" in note
    assert "CAT-VAE, balance -> 1002: paper protocol +9.0 points" in note
    assert rise_summary(frame)["held-out rise CI"].isna().all()  # no bootstrap, no interval
    out = protocol_inflation_figure(frame, tmp_path / "inflation.png", note="note")
    assert out.stat().st_size > 10_000


def test_rise_note_says_when_the_held_out_estimate_keeps_the_whole_rise(tmp_path):
    paper, heldout, bootstrap = _inflation_inputs(tmp_path)
    frame = protocol_inflation_table(paper, bootstrap, heldout, ["catvae"])
    summary = rise_summary(frame)
    summary["held-out rise"] = summary["paper rise"] + 0.01
    summary["protocol share"] = 1 - summary["held-out rise"] / summary["paper rise"]
    assert rise_note(summary).count("the held-out estimate keeps all of it") == 2
    summary["protocol share"] = float("nan")
    assert rise_note(summary).count("no rise under the paper protocol") == 2


def test_protocol_inflation_needs_held_out_runs_of_every_paper_arm(tmp_path):
    paper, heldout, bootstrap = _inflation_inputs(tmp_path)
    extra = dict(paper[-1], arm="catvae@3000", target=3000, target_count=3000)
    with pytest.raises(CatvaeError, match="no held-out predictions"):
        protocol_inflation_table(paper + [extra], bootstrap, heldout, ["catvae"])
    no_base = [r for r in paper if r["arm"] != "none"]
    frame = protocol_inflation_table(no_base, bootstrap, heldout, ["catvae"])
    with pytest.raises(CatvaeError, match="real-only"):
        rise_summary(frame)
    assert frame["Paper Table 7"].iloc[0] == PAPER_TABLE7[("catvae", 0)]  # without `none`, balance leads


@pytest.mark.parametrize("n, fraction, n_score", [(5, 0.2, 1), (10, 0.2, 2), (9, 0.5, 4), (3, 0.9, 2)])
def test_keras_validation_split_scores_the_floor_of_the_fraction(n, fraction, n_score):
    fit_idx, score_idx = keras_validation_split(n, 42, fraction)
    assert len(score_idx) == n_score and sorted([*fit_idx, *score_idx]) == list(range(n))


@pytest.mark.parametrize("n, fraction, message", [(4, 0.2, "cannot split 4 pooled images 80%/20%"),
                                                  (5, 1.0, "cannot split 5 pooled images 0%/100%")])
def test_keras_validation_split_refuses_an_empty_side(n, fraction, message):
    with pytest.raises(CatvaeError, match=f"^paper protocol: {message}$"):
        keras_validation_split(n, 42, fraction)
