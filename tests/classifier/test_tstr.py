"""Train on synthetic, test on real: synthetic images only in training, real validation and test, the score recorded."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from classifier.test_arms import CLASSES, LAYOUT, make_dataset

from catvae.classifier.tstr import run_tstr, training_table
from catvae.cli import main
from catvae.data.images import read_manifest
from catvae.errors import CatvaeError
from catvae.report.statistics import SubjectBootstrap, tstr_note
from catvae.report.tables import generator_quality_table, load_records

OPTIONS = {"image_size": 32, "channels": 1, "epochs": 6, "batch_size": 4, "lr": 0.001}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tstr"), size=32, n_synthetic=12)


@pytest.fixture(scope="module")
def many_subjects(tmp_path_factory):
    """Eight test subjects (two slices each) per class: enough for the subject bootstrap to say something."""
    layout = {**LAYOUT, "test": {"NoTumor": 16, "Tumor": 16}}
    return make_dataset(tmp_path_factory.mktemp("tstr_subjects"), size=32, layout=layout, n_synthetic=12)


def _run(dataset, out, manifests=None, **kwargs):
    split_csv, own = dataset
    args = dict(model="vae", classes=CLASSES, tstr_images=10, targets=[8], options=OPTIONS, seed=0,
                config_name="test", fold=1, replicate=2, device="cpu")
    return run_tstr(split_csv, manifests or own, out, out.with_name(f"{out.stem}_predictions.csv"),
                    **{**args, **kwargs})


def _manifests(tmp_path, sources):
    """A copy of each class's synthetic manifest that lists another class's images (class -> source class)."""
    out = {}
    for cls, source in sources.items():
        frame = read_manifest(source).assign(**{"class": cls})
        frame["path"] = frame.pop("abspath")  # absolute: the copy lives elsewhere
        frame.to_csv(tmp_path / f"{cls}.csv", index=False)
        out[cls] = str(tmp_path / f"{cls}.csv")
    return out


def _bootstrap(results, tmp_path):
    records = load_records(tmp_path / f"{r}.json" for r in results)
    return SubjectBootstrap.from_records(records, [tmp_path / f"{r}_predictions.csv" for r in results],
                                         arm_key="model", seed_key="replicate", resamples=2000, seed=0)


def test_tstr_trains_on_synthetic_images_and_scores_the_real_test_set(dataset, tmp_path):
    result = _run(dataset, tmp_path / "tstr.json", select="last")
    on_disk = json.loads((tmp_path / "tstr.json").read_text())
    assert on_disk == result
    assert result["n_per_class"] == 10 and result["n_train"] == 20 and result["n_test"] == 6
    assert result["fold"] == 1 and result["replicate"] == 2 and result["protocol"] == "train-synthetic-test-real"
    assert 0 <= result["balanced_accuracy"] <= 1
    assert result["select"] == "last" and result["selected_epoch"] == result["epochs_run"] == OPTIONS["epochs"]
    assert len(result["val_balanced_accuracy_by_epoch"]) == OPTIONS["epochs"]
    # the synthetic images of this fixture carry their class (Tumor: a bright square): well above chance
    assert result["balanced_accuracy"] > 0.5


def test_tstr_count_defaults_to_the_largest_target(dataset, tmp_path):
    assert _run(dataset, tmp_path / "a.json", tstr_images="largest", targets=[5, 9])["n_per_class"] == 9
    # 'balance' = the majority class's real training count (6 Tumor images in the fixture)
    assert _run(dataset, tmp_path / "b.json", tstr_images="largest", targets=["balance"])["n_per_class"] == 6


def test_swapped_synthetic_labels_score_below_chance(dataset, tmp_path):
    """The score follows what the synthetic images show: a generator whose classes are swapped fails the real test."""
    _, manifests = dataset
    swapped = _manifests(tmp_path, {cls: manifests[other] for cls, other in zip(CLASSES, reversed(CLASSES))})
    result = _run(dataset, tmp_path / "swapped.json", manifests=swapped, select="last")
    assert result["balanced_accuracy"] < 0.5 and result["selected_epoch"] == OPTIONS["epochs"]


def test_tstr_best_val_scores_the_epoch_with_the_best_real_validation_score(dataset, tmp_path):
    """best_val (the default) scores the weights of the epoch the real validation curve picks, the arms' rule; the
    last epoch's training runs the same, so the two selections differ only in which weights are scored."""
    best = _run(dataset, tmp_path / "best.json")
    last = _run(dataset, tmp_path / "last.json", select="last")
    curve = best["val_balanced_accuracy_by_epoch"]
    assert curve == last["val_balanced_accuracy_by_epoch"]   # same seed, same training
    assert best["select"] == "best_val" and best["epochs_run"] == OPTIONS["epochs"]
    assert curve[best["selected_epoch"] - 1] == best["selected_val_balanced_accuracy"] == max(curve)
    if best["selected_epoch"] == OPTIONS["epochs"]:
        assert best["balanced_accuracy"] == last["balanced_accuracy"]


