"""End-to-end classifier runs on a tiny generated dataset: files, metric sanity, determinism, leakage guard."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
import torch
from helpers_cuda import forbid_enabled_autocast, requires_cuda
from classifier.test_arms import CLASSES, make_dataset
from torch.utils.data import DataLoader, TensorDataset

from catvae.classifier.arms import TrainingSet, build_training_set
from catvae.optim import build_adam
from catvae.classifier.cnn import build_cnn, loss_function, loss_targets
from catvae.classifier.evaluate import check_no_leakage, predict
from catvae.classifier.train import (
    ClassifierFiles,
    arm_class_weights,
    check_options,
    epoch_batches,
    fit,
    run_arm,
    select_epoch,
    selection_record,
)
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
    metrics = _run(dataset, tmp_path, arm="classic@8")
    for name in FILES + ["training_set.csv"]:
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
    assert list(history.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc",
                                     "seconds"]
    assert history["epoch"].tolist() == [1, 2]
    assert on_disk["select"] == "best_val" and on_disk["selected_epoch"] == select_epoch(history, "best_val")
    assert on_disk["epochs_run"] == 2 and on_disk["fold"] == 0 and on_disk["class_weights"] is None
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


def _training_set(real: list[tuple[str, str]], extra: list[tuple[str, str]]) -> TrainingSet:
    """A training set of (subject, abspath) real rows and (subject, abspath) extra rows (subject "" = synthetic)."""
    real_frame = pd.DataFrame({"class": "Tumor", "abspath": [p for _, p in real], "subject": [s for s, _ in real]})
    extra_frame = pd.DataFrame({"class": "Tumor", "abspath": [p for _, p in extra], "source": "x", "origin": "",
                                "subject": [s for s, _ in extra], "recipe": ""})
    return TrainingSet("x@4", "x", 4, 4, CLASSES, real_frame, extra_frame)


def test_leakage_guard_compares_subjects_images_and_every_synthetic_manifest(tmp_path):
    """Each leak is named with the offending items and their count; subjects left empty (synthetic images) or
    unreadable ("nan") match nothing; a class whose manifest was never written is skipped."""
    training = _training_set([("s1", "/d/a.png"), ("s2", "/d/b.png")], [("", "/syn/1.png"), ("s1", "/d/a.png")])
    test = pd.DataFrame({"subject": ["t1", "t2", "", "nan"], "abspath": ["/d/t1.png", "/d/t2.png", "/d/t3.png",
                                                                         "/d/t4.png"]})
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"index": [0], "class": ["Tumor"], "model": ["vae"], "path": ["/syn/1.png"]}).to_csv(manifest,
                                                                                                      index=False)
    check_no_leakage(training, test, {"Tumor": str(manifest), "NoTumor": str(tmp_path / "never_written.csv")})
    with_empty_subjects = _training_set([("", "/d/a.png"), ("nan", "/d/b.png")], [])
    check_no_leakage(with_empty_subjects, test, {})  # "" and "nan" in both sets are not a shared subject

    shared = test.assign(subject=["s2", "s1", "t3", "t4"])
    with pytest.raises(CatvaeError, match=re.escape("leakage: test subject(s) ['s1', 's2'] (of 2) also appear")):
        check_no_leakage(training, shared, {})
    reused = test.assign(abspath=["/d/t1.png", "/d/b.png", "/d/a.png", "/d/t4.png"])
    with pytest.raises(CatvaeError, match=re.escape("leakage: test image(s) ['/d/a.png', '/d/b.png'] (of 2) are in "
                                                    "the training set")):
        check_no_leakage(training, reused, {})
    # many leaks: the message lists the first 5 subjects / 3 images (sorted) and says how many there are
    many = _training_set([(f"s{i}", f"/d/{i}.png") for i in range(7)], [])
    with pytest.raises(CatvaeError, match="^" + re.escape("leakage: test subject(s) ['s0', 's1', 's2', 's3', 's4'] "
                                                          "(of 6) also appear in the training set") + "$"):
        check_no_leakage(many, pd.DataFrame({"subject": [f"s{i}" for i in range(6)], "abspath": "/t.png"}), {})
    with pytest.raises(CatvaeError, match="^" + re.escape("leakage: test image(s) ['/d/0.png', '/d/1.png', "
                                                          "'/d/2.png'] (of 4) are in the training set") + "$"):
        check_no_leakage(many, pd.DataFrame({"subject": "t", "abspath": [f"/d/{i}.png" for i in range(4)]}), {})
    synthetic = test.assign(abspath=["/d/t1.png", str((tmp_path / "syn.png").resolve()), "/d/t3.png", "/d/t4.png"])
    pd.DataFrame({"index": [0], "class": ["Tumor"], "model": ["vae"], "path": ["syn.png"]}).to_csv(manifest,
                                                                                                   index=False)
    with pytest.raises(CatvaeError, match=re.escape(f"leakage: test image(s) ['{(tmp_path / 'syn.png').resolve()}'] "
                                                    f"are listed in synthetic manifest {manifest}")):
        check_no_leakage(training, synthetic, {"NoTumor": str(tmp_path / "never_written.csv"),
                                               "Tumor": str(manifest)})


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


# -- device-resident batching: the same numbers as the DataLoader loop it replaced ----------------------------------


def _dataloader_fit(model, train, val, n_classes, options, device, seed):
    """The classifier's training loop before the batches were gathered on the device (kept as the reference):
    a DataLoader collating uint8 batches on the host, one copy and four host reads per step."""
    loader = DataLoader(TensorDataset(*train), batch_size=options["batch_size"], shuffle=True,
                        generator=torch.Generator().manual_seed(int(seed)))
    optimiser = build_adam(model.parameters(), lr=options["lr"])
    criterion = loss_function(n_classes)
    rows = []
    for epoch in range(1, options["epochs"] + 1):
        model.train()
        total_loss, correct = 0.0, 0
        for xb, yb in loader:
            x = xb.to(device).float().div_(255.0)
            y = yb.to(device)
            optimiser.zero_grad(set_to_none=True)
            logits = model(x)
            loss = criterion(logits, loss_targets(y, n_classes))
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * len(x)
            pred = (logits.reshape(-1) > 0).long() if n_classes == 2 else logits.argmax(dim=1)
            correct += int((pred == y).sum())
        model.eval()
        with torch.no_grad():
            val_total, val_probs = 0.0, []
            for start in range(0, len(val[0]), options["batch_size"]):
                xv = val[0][start:start + options["batch_size"]].to(device).float().div_(255.0)
                yv = val[1][start:start + options["batch_size"]].to(device)
                logits = model(xv)
                val_total += float(criterion(logits, loss_targets(yv, n_classes))) * len(xv)
                val_probs.append(logits)
        n = len(train[1])
        rows.append({"epoch": epoch, "train_loss": total_loss / n, "train_acc": correct / n,
                     "val_loss": val_total / len(val[0])})
    return pd.DataFrame(rows)


def test_epoch_batches_are_the_dataloader_order():
    n, batch_size, seed = 13, 4, 7
    loader = DataLoader(TensorDataset(torch.arange(n)), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    ours = epoch_batches(n, batch_size, seed)
    for _ in range(4):
        expected = [b[0] for b in loader]
        got = next(ours)
        assert [len(b) for b in got] == [4, 4, 4, 1]
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_fit_gives_the_numbers_of_the_dataloader_loop_it_replaced(n_classes):
    """On a CPU the device-resident batching changes nothing: the same history and weights, bitwise."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (23, 1, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(23) % n_classes
    val = (images[:7].flip(-1), labels[:7])
    options = {"image_size": 32, "channels": 1, "epochs": 3, "batch_size": 5, "lr": 1e-3}
    runs = []
    for method in ("new", "reference"):
        torch.manual_seed(4)
        model = build_cnn(32, 1, n_classes)
        if method == "new":
            history, _ = fit(model, (images, labels), val, n_classes, options, torch.device("cpu"), seed=9, label="t")
        else:
            history = _dataloader_fit(model, (images, labels), val, n_classes, options, torch.device("cpu"), seed=9)
        runs.append((history, model.state_dict()))
    (new, new_state), (reference, reference_state) = runs
    for column in ("epoch", "train_loss", "train_acc", "val_loss"):
        assert new[column].tolist() == reference[column].tolist(), column
    assert all(torch.equal(new_state[k], reference_state[k]) for k in reference_state)


