"""End-to-end classifier runs on a tiny generated dataset: files, metric sanity, determinism, leakage guard."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
from test_arms import CLASSES, make_dataset

from catvae.classifier.arms import build_training_set
from catvae.classifier.cnn import build_cnn
from catvae.classifier.evaluate import check_no_leakage
from catvae.classifier.train import PAPER_PROTOCOL, run_arm
from catvae.data.images import read_manifest
from catvae.errors import CatvaeError
from catvae.models import count_parameters

OPTIONS = {"image_size": 32, "channels": 1, "epochs": 2, "batch_size": 4, "lr": 0.001}
FILES = ["checkpoint.pt", "history.csv", "predictions.csv", "metrics.json", "confusion.csv", "confusion.png"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), size=32)


def _run(dataset, out_dir, arm="vae@8", seed=0, **kwargs):
    split_csv, manifests = dataset
    return run_arm(split_csv, str(out_dir), arm=arm, seed=seed, classes=CLASSES, synthetic_manifests=manifests,
                   options=OPTIONS, config_name="test", device="cpu", threads=1, **kwargs)


def test_run_arm_writes_every_file_with_sane_metrics(dataset, tmp_path):
    metrics = _run(dataset, tmp_path, arm="classic@8", paper_protocol=True)
    for name in FILES + ["metrics_paper_protocol.json", "training_set.csv"]:
        assert (tmp_path / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["accuracy"] == metrics["accuracy"]
    assert on_disk["protocol"] == "held-out" and on_disk["method"] == "classic" and on_disk["target"] == 8
    assert on_disk["counts"]["NoTumor"] == {"total": 8, "real": 3, "synthetic": 5}
    assert on_disk["n_train"] == 16 and on_disk["n_test"] == 6 and on_disk["epochs"] == 2
    confusion = np.array(on_disk["confusion"])
    assert confusion.shape == (2, 2) and confusion.sum() == on_disk["n_test"]
    assert 0 <= on_disk["accuracy"] <= 1 and on_disk["loss"] >= 0
    for cls in CLASSES:
        per = on_disk["per_class"][cls]
        assert all(0 <= per[k] <= 1 for k in ("precision", "recall", "f1")) and per["support"] == 3

    csv = pd.read_csv(tmp_path / "confusion.csv")
    assert list(csv.columns[1:]) == CLASSES and csv.iloc[:, 1:].to_numpy().tolist() == on_disk["confusion"]
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    assert history["epoch"].tolist() == [1, 2]
    composition = pd.read_csv(tmp_path / "training_set.csv", keep_default_na=False)
    assert len(composition) == 16 and (composition["source"] == "classic").sum() == 7
    assert all((tmp_path / p).is_file() for p in composition["path"])  # relative to the CSV's folder
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert list(predictions.columns) == ["path", "subject", "true", "pred", "prob_NoTumor", "prob_Tumor"]
    assert len(predictions) == 6
    np.testing.assert_allclose(predictions[["prob_NoTumor", "prob_Tumor"]].sum(axis=1), 1.0, atol=1e-6)
    assert (predictions["true"] == predictions["pred"]).mean() == pytest.approx(on_disk["accuracy"])
    # the imbalance metrics in metrics.json are scikit-learn's on the predictions written beside them
    assert on_disk["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(predictions["true"],
                                                                                 predictions["pred"]))
    assert on_disk["macro_f1"] == pytest.approx(f1_score(predictions["true"], predictions["pred"],
                                                         labels=CLASSES, average="macro", zero_division=0))
    assert on_disk["auroc"] == pytest.approx(roc_auc_score(predictions["true"] == CLASSES[1],
                                                           predictions[f"prob_{CLASSES[1]}"]))
    assert on_disk["auroc_note"] is None

    paper = json.loads((tmp_path / "metrics_paper_protocol.json").read_text())
    assert paper["protocol"] == PAPER_PROTOCOL == "paper-mixed-80/20" and "NOT a held-out" in paper["note"]
    assert set(on_disk) - {"train_seconds", "epoch_images_per_s", "parameters", "paper_protocol_accuracy"} <= set(paper)
    assert paper["n_train"] + paper["n_test"] == 16
    assert np.array(paper["confusion"]).sum() == paper["n_test"]


def test_same_seed_gives_the_same_metrics(dataset, tmp_path):
    a = _run(dataset, tmp_path / "a", seed=3)
    b = _run(dataset, tmp_path / "b", seed=3)
    keys = ("accuracy", "loss", "confusion", "per_class", "counts")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    ha = pd.read_csv(tmp_path / "a" / "history.csv").drop(columns="seconds")
    hb = pd.read_csv(tmp_path / "b" / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(ha, hb)


def test_leakage_guard_rejects_a_test_subject_seen_in_training(dataset, tmp_path):
    split_csv, manifests = dataset
    split = pd.read_csv(split_csv)
    train_subject = split.loc[split["partition"] == "train", "subject"].iloc[0]
    split.loc[split.index[split["partition"] == "test"][0], "subject"] = train_subject
    split["path"] = read_manifest(split_csv)["abspath"]  # the copy lives elsewhere: keep paths valid
    leaky = tmp_path / "split.csv"
    split.to_csv(leaky, index=False)
    with pytest.raises(CatvaeError, match="leakage: test subject"):
        run_arm(str(leaky), str(tmp_path / "out"), arm="none", seed=0, classes=CLASSES, synthetic_manifests={},
                options=OPTIONS, config_name="test", device="cpu")
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_leakage_guard_rejects_a_synthetic_image_in_the_test_set(dataset):
    split_csv, manifests = dataset
    split = read_manifest(split_csv)
    training = build_training_set(split, "vae@8", CLASSES, manifests, seed=0)
    test = split[split["partition"] == "test"].copy()
    check_no_leakage(training, test, manifests)  # the clean split passes
    test.loc[test.index[0], "abspath"] = read_manifest(manifests["Tumor"])["abspath"].iloc[7]
    with pytest.raises(CatvaeError, match="synthetic manifest"):
        check_no_leakage(training, test, manifests)


def test_missing_option_names_the_config_key(dataset, tmp_path):
    split_csv, manifests = dataset
    with pytest.raises(CatvaeError, match="classifier.lr"):
        run_arm(split_csv, str(tmp_path), arm="none", seed=0, classes=CLASSES, synthetic_manifests=manifests,
                options={k: v for k, v in OPTIONS.items() if k != "lr"}, config_name="test")


def test_three_classes_use_a_softmax_head_end_to_end(tmp_path):
    layout = {p: {"NoTumor": n, "Tumor": n, "Edema": n} for p, n in (("train", 4), ("val", 2), ("test", 2))}
    split_csv, manifests = make_dataset(tmp_path / "data", size=32, layout=layout, n_synthetic=3)
    classes = ["NoTumor", "Tumor", "Edema"]
    metrics = run_arm(split_csv, str(tmp_path / "out"), arm="vae@6", seed=0, classes=classes,
                      synthetic_manifests=manifests, options=OPTIONS, config_name="test", device="cpu")
    # two more output units (128 weights + 1 bias each) than the binary head
    assert metrics["parameters"] == count_parameters(build_cnn(32, 1, 2)) + 2 * 129
    assert np.array(metrics["confusion"]).shape == (3, 3) and np.array(metrics["confusion"]).sum() == 6
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    probs = predictions[[f"prob_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert metrics["counts"]["Edema"] == {"total": 6, "real": 4, "synthetic": 2}