def test_tstr_runs_the_arms_fit_select_score_path_with_their_amp_dtype(dataset, tmp_path, monkeypatch):
    """TSTR trains, selects and scores through the arms' shared functions (`train_and_select`, `score_selected`), so
    on a GPU it runs under the AMP dtype `classifier.amp` resolves to, as an arm does. CUDA is mocked: the dtype is
    resolved for a compute-capability 9.0 GPU by the real rule and handed to this CPU run, where autocast is a no-op,
    so the run completes, every training and scoring step shows the dtype it received, and the numbers are those of
    the float32 run. What tstr.json holds is what the shared score path computed (no second balanced accuracy)."""
    import inspect

    import torch
    from sklearn.metrics import balanced_accuracy_score

    from catvae import precision
    from catvae.classifier import train, tstr

    plain = _run(dataset, tmp_path / "plain.json", options={**OPTIONS, "amp": True})  # a CPU: amp changes nothing

    resolved = []

    def amp_on_a_gpu(enabled, device, key="amp"):
        resolved.append((enabled, device.type, key))
        return precision.amp_dtype(enabled, torch.device("cuda", 0), key)

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (9, 0))
    monkeypatch.setattr(tstr, "resolve_amp_dtype", amp_on_a_gpu)
    seen, scored = {"fit": [], "predict": []}, []

    def spy(name, real):
        def call(*args, **kwargs):
            seen[name].append(inspect.signature(real).bind(*args, **kwargs).arguments.get("amp_dtype"))
            return real(*args, **kwargs)
        return call

    def keep(real):
        def call(*args, **kwargs):
            scored.append(real(*args, **kwargs))
            return scored[-1]
        return call

    monkeypatch.setattr(train, "fit", spy("fit", train.fit))
    monkeypatch.setattr(train, "predict", spy("predict", train.predict))
    monkeypatch.setattr(train, "score", keep(train.score))
    result = _run(dataset, tmp_path / "amp.json", options={**OPTIONS, "amp": True})

    assert resolved == [(True, "cpu", "classifier.amp")]
    assert seen["fit"] == [torch.bfloat16]
    # one validation pass per epoch inside fit, then the test pass: every one under the same dtype
    assert seen["predict"] == [torch.bfloat16] * (OPTIONS["epochs"] + 1)
    on_disk = json.loads((tmp_path / "amp.json").read_text())
    assert len(scored) == 1 and {k: on_disk[k] for k in scored[0]} == json.loads(json.dumps(scored[0]))
    predictions = pd.read_csv(tmp_path / "amp_predictions.csv")
    assert on_disk["balanced_accuracy"] == balanced_accuracy_score(predictions["true"], predictions["pred"])
    volatile = {"train_seconds"}
    assert {k: v for k, v in result.items() if k not in volatile} == {
        k: v for k, v in plain.items() if k not in volatile}
    assert (tmp_path / "amp_predictions.csv").read_bytes() == (tmp_path / "plain_predictions.csv").read_bytes()