def test_predict_reads_back_once_and_matches_the_per_batch_sum():
    torch.manual_seed(0)
    model = build_cnn(32, 1, 3)
    images = torch.randint(0, 256, (11, 1, 32, 32), dtype=torch.uint8)
    labels = torch.arange(11) % 3
    probs, loss = predict(model, images, labels, 3, 4, torch.device("cpu"))
    criterion, total = loss_function(3), 0.0
    with torch.no_grad():
        logits = [model(images[s:s + 4].float().div_(255.0)) for s in range(0, 11, 4)]
        for s, chunk in zip(range(0, 11, 4), logits):
            total += float(criterion(chunk, labels[s:s + 4])) * len(chunk)
    assert loss == total / 11  # the float64 device sum equals the Python float sum, bitwise
    np.testing.assert_array_equal(probs, torch.softmax(torch.cat(logits), dim=1).numpy())


def test_amp_on_a_cpu_changes_nothing_and_is_recorded(dataset, tmp_path, monkeypatch):
    forbid_enabled_autocast(monkeypatch)  # the explicit attention may switch autocast off; nothing may switch it on
    split_csv, manifests = dataset
    results = {}
    for amp in (True, False):
        results[amp] = run_arm(split_csv, str(tmp_path / str(amp)), arm="none", seed=1, classes=CLASSES,
                               synthetic_manifests=manifests, options={**OPTIONS, "amp": amp}, config_name="test",
                               device="cpu")
    keys = ("accuracy", "loss", "confusion", "per_class")
    assert {k: results[True][k] for k in keys} == {k: results[False][k] for k in keys}
    assert results[True]["amp_dtype"] is None and results[True]["device_name"] == "cpu"
    with pytest.raises(CatvaeError, match="classifier.amp"):
        check_options({**OPTIONS, "amp": "yes"})
    assert check_options(OPTIONS)["amp"] is False  # optional, off by default


