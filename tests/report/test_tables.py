"""Tables: exact renderings of tiny known inputs, mean ± std over seeds, row order, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from catvae.errors import CatvaeError
from catvae.report.statistics import Interval
from catvae.report.tables import (
    CLASSIFICATION_COLUMNS, QUALITY_COLUMNS, MeanStd, PValue, classification_table, generator_quality_table,
    load_records, write_table,
)


def metrics_record(arm, method, target, seed, *, f1=(0.4, 0.8), accuracy=0.8, loss=0.5, protocol="held-out"):
    """A metrics.json record as the classifier stage writes it (two classes, training counts)."""
    return {
        "arm": arm, "method": method, "target": target, "seed": seed, "protocol": protocol,
        "classes": ["NoTumor", "Tumor"],
        "counts": {"NoTumor": {"total": target or 20, "real": 20, "synthetic": (target or 20) - 20},
                   "Tumor": {"total": 60, "real": 60, "synthetic": 0}},
        "per_class": {"NoTumor": {"precision": 0.5, "recall": 0.25, "f1": f1[0], "support": 8},
                      "Tumor": {"precision": 0.75, "recall": 1.0, "f1": f1[1], "support": 24}},
        "accuracy": accuracy, "loss": loss, "confusion": [[2, 6], [0, 24]], "n_test": 32, "n_train": 80,
        "balanced_accuracy": 0.625, "macro_f1": (f1[0] + f1[1]) / 2, "auroc": 0.9, "auroc_note": None,
        "config_name": "tiny", "device": "cpu", "epochs": 2,
    }


def quality_record(model, cls, **overrides):
    record = {
        "model": model, "class": cls, "ssim": 0.61234, "psnr": 21.3456, "mse": 0.00734, "n_recon": 40,
        "fid": 85.2, "kid": 0.0123, "kid_std": 0.0021, "n_fid_real": 40, "n_fid_fake": 200, "fid_note": None,
        "train_time_s": 123.4, "inference_ms_per_image": 1.234, "peak_memory_mb": 512.0, "device": "cpu",
        "memorisation": {"median_nn_ssim": 0.55, "near_copy_share": 0.0, "n": 200},
        "attention": "fused", "context": "mean", "config_name": "tiny", "seed": 0,
        "recon_path": "z", "ssim_own_features": None, "psnr_own_features": None, "mse_own_features": None,
        "sampling": {"mode": "prior"}, "diversity_ms_ssim": 0.3456, "diversity_ms_ssim_real": 0.4123,
    }
    record.update(overrides)
    return record


def test_classification_markdown_and_csv_exact(tmp_path):
    frame = classification_table([metrics_record("none", "none", None, 0, f1=(0.3333, 0.8571),
                                                 accuracy=0.8125, loss=0.45)])
    paths = write_table(frame, tmp_path / "classification", caption="Test", config_name="tiny", seeds=[0])
    assert [p.name for p in paths] == ["classification.csv", "classification.md", "classification.tex"]
    assert (tmp_path / "classification.md").read_text() == (
        "Table: Test (config `tiny`, seed 0).\n"
        "\n"
        "| Method           |   Target | Class   |   Total |   Real |   Synthetic |   Precision |   Recall |"
        "    F1 |   Accuracy |   Loss |   Balanced accuracy |   Macro-F1 |   AUROC | Seeds   |\n"
        "|:-----------------|---------:|:--------|--------:|-------:|------------:|------------:|---------:|"
        "------:|-----------:|-------:|--------------------:|-----------:|--------:|:--------|\n"
        "| None (real only) |        - | NoTumor |      20 |     20 |           0 |       0.500 |    0.250 |"
        " 0.333 |      0.812 |  0.450 |               0.625 |      0.595 |   0.900 | 0       |\n"
        "| None (real only) |        - | Tumor   |      60 |     60 |           0 |       0.750 |    1.000 |"
        " 0.857 |      0.812 |  0.450 |               0.625 |      0.595 |   0.900 | 0       |\n"
    )
    assert (tmp_path / "classification.csv").read_text() == (
        "Method,Target,Class,Total,Real,Synthetic,Precision,Precision std,Recall,Recall std,F1,F1 std,"
        "Accuracy,Accuracy std,Loss,Loss std,Balanced accuracy,Balanced accuracy std,Macro-F1,Macro-F1 std,"
        "AUROC,AUROC std,Seeds,config,seeds\n"
        "None (real only),,NoTumor,20,20,0,0.5,,0.25,,0.3333,,0.8125,,0.45,,0.625,,0.5952,,0.9,,0,tiny,0\n"
        "None (real only),,Tumor,60,60,0,0.75,,1.0,,0.8571,,0.8125,,0.45,,0.625,,0.5952,,0.9,,0,tiny,0\n"
    )
    tex = (tmp_path / "classification.tex").read_text()
    assert tex.startswith("% Test; config tiny, seed 0\n")
    assert r"\caption{Test (config tiny, seed 0).}" in tex
    assert (r"None (real only) & - & NoTumor & 20 & 20 & 0 & 0.500 & 0.250 & 0.333 & 0.812 & 0.450 & 0.625 & 0.595"
            r" & 0.900 & 0 \\") in tex


def test_mean_std_over_two_seeds(tmp_path):
    records = [metrics_record("vae@60", "vae", 60, 0, f1=(0.5, 0.8), accuracy=0.5, loss=0.25),
               metrics_record("vae@60", "vae", 60, 1, f1=(0.75, 0.9), accuracy=0.75, loss=0.75)]
    frame = classification_table(records)
    assert list(frame.columns) == list(CLASSIFICATION_COLUMNS)
    f1 = frame.loc[frame["Class"] == "NoTumor", "F1"].item()
    assert isinstance(f1, MeanStd) and f1.n == 2
    assert f1.mean == pytest.approx(0.625)
    assert f1.std == pytest.approx(np.std([0.5, 0.75], ddof=1))  # sample std over seeds
    assert frame["Seeds"].tolist() == ["0, 1", "0, 1"]

    write_table(frame, tmp_path / "c", caption="Two seeds", config_name="tiny", seeds=[0, 1])
    md = (tmp_path / "c.md").read_text()
    assert md.startswith("Table: Two seeds (config `tiny`, seeds 0, 1).")
    # F1 NoTumor, accuracy, loss, then balanced accuracy, macro-F1, AUROC over seeds (no intervals given)
    assert ("| 0.625 ± 0.177 | 0.625 ± 0.177 | 0.500 ± 0.354 |       0.625 ± 0.000 | 0.738 ± 0.124 |"
            " 0.900 ± 0.000 | 0, 1    |") in md
    assert r"0.625 $\pm$ 0.177" in (tmp_path / "c.tex").read_text()
    csv = pd.read_csv(tmp_path / "c.csv")
    row = csv[csv["Class"] == "NoTumor"].iloc[0]
    assert row["F1"] == pytest.approx(0.625)
    assert row["F1 std"] == pytest.approx(0.1767767, abs=1e-6)
    assert row["Loss"] == pytest.approx(0.5) and row["Loss std"] == pytest.approx(0.3535534, abs=1e-6)
    assert (csv["config"] == "tiny").all() and (csv["seeds"] == "0 1").all()
    assert csv["Precision"].dtype == float and csv["Total"].tolist() == [60, 60]


def test_classification_with_bootstrap_intervals(tmp_path):
    records = [metrics_record("none", "none", None, 0), metrics_record("none", "none", None, 1)]
    for record in records:
        del record["balanced_accuracy"], record["macro_f1"], record["auroc"]  # not needed with intervals
    intervals = {"none": {"balanced_accuracy": Interval(0.625, 0.5, 0.75), "macro_f1": Interval(0.6, 0.41, 0.7),
                          "auroc": Interval(math.nan, math.nan, math.nan)}}
    frame = classification_table(records, intervals=intervals)
    assert list(frame.columns) == list(CLASSIFICATION_COLUMNS)
    assert list(CLASSIFICATION_COLUMNS[:11]) == ["Method", "Target", "Class", "Total", "Real", "Synthetic",
                                                 "Precision", "Recall", "F1", "Accuracy", "Loss"]  # the paper's
    paths = write_table(frame, tmp_path / "c", caption="CI", config_name="tiny", seeds=[0, 1],
                        note="CI: subject bootstrap")
    md = paths[1].read_text()
    assert "| 0.625 [0.500, 0.750] | 0.600 [0.410, 0.700] |     n/a | 0, 1    |" in md
    assert md.endswith("\nCI: subject bootstrap\n")
    assert r"{\footnotesize CI: subject bootstrap}" in paths[2].read_text()
    csv = pd.read_csv(paths[0])
    assert csv.loc[0, "Balanced accuracy"] == 0.625 and csv.loc[0, "Balanced accuracy CI low"] == 0.5
    assert csv.loc[0, "Macro-F1 CI high"] == 0.7 and math.isnan(csv.loc[0, "AUROC"])
    assert "Balanced accuracy std" not in csv.columns
    pooled = {"none": {**intervals["none"], "auroc_pooled": Interval(0.7, math.nan, math.nan),
                       "macro_f1_pooled": Interval(0.61, math.nan, math.nan)}}
    extra = classification_table(records, intervals=pooled)  # the pooled variants: labelled extra columns
    assert list(extra.columns) == [*CLASSIFICATION_COLUMNS, "Macro-F1 (pooled)", "AUROC (pooled)"]
    assert extra.loc[0, "AUROC (pooled)"].format() == "0.700"  # a point value: no interval
    with pytest.raises(CatvaeError, match="no bootstrap intervals of arm none"):
        classification_table(records, intervals={})
    with pytest.raises(CatvaeError, match="missing key.*balanced_accuracy"):
        classification_table(records)  # without intervals the per-run values are needed


def test_p_value_cells():
    assert PValue(0.0004, 0.05).format() == "<0.001*"
    assert PValue(0.05, 0.05).format() == "0.050*" and PValue(0.0501, 0.05).format() == "0.050"
    assert PValue(0.01).format() == "0.010" and PValue(math.nan, 0.05).format() == "n/a"


def test_row_order_none_generators_by_target_then_baselines():
    records = [
        metrics_record("classic@60", "classic", 60, 0),
        metrics_record("catvae@100", "catvae", 100, 0),
        metrics_record("vae@100", "vae", 100, 0),
        metrics_record("oversample@60", "oversample", 60, 0),
        metrics_record("none", "none", None, 0),
        metrics_record("vae@60", "vae", 60, 0),
        metrics_record("catvae@60", "catvae", 60, 0),
    ]
    frame = classification_table(records, method_order=["vae", "catvae", "cvae", "oversample", "classic"])
    targets = [None if pd.isna(t) else int(t) for t in frame["Target"]]
    arms = list(dict.fromkeys(zip(frame["Method"], targets)))
    assert arms == [("None (real only)", None), ("VAE", 60), ("VAE", 100), ("CAT-VAE", 60), ("CAT-VAE", 100),
                    ("Random oversampling", 60), ("Classical augmentation", 60)]
    assert frame["Class"].tolist()[:2] == ["NoTumor", "Tumor"]
    # Without a config order, methods keep the order they were first seen in.
    unordered = classification_table(records)
    assert list(dict.fromkeys(unordered["Method"])) == [
        "None (real only)", "CAT-VAE", "VAE", "Classical augmentation", "Random oversampling"]


def test_classification_rejects_bad_input():
    with pytest.raises(CatvaeError, match="no metrics"):
        classification_table([])
    with pytest.raises(CatvaeError, match="given twice"):
        classification_table([metrics_record("none", "none", None, 0)] * 2)
    with pytest.raises(CatvaeError, match="protocol"):
        classification_table([metrics_record("none", "none", None, 0),
                              metrics_record("vae@60", "vae", 60, 0, protocol="paper-mixed-80/20")])
    broken = metrics_record("none", "none", None, 0)
    del broken["loss"]
    with pytest.raises(CatvaeError, match="missing key.*loss"):
        classification_table([broken])
    broken = metrics_record("none", "none", None, 0)
    broken["accuracy"] = "high"
    with pytest.raises(CatvaeError, match="accuracy must be a number"):
        classification_table([broken])


def test_generator_quality_columns_notes_and_csv(tmp_path):
    no_inception = quality_record("catvae", "Tumor", fid=None, kid=None, kid_std=None,
                                  fid_note="n/a: no InceptionV3 weights", recon_path="z + mean context",
                                  ssim_own_features=0.81, psnr_own_features=25.5, mse_own_features=0.0021,
                                  sampling={"mode": "gmm", "components": 10, "covariance": "full", "n_fit": 85})
    frame = generator_quality_table([quality_record("vae", "Tumor"), no_inception,
                                     quality_record("vae", "NoTumor", attention=None, context=None)])
    assert list(frame.columns)[:len(QUALITY_COLUMNS)] == list(QUALITY_COLUMNS)
    assert list(frame.columns)[len(QUALITY_COLUMNS):] == [
        "SSIM own features (bypass)", "PSNR own features (bypass)", "MSE own features (bypass)",
        "N recon", "N FID real/fake", "Median NN SSIM", "Near-copy share", "Attention", "Context", "Sampling",
        "TSTR balanced accuracy"]
    assert frame["Model"].tolist() == ["VAE", "VAE", "CAT-VAE"]  # grouped by model, first-seen order
    assert frame["Reconstructed from"].tolist() == ["z", "z", "z + mean context"]
    # The reason is said once, in the caption, not in every cell (rows were ~700 characters wide).
    assert frame.loc[2, "FID"] == "n/a" and frame.loc[2, "KID"] == "n/a"
    assert frame.attrs["caption_note"] == "FID and KID n/a: no InceptionV3 weights"
    assert frame.loc[0, "KID"] == MeanStd(0.0123, 0.0021, 1)
    # The bypass reconstruction is in its own columns, never in SSIM; other models leave them empty.
    assert frame.loc[2, "SSIM"] == pytest.approx(0.61234) and frame.loc[2, "SSIM own features (bypass)"] == 0.81
    assert math.isnan(frame.loc[0, "SSIM own features (bypass)"])
    assert frame["Sampling"].tolist() == ["prior", "prior", "gmm (10 full)"]

    write_table(frame, tmp_path / "generator_quality", caption="Generator quality", config_name="tiny", seeds=[0])
    md = (tmp_path / "generator_quality.md").read_text().splitlines()
    assert md[0] == "Table: Generator quality; FID and KID n/a: no InceptionV3 weights (config `tiny`, seed 0)."
    cells = [c.strip() for c in md[5].strip("|").split("|")]
    assert cells == ["VAE", "NoTumor", "z", "0.6123", "21.35", "85.20", "0.0123 ± 0.0021", "0.00734", "0.346", "0.412",
                     "123.4", "1.23",
                     "512.0", "cpu", "-", "-", "-", "40", "40/200", "0.5500", "0.000", "", "", "prior", "n/a"]
    assert [c.strip() for c in md[6].strip("|").split("|")][5:7] == ["n/a", "n/a"]
    assert sum("no InceptionV3 weights" in line for line in md) == 1
    assert [c.strip() for c in md[6].strip("|").split("|")][14:17] == ["0.8100", "25.50", "0.00210"]
    csv = pd.read_csv(tmp_path / "generator_quality.csv")
    assert csv["FID"].dtype == float and math.isnan(csv.loc[2, "FID"])
    assert pd.read_csv(tmp_path / "generator_quality.csv", keep_default_na=False).loc[2, "FID note"] == "n/a"
    assert csv.loc[0, "KID std"] == pytest.approx(0.0021)
    assert csv["N recon"].tolist() == [40, 40, 40]
    assert csv.loc[2, "SSIM own features (bypass)"] == pytest.approx(0.81)


def test_generator_quality_pools_folds_and_replicates_and_shows_tstr():
    runs = [(0, 0, 0.6, 0.7), (0, 1, 0.8, 0.9), (1, 0, 0.7, 0.8)]  # (fold, replicate, SSIM, TSTR)
    quality = [quality_record("vae", cls, ssim=ssim, fold=f, replicate=r, n_recon=10)
               for f, r, ssim, _ in runs for cls in ("NoTumor", "Tumor")]
    tstr = [{"model": "vae", "fold": f, "replicate": r, "balanced_accuracy": b} for f, r, _, b in runs]
    frame = generator_quality_table(quality, tstr=tstr)
    assert frame["Class"].tolist() == ["NoTumor", "Tumor"]
    ssim, score = frame.loc[0, "SSIM"], frame.loc[0, "TSTR balanced accuracy"]
    assert isinstance(ssim, MeanStd) and ssim.n == 3 and ssim.mean == pytest.approx(0.7)
    assert score.n == 3 and score.mean == pytest.approx(0.8) and score.std == pytest.approx(0.1)
    assert frame.loc[0, "N recon"] == 30 and frame.loc[0, "Device"] == "cpu"
    single = generator_quality_table(quality[:2], tstr=tstr[:1])
    assert single.loc[1, "TSTR balanced accuracy"] == 0.7 and single.loc[1, "SSIM"] == 0.6


def test_generator_quality_shows_tstr_intervals_per_model(tmp_path):
    quality = [quality_record(m, c, fold=f) for m in ("vae", "cvae") for f in (0, 1) for c in ("NoTumor", "Tumor")]
    tstr = [{"model": m, "fold": f, "replicate": 0, "balanced_accuracy": 0.6} for m in ("vae", "cvae") for f in (0, 1)]
    intervals = {"vae": {"balanced_accuracy": Interval(0.568, 0.41, 0.72), "auroc": Interval(0.82, 0.6, 0.97),
                         "macro_f1": Interval(0.5, 0.4, 0.6)},
                 "cvae": {"balanced_accuracy": Interval(0.835, 0.7, 0.95), "auroc": Interval(math.nan, math.nan,
                                                                                              math.nan)}}
    frame = generator_quality_table(quality, tstr=tstr, tstr_intervals=intervals)
    assert list(frame.columns)[-2:] == ["TSTR balanced accuracy", "TSTR AUROC"]
    # one score per model, on each of its class rows (TSTR scores a model; the pooled estimate, not a mean of runs)
    assert frame["TSTR balanced accuracy"].tolist() == [intervals["vae"]["balanced_accuracy"]] * 2 + [
        intervals["cvae"]["balanced_accuracy"]] * 2
    write_table(frame, tmp_path / "gq", caption="Generator quality", config_name="tiny", seeds=[0], note="CI: x")
    rows = (tmp_path / "gq.md").read_text().splitlines()
    assert [c.strip() for c in rows[2].strip("|").split("|")][-2:] == ["TSTR balanced accuracy", "TSTR AUROC"]
    assert [c.strip() for c in rows[4].strip("|").split("|")][-2:] == ["0.568 [0.410, 0.720]",
                                                                      "0.820 [0.600, 0.970]"]
    assert [c.strip() for c in rows[6].strip("|").split("|")][-2:] == ["0.835 [0.700, 0.950]", "n/a"]
    csv = pd.read_csv(tmp_path / "gq.csv")
    assert csv["TSTR balanced accuracy CI low"].tolist() == [0.41, 0.41, 0.7, 0.7]
    assert csv["TSTR AUROC CI high"].iloc[0] == 0.97 and math.isnan(csv["TSTR AUROC"].iloc[2])
    with pytest.raises(CatvaeError, match="no TSTR interval of balanced_accuracy for model cvae"):
        generator_quality_table(quality, tstr=tstr, tstr_intervals={"vae": intervals["vae"]})


def test_weighted_arm_sorts_after_none():
    records = [metrics_record("weighted", "weighted", None, 0), metrics_record("vae@60", "vae", 60, 0),
               metrics_record("none", "none", None, 0), metrics_record("oversample@60", "oversample", 60, 0)]
    frame = classification_table(records)
    assert frame["Method"].drop_duplicates().tolist() == [
        "None (real only)", "Class-weighted loss", "VAE", "Random oversampling"]


def test_runs_of_several_folds_pool_and_a_repeated_run_is_refused():
    records = [dict(metrics_record("none", "none", None, s, accuracy=a), fold=f)
               for f, s, a in ((0, 0, 0.5), (0, 1, 0.6), (1, 0, 0.7), (1, 1, 0.8))]
    frame = classification_table(records)
    accuracy = frame.loc[0, "Accuracy"]
    assert accuracy.n == 4 and accuracy.mean == pytest.approx(0.65) and frame.loc[0, "Seeds"] == "0, 1"
    with pytest.raises(CatvaeError, match="fold 1 seed 1 given twice"):
        classification_table(records + [records[-1]])


def test_generator_quality_missing_key_names_file(tmp_path):
    record = quality_record("vae", "Tumor")
    del record["ssim"]
    path = tmp_path / "quality.json"
    path.write_text(json.dumps(record))
    with pytest.raises(CatvaeError, match=r"quality\.json: missing key\(s\) ssim"):
        generator_quality_table(load_records([path]))


def test_load_records_reports_bad_files(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(CatvaeError, match="metrics.json: not valid JSON"):
        load_records([bad])
    with pytest.raises(CatvaeError, match="not found"):
        load_records([tmp_path / "absent.json"])


def test_write_table_leaves_nothing_when_it_fails(tmp_path):
    frame = classification_table([metrics_record("none", "none", None, 0)])
    with pytest.raises(CatvaeError, match="no seeds"):
        write_table(frame, tmp_path / "t", caption="x", config_name="tiny", seeds=[])
    assert list(tmp_path.iterdir()) == []


def test_write_table_keeps_dots_in_the_stem(tmp_path):
    frame = classification_table([metrics_record("none", "none", None, 0)])
    paths = write_table(frame, tmp_path / "classification.v2", caption="x", config_name="tiny", seeds=[3])
    assert [p.name for p in paths] == ["classification.v2.csv", "classification.v2.md", "classification.v2.tex"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert pd.read_csv(paths[0])["seeds"].tolist() == [3, 3]


def test_build_table_writes_the_kind_with_its_library_caption(tmp_path):
    """The table rules' script only passes paths and settings: `build_table` picks the records, the builder and the
    caption (catvae.report.captions) of each kind, so a paper-protocol table equals what its builder makes, under
    its caption and the spread note; an unknown kind is refused by name."""
    from catvae.report.captions import TABLE_CAPTIONS
    from catvae.report.study_tables import TABLE_KINDS, build_table
    from catvae.report.tables import spread_note

    records = [metrics_record("none", "none", None, seed, protocol="paper") for seed in (0, 1)]
    paths = []
    for seed, record in enumerate(records):
        paths.append(tmp_path / f"metrics{seed}.json")
        paths[-1].write_text(json.dumps(record))
    (tmp_path / "built").mkdir(), (tmp_path / "direct").mkdir()
    build_table("paper_protocol", tmp_path / "built" / "table", config_name="tiny", seeds=[0, 1], folds=1, replicates=1,
                method_order=["vae"], metrics=paths)
    caption = f"{TABLE_CAPTIONS['paper_protocol']}; {spread_note(2, 1, 1)}"
    write_table(classification_table(records, method_order=["vae"]), tmp_path / "direct" / "table", caption=caption,
                config_name="tiny", seeds=[0, 1])
    for suffix in (".csv", ".md", ".tex"):
        built, direct = (tmp_path / folder / f"table{suffix}" for folder in ("built", "direct"))
        assert built.read_bytes() == direct.read_bytes()
    assert set(TABLE_KINDS) == {"generator_quality", "classification", "comparisons", "paper_protocol"}
    with pytest.raises(CatvaeError, match="unknown table kind 'classfication'"):
        build_table("classfication", tmp_path / "x", config_name="tiny", seeds=[0], folds=1, replicates=1,
                    method_order=[])