def test_tstr_refuses_an_unknown_epoch_rule(dataset, tmp_path):
    with pytest.raises(CatvaeError, match="quality.tstr_select"):
        _run(dataset, tmp_path / "bad.json", select="best")
    assert not (tmp_path / "bad.json").exists()


def test_tstr_refuses_too_few_or_missing_synthetic_images(dataset, tmp_path):
    with pytest.raises(CatvaeError, match="has 12 rows but"):
        _run(dataset, tmp_path / "x.json", tstr_images=20)
    with pytest.raises(CatvaeError, match="missing"):
        _run(dataset, tmp_path / "y.json", manifests={"Tumor": dataset[1]["Tumor"]})
    with pytest.raises(CatvaeError, match="quality.tstr_images"):
        _run(dataset, tmp_path / "z.json", tstr_images=0)
    assert not (tmp_path / "x.json").exists()


def test_training_table_is_the_manifests_prefix_sized_from_the_real_training_split(dataset, tmp_path):
    """'largest' of [4, 'balance'] is the largest real *training* class (Tumor: 6 train images; 11 in the whole
    split), so TSTR trains on the first 6 rows of each class's manifest, classes in the given order."""
    split_csv, manifests = dataset
    split = read_manifest(split_csv)
    table, n = training_table(split, manifests, model="vae", classes=CLASSES, tstr_images="largest",
                              targets=[4, "balance"])
    assert n == 6 and list(table["class"]) == ["NoTumor"] * 6 + ["Tumor"] * 6
    assert table.index.equals(pd.RangeIndex(12))  # one row per image, as the loader indexes them
    for cls in CLASSES:
        head = read_manifest(manifests[cls])["abspath"].iloc[:6].tolist()
        assert table.loc[table["class"] == cls, "abspath"].tolist() == head
    assert set(table["source"]) == {"vae"} and set(table["subject"]) == {""}
    assert training_table(split, manifests, model="vae", classes=CLASSES, tstr_images=3, targets=[8])[1] == 3

    real = sorted(split.loc[split["partition"] == "val", "abspath"])  # 4 real images listed as synthetic
    leaky = read_manifest(manifests["Tumor"])
    leaky.loc[:3, "abspath"] = real
    leaky["path"] = leaky.pop("abspath")
    leaky.to_csv(tmp_path / "Tumor.csv", index=False)
    with pytest.raises(CatvaeError, match="^" + re.escape(f"TSTR of 'vae': real image(s) {real[:3]} are listed as "
                                                          "synthetic") + "$"):
        training_table(split, {**manifests, "Tumor": str(tmp_path / "Tumor.csv")}, model="vae", classes=CLASSES,
                       tstr_images=3, targets=[8])
    with pytest.raises(CatvaeError, match=re.escape("TSTR of 'vae' needs a synthetic manifest of every class; "
                                                    "missing ['NoTumor']")):
        training_table(split, {"Tumor": manifests["Tumor"]}, model="vae", classes=CLASSES, tstr_images=3,
                       targets=[8])