@requires_cuda
@pytest.mark.parametrize("amp", [False, True])
def test_classifier_on_a_real_gpu_is_repeatable(dataset, tmp_path, amp):
    split_csv, manifests = dataset
    runs = [run_arm(split_csv, str(tmp_path / name), arm="vae@8", seed=2, classes=CLASSES,
                    synthetic_manifests=manifests, options={**OPTIONS, "amp": amp}, config_name="test", device="cuda")
            for name in ("a", "b")]
    assert runs[0]["device_name"] == torch.cuda.get_device_name()
    assert (runs[0]["amp_dtype"] is not None) == amp
    keys = ("accuracy", "loss", "confusion")
    assert {k: runs[0][k] for k in keys} == {k: runs[1][k] for k in keys}


# ------------------------------------------------------------------------------- model selection


def test_select_epoch_prefers_balanced_accuracy_then_lower_loss_then_earlier():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4, 5], "val_balanced_acc": [0.5, 0.8, 0.8, 0.7, 0.8],
                            "val_loss": [0.9, 0.4, 0.3, 0.1, 0.3]})
    assert select_epoch(history, "best_val") == 3
    assert select_epoch(history, "last") == 5
    with pytest.raises(CatvaeError, match="classifier.select"):
        select_epoch(history, "best_test")


@pytest.mark.parametrize("acc, loss, expected", [
    ([0.7, 0.7, 0.7], [0.5, 0.5, 0.5], 1),  # a full tie: the earliest epoch
    ([0.6, 0.7, 0.7, 0.7], [0.2, 0.5, 0.4, 0.4], 3),  # accuracy ties, then loss ties: the earlier of 3 and 4
    ([0.9, 0.7, 0.9], [0.6, 0.1, 0.5], 3),  # the best accuracy wins over a lower loss elsewhere
    ([0.5, 0.5], [0.2, 0.3], 1),  # a tie at chance: the lower loss
])
def test_select_epoch_breaks_ties_by_loss_then_epoch_whatever_the_row_order(acc, loss, expected):
    history = pd.DataFrame({"epoch": range(1, len(acc) + 1), "val_balanced_acc": acc, "val_loss": loss})
    assert select_epoch(history, "best_val") == expected
    assert select_epoch(history.iloc[::-1].reset_index(drop=True), "best_val") == expected
    assert select_epoch(history, "last") == len(acc)
    record = selection_record(history, expected, "best_val", 2)
    assert record == {"select": "best_val", "patience": 2, "selected_epoch": expected, "epochs_run": len(acc),
                      "selected_val_balanced_accuracy": acc[expected - 1], "selected_val_loss": loss[expected - 1]}
    with pytest.raises(CatvaeError, match="^no epochs to select from$"):
        select_epoch(history.iloc[:0], "best_val")


def _relabelled_test(dataset, root):
    """The same split with every test image relabelled Tumor (absolute paths, so the copy's paths stay valid)."""
    split = read_manifest(dataset[0])
    split.loc[split["partition"] == "test", "class"] = "Tumor"
    split["path"] = split.pop("abspath")
    root.mkdir(parents=True)
    split.to_csv(root / "split.csv", index=False)
    return str(root / "split.csv")


def test_test_labels_never_influence_the_selected_epoch(dataset, tmp_path):
    options = {**OPTIONS, "epochs": 4, "select": "best_val"}
    split_csv, manifests = dataset
    runs = []
    for name, csv in (("a", split_csv), ("b", _relabelled_test(dataset, tmp_path / "flipped"))):
        runs.append(run_arm(csv, str(tmp_path / name), arm="none", seed=1, classes=CLASSES, synthetic_manifests={},
                            options=options, config_name="test", device="cpu"))
    a, b = runs
    assert a["selected_epoch"] == b["selected_epoch"]
    ha = pd.read_csv(tmp_path / "a" / "history.csv").drop(columns="seconds")
    hb = pd.read_csv(tmp_path / "b" / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(ha, hb)  # training and validation saw nothing of the test labels
    assert a["per_class"]["Tumor"]["support"] == 3 and b["per_class"]["Tumor"]["support"] == 6  # scoring saw it
    assert a["selected_epoch"] == select_epoch(ha, "best_val")
    assert a["selected_val_balanced_accuracy"] == pytest.approx(ha["val_balanced_acc"].max())


def test_the_checkpoint_holds_the_selected_epochs_weights(dataset, tmp_path):
    import torch

    from catvae.classifier.evaluate import predict
    from catvae.classifier.train import load_table

    split_csv, _ = dataset
    metrics = run_arm(split_csv, str(tmp_path), arm="none", seed=2, classes=CLASSES, synthetic_manifests={},
                      options={**OPTIONS, "epochs": 4}, config_name="test", device="cpu")
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] == metrics["selected_epoch"]
    model = build_cnn(32, 1, 2)
    model.load_state_dict(saved["model"])
    split = read_manifest(split_csv)
    test = split[split["partition"] == "test"].reset_index(drop=True)
    probs, loss = predict(model, *load_table(test, CLASSES, 32, 1), 2, 4, torch.device("cpu"))
    assert loss == pytest.approx(metrics["loss"])
    val = split[split["partition"] == "val"].reset_index(drop=True)
    _, val_loss = predict(model, *load_table(val, CLASSES, 32, 1), 2, 4, torch.device("cpu"))
    assert val_loss == pytest.approx(metrics["selected_val_loss"])


def test_early_stopping_stops_after_patience_epochs_without_a_better_one(dataset, tmp_path, monkeypatch):
    import catvae.classifier.train as train

    scripted = iter([0.5, 0.7, 0.6, 0.6, 0.9, 0.9, 0.9, 0.9])  # validation balanced accuracy, epoch by epoch
    monkeypatch.setattr(train, "balanced_accuracy_score", lambda true, pred: next(scripted))
    split_csv, _ = dataset
    metrics = run_arm(split_csv, str(tmp_path), arm="none", seed=0, classes=CLASSES, synthetic_manifests={},
                      options={**OPTIONS, "epochs": 8, "patience": 2}, config_name="test", device="cpu")
    # epoch 2 is the best; epochs 3 and 4 are not better, so training stops after epoch 4 (never reaching 0.9)
    assert metrics["selected_epoch"] == 2 and metrics["epochs_run"] == 4
    assert metrics["selected_val_balanced_accuracy"] == 0.7
    assert len(pd.read_csv(tmp_path / "history.csv")) == 4