def test_tstr_predictions_feed_the_subject_bootstrap(many_subjects, tmp_path):
    """tstr_predictions.csv is an arm's predictions.csv: the bootstrap reads it (arm = model, seed = replicate) and
    its pooled point estimate of one run is the run's own score."""
    result = _run(many_subjects, tmp_path / "vae.json")
    predictions = pd.read_csv(tmp_path / "vae_predictions.csv", dtype={"subject": str})
    assert list(predictions.columns) == ["path", "subject", "true", "pred", "prob_NoTumor", "prob_Tumor"]
    assert len(predictions) == result["n_test"] == 32 and predictions["subject"].nunique() == 16
    split = pd.read_csv(many_subjects[0])
    assert set(predictions["path"]) == set(split.loc[split["partition"] == "test", "path"])
    boot = _bootstrap(["vae"], tmp_path)
    assert boot.arms == ["vae"] and boot.seeds() == [2] and boot.clusters[0][0] == 1  # replicate 2, fold 1
    interval = boot.interval("vae", "balanced_accuracy")
    assert interval.estimate == pytest.approx(result["balanced_accuracy"])
    assert boot.point("vae", "auroc") == pytest.approx(result["auroc"])
    # the fixture's synthetic images carry their class: the interval lies above chance
    assert interval.low > 0.5, interval
    frame = generator_quality_table(
        [{"model": "vae", "class": c, "ssim": 0.5, "psnr": 20, "mse": 0.01, "fid": None, "kid": None,
          "train_time_s": 1, "inference_ms_per_image": 1, "peak_memory_mb": 1, "device": "cpu", "fold": 1,
          "replicate": 2} for c in CLASSES],
        tstr=load_records([tmp_path / "vae.json"]), tstr_intervals=boot.intervals())
    assert frame.loc[0, "TSTR balanced accuracy"] == interval
    assert frame.loc[1, "TSTR AUROC"] == boot.interval("vae", "auroc")
    assert "16 test subjects" in tstr_note(boot) and "generator replicates 2" in tstr_note(boot)


def test_a_generator_without_class_signal_gets_a_balanced_accuracy_interval_at_chance(many_subjects, tmp_path):
    """Both classes' synthetic images are the same pictures: the CNN learns nothing of the classes, predicts one
    class for every real test image, and the balanced-accuracy interval (16 test subjects, two replicates pooled)
    holds chance.

    Balanced accuracy only: such a CNN's probabilities are near-constant, but their small variations still rank the
    test images by whatever feature its initial weights happen to weigh, so its AUROC can lie anywhere in [0, 1]
    with a narrow interval (near 0 or 1 for 7 of 8 seeds we tried on this fixture); the subject bootstrap holds
    test-subject sampling, not that training randomness (README, TSTR).
    """
    _, manifests = many_subjects
    mixed = pd.concat([read_manifest(manifests[c]) for c in CLASSES]).sample(frac=1, random_state=0)
    mixed["index"] = range(len(mixed))
    mixed["path"] = mixed.pop("abspath")
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    identical = _manifests(tmp_path, {cls: tmp_path / "mixed.csv" for cls in CLASSES})
    for replicate in (0, 1):
        _run(many_subjects, tmp_path / f"same{replicate}.json", manifests=identical, replicate=replicate,
             seed=replicate)
    boot = _bootstrap(["same0", "same1"], tmp_path)
    assert boot.seeds() == [0, 1]
    interval = boot.interval("vae", "balanced_accuracy")
    assert interval.contains(0.5) and interval.high - interval.low < 0.2, interval


def test_cli_writes_the_predictions_beside_the_json_unless_told(dataset, tmp_path):
    split_csv, manifests = dataset
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"device": "cpu", "quality": {"tstr_images": 10}, "synthesis": {"targets": [8]},
                                  "classifier": {"image_size": 32, "channels": 1, "epochs": 1, "batch_size": 4}}))
    synthetic = str(Path(manifests["Tumor"]).parent.parent)
    common = ["tstr", "--config", str(config), "--model", "vae", "--split", split_csv, "--synthetic", synthetic]
    assert main([*common, "--out", str(tmp_path / "a" / "tstr.json")]) == 0
    assert (tmp_path / "a" / "tstr_predictions.csv").is_file()
    assert main([*common, "--out", str(tmp_path / "b" / "tstr.json"), "--predictions", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == json.loads((tmp_path / "b" / "tstr.json").read_text())["n_test"]
    assert not (tmp_path / "b" / "tstr_predictions.csv").exists()