@pytest.mark.parametrize("options, key", [
    ({"select": "best_test"}, "classifier.select"),
    ({"patience": 0}, "classifier.patience"),
    ({"select": "last", "patience": 3}, "classifier.patience"),
])
def test_bad_selection_options_name_the_key(dataset, tmp_path, options, key):
    with pytest.raises(CatvaeError, match=key.replace(".", r"\.")):
        run_arm(dataset[0], str(tmp_path), arm="none", seed=0, classes=CLASSES, synthetic_manifests={},
                options={**OPTIONS, **options}, config_name="test", device="cpu")


# ------------------------------------------------------------------------------- weighted-loss arm


def test_weighted_arm_trains_on_real_images_with_inverse_frequency_weights(dataset, tmp_path):
    split_csv, _ = dataset
    metrics = run_arm(split_csv, str(tmp_path), arm="weighted", seed=0, classes=CLASSES, synthetic_manifests={},
                      options=OPTIONS, config_name="test", device="cpu")
    # LAYOUT: 3 NoTumor and 6 Tumor training images -> n / (2 n_c) = 1.5 and 0.75
    assert metrics["class_weights"] == pytest.approx([1.5, 0.75])
    assert metrics["method"] == "weighted" and metrics["target"] is None
    assert metrics["counts"] == {"NoTumor": {"total": 3, "real": 3, "synthetic": 0},
                                 "Tumor": {"total": 6, "real": 6, "synthetic": 0}}


def test_class_weighted_losses_weigh_each_class():
    import torch

    from catvae.classifier.cnn import inverse_frequency_weights, loss_function, loss_targets

    labels = torch.tensor([0, 1, 1, 1])
    weights = inverse_frequency_weights(labels.tolist(), 2)
    assert weights == pytest.approx([2.0, 2 / 3])
    logits = torch.tensor([[0.3], [-0.2], [1.0], [0.5]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, loss_targets(labels, 2), reduction="none")
    # pos_weight = w1 / w0 scales the positive terms only: the classes' ratio is the inverse frequencies'
    expected = (bce.reshape(-1) * torch.tensor([1.0, 1 / 3, 1 / 3, 1 / 3])).mean()
    assert float(loss_function(2, weights)(logits, loss_targets(labels, 2))) == pytest.approx(float(expected))
    three = torch.tensor([0, 1, 1, 2, 2, 2])
    w3 = inverse_frequency_weights(three.tolist(), 3)
    assert w3 == pytest.approx([2.0, 1.0, 2 / 3])
    logits3 = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    ce = torch.nn.functional.cross_entropy(logits3, three, weight=torch.tensor(w3, dtype=torch.float32))
    assert float(loss_function(3, w3)(logits3, three)) == pytest.approx(float(ce))
    with pytest.raises(CatvaeError, match="no training images"):
        inverse_frequency_weights([0, 0], 2)


@pytest.mark.parametrize("method", ["weighted", "none", "vae", "oversample", "classic"])
def test_only_the_weighted_arm_weighs_its_loss_by_its_own_training_labels(method):
    import torch

    labels = torch.tensor([0, 1, 1, 1, 2, 2])
    expected = [2.0, 2 / 3, 1.0] if method == "weighted" else None
    assert arm_class_weights(method, labels, 3) == (pytest.approx(expected) if expected else None)
def test_outputs_can_be_named_one_by_one(dataset, tmp_path):
    split_csv, _ = dataset
    names = {"metrics": "m.json", "history": "h.csv", "predictions": "p.csv", "confusion": "c.csv",
             "confusion_png": "c.png", "checkpoint": "w.pt", "training_set": "t.csv"}
    files = ClassifierFiles.of({k: tmp_path / "x" / v for k, v in names.items()})
    run_arm(split_csv, files, arm="none", seed=0, classes=CLASSES, synthetic_manifests={}, options=OPTIONS,
            config_name="test", device="cpu", fold=3)
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == sorted(names.values())
    assert json.loads((tmp_path / "x" / "m.json").read_text())["fold"] == 3
    with pytest.raises(CatvaeError, match="unknown ClassifierFiles output"):
        ClassifierFiles.of({**names, "extra": "e.json"})
