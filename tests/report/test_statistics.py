"""The bootstrap on synthetic predictions: subjects not slices, training runs, per-model metrics, paired differences,
Holm on the primary metric, p-value floors, determinism (error rates against known truths: test_statistics_simulation)."""

from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from catvae.errors import CatvaeError
from catvae.report.statistics import (
    Run, SubjectBootstrap, balanced_accuracy_from_confusion, bootstrap_p_value, compare_arms, comparison_pairs,
    holm, holm_families, load_runs, macro_f1_from_confusion, minimum_detectable_effect,
)
from catvae.report.tables import PValue, comparisons_table, write_table

CLASSES = ["NoTumor", "Tumor"]


def predictions(rows: list[tuple[str, int, float]], classes=CLASSES) -> pd.DataFrame:
    """rows: (subject, true class index, probability of the true class); the prediction is the argmax."""
    out = []
    for subject, true, p_true in rows:
        probs = np.full(len(classes), (1 - p_true) / (len(classes) - 1))
        probs[true] = p_true
        out.append({"subject": subject, "true": classes[true], "pred": classes[int(probs.argmax())],
                    **{f"prob_{c}": probs[i] for i, c in enumerate(classes)}})
    return pd.DataFrame(out)


def correlated_subjects(n_subjects=10, slices=20, seed=0) -> pd.DataFrame:
    """Half the subjects have every slice right, half every slice wrong: slices of a brain move together."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        right = s % 2 == 0
        for j in range(slices):
            true = j % 2
            p = rng.uniform(0.6, 0.95)
            rows.append((f"sub{s:02d}", true, p if right else 1 - p))
    return predictions(rows)


def mixed_runs(n_subjects=12, seeds=(0, 1), better=False) -> list[Run]:
    """`none` at chance-ish level; `vae@40` identical to it; `cvae@40` better (or not); `oversample@40`."""
    runs = []
    for seed in seeds:
        rng = np.random.default_rng(100 + seed)
        base = [(f"s{s}", j % 2, rng.uniform(0.3, 0.8)) for s in range(n_subjects) for j in range(6)]
        good = [(s, t, rng.uniform(0.7, 0.99) if better else p) for s, t, p in base]
        runs += [Run("none", predictions(base), seed=seed), Run("vae@40", predictions(base), seed=seed),
                 Run("cvae@40", predictions(good), seed=seed), Run("oversample@40", predictions(base), seed=seed)]
    return runs


# ------------------------------------------------------------------------------------------- Holm, p


def test_holm_matches_a_hand_computed_example():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06 by monotonicity)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])  # capped at 1
    adjusted = holm([0.02, math.nan, 0.01])
    assert math.isnan(adjusted[1]) and adjusted[0] == pytest.approx(0.02) and adjusted[2] == pytest.approx(0.02)
    assert holm([]).size == 0


def test_bootstrap_p_value_counts_both_tails_with_the_plus_one():
    # 1 of 4 replicates <= 0, 3 >= 0: p = 2 * min(2/5, 4/5)
    assert bootstrap_p_value(np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(0.8)
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(2 / 1000)
    assert bootstrap_p_value(np.zeros(50)) == 1.0
    assert math.isnan(bootstrap_p_value(np.array([math.nan])))


# ------------------------------------------------------------------------------- the bootstrap itself


def test_subjects_are_resampled_not_slices():
    """Perfectly correlated slices: the subject bootstrap sees 10 patients, a slice bootstrap 200 (too narrow)."""
    frame = correlated_subjects()
    cluster = SubjectBootstrap([Run("none", frame)], CLASSES, resamples=2000, seed=0)
    assert cluster.n_subjects == 10
    assert (cluster.weights.sum(axis=1) == 10).all() and (cluster.weights == np.round(cluster.weights)).all()
    by_slice = SubjectBootstrap([Run("none", frame.assign(subject=[f"slice{i}" for i in range(len(frame))]))],
                                CLASSES, resamples=2000, seed=0)
    assert by_slice.n_subjects == 200
    for metric in ("balanced_accuracy", "macro_f1"):
        wide, narrow = cluster.interval("none", metric), by_slice.interval("none", metric)
        assert wide.estimate == pytest.approx(0.5) and narrow.estimate == pytest.approx(0.5)
        # binomial: sd 0.158 over 10 subjects vs 0.035 over 200 slices
        assert wide.high - wide.low > 0.45, wide
        assert narrow.high - narrow.low < 0.2, narrow
    # a resample with k right subjects has balanced accuracy exactly k/10: only whole subjects move
    replicates = cluster.replicates("none", "balanced_accuracy")
    right = cluster.weights[:, [i for i, (_, s) in enumerate(cluster.clusters) if int(s[3:]) % 2 == 0]].sum(axis=1)
    np.testing.assert_allclose(replicates, right / 10)


def test_replicates_equal_scikit_learn_on_rebuilt_resamples():
    """Three classes, two folds, two seeds: every replicate equals scikit-learn on the explicitly rebuilt resample."""
    classes = ["a", "b", "c"]
    rng = np.random.default_rng(7)
    runs = []
    for fold, subjects in ((0, ["p1", "p2", "p3", "p4"]), (1, ["q1", "q2", "q3"])):
        for seed in (0, 1):
            rows = [(s, int(rng.integers(0, 3)), float(rng.uniform(0.2, 0.9))) for s in subjects for _ in range(4)]
            frame = predictions(rows, classes)
            probs = rng.dirichlet(np.ones(3), size=len(frame))  # ties and rankings not tied to `pred`
            frame[[f"prob_{c}" for c in classes]] = probs
            runs.append(Run("none", frame, fold=fold, seed=seed))
    boot = SubjectBootstrap(runs, classes, resamples=40, seed=3, interval="subjects")
    assert boot.folds == [0, 1] and boot.n_subjects == 7
    for fold, size in ((0, 4), (1, 3)):  # stratified: every fold keeps its size in every resample
        members = [i for i, (f, _) in enumerate(boot.clusters) if f == fold]
        assert (boot.weights[:, members].sum(axis=1) == size).all()
    got = {m: boot.run_replicates("none", m) for m in ("balanced_accuracy", "macro_f1", "auroc")}
    ordered = sorted(runs, key=lambda r: (r.fold, r.seed))  # run_replicates' column order
    code = {c: i for i, c in enumerate(classes)}
    for b in range(boot.resamples):
        for j, run in enumerate(ordered):  # each trained network on the resample of its own fold's subjects
            parts = [run.predictions[run.predictions["subject"] == subject]
                     for i, (fold, subject) in enumerate(boot.clusters) if fold == run.fold
                     for _ in range(int(boot.weights[b, i]))]
            sample = pd.concat(parts)
            true, pred = sample["true"].map(code).to_numpy(), sample["pred"].map(code).to_numpy()
            assert got["balanced_accuracy"][b, j] == pytest.approx(balanced_accuracy_score(true, pred), abs=1e-12)
            assert got["macro_f1"][b, j] == pytest.approx(
                f1_score(true, pred, labels=[0, 1, 2], average="macro", zero_division=0), abs=1e-12)
            if len(set(true)) == 3:
                expected = roc_auc_score(true, sample[[f"prob_{c}" for c in classes]].to_numpy(),
                                         multi_class="ovr", average="macro", labels=[0, 1, 2])
                assert got["auroc"][b, j] == pytest.approx(expected, abs=1e-12)
            else:
                assert math.isnan(got["auroc"][b, j])
    # subjects only: an arm's replicate is the plain mean of its networks' metrics
    np.testing.assert_allclose(boot.replicates("none", "macro_f1"), got["macro_f1"].mean(axis=1))


def test_two_level_weights_redraw_runs_per_fold_and_rescale():
    """Per arm and fold, R runs drawn with replacement; weight 1 + sqrt(R/(R-1)) (n - 1) makes the resampled
    variance of a mean of R values s^2 / R (unbiased), where the plain bootstrap gives (R - 1) / R of it."""
    runs = [Run("none", correlated_subjects(n_subjects=4, slices=4, seed=s), fold=0, seed=s) for s in range(3)]
    runs += [Run("none", correlated_subjects(n_subjects=4, slices=4, seed=9).assign(
        subject=lambda f: "q" + f["subject"]), fold=1, seed=0)]
    boot = SubjectBootstrap(runs, CLASSES, resamples=4000, seed=1)
    weights = boot._arms["none"].run_weights
    assert weights.shape == (4000, 4) and (weights[:, 3] == 1).all()  # one run in fold 1: no run variance
    counts = 1 + (weights[:, :3] - 1) / math.sqrt(3 / 2)
    assert np.allclose(counts, np.round(counts)) and (np.round(counts).sum(axis=1) == 3).all()
    values = np.array([0.2, 0.5, 0.9])
    resampled = (weights[:, :3] * values).mean(axis=1)
    assert resampled.mean() == pytest.approx(values.mean(), abs=0.01)
    assert resampled.var() == pytest.approx(values.var(ddof=1) / 3, rel=0.1)
    assert boot.runs_per_fold("none") == [3, 1]
    assert "training variance could not be estimated" in boot.describe()
    fixed = boot.with_interval("subjects")
    assert (fixed._arms["none"].run_weights == 1).all() and (fixed.weights == boot.weights).all()
    assert "subjects only" not in fixed.describe() and "test-subject sampling variance only" in fixed.describe()
    with pytest.raises(CatvaeError, match="evaluation.interval"):
        boot.with_interval("slices")


def test_seed_variance_widens_the_two_level_interval_only():
    """Two seeds of one arm that disagree on every subject: the subjects-only interval ignores the disagreement."""
    good = correlated_subjects(n_subjects=10, slices=6, seed=0)
    bad = good.assign(pred=np.where(good["pred"] == "Tumor", "NoTumor", "Tumor"))  # every prediction flipped
    runs = [Run("none", good, seed=0), Run("none", bad, seed=1)]
    two_level = SubjectBootstrap(runs, CLASSES, resamples=2000, seed=0)
    subjects = two_level.with_interval("subjects")
    # the mean of a network and its mirror image is 0.5 on any subject draw: no subject variance at all
    assert subjects.interval("none", "balanced_accuracy").high - subjects.interval("none", "balanced_accuracy").low \
        == pytest.approx(0, abs=1e-12)
    wide = two_level.interval("none", "balanced_accuracy")
    assert wide.estimate == pytest.approx(0.5) and wide.high - wide.low > 0.5


def test_confusion_formulas_match_scikit_learn_with_absent_classes():
    true = np.array([1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1])
    confusion = np.zeros((3, 3))
    np.add.at(confusion, (true, pred), 1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(true, pred)
    assert balanced_accuracy_from_confusion(confusion) == pytest.approx(expected)
    assert macro_f1_from_confusion(confusion) == pytest.approx(
        f1_score(true, pred, labels=[0, 1, 2], average="macro", zero_division=0))


def test_point_estimate_averages_networks_and_pooled_stays_labelled():
    runs = mixed_runs()
    boot = SubjectBootstrap(runs, CLASSES, resamples=100, seed=0)
    mine = [r.predictions for r in runs if r.arm == "cvae@40"]
    assert boot.point("cvae@40", "balanced_accuracy") == pytest.approx(
        np.mean([balanced_accuracy_score(f["true"], f["pred"]) for f in mine]))
    assert boot.point("cvae@40", "auroc") == pytest.approx(
        np.mean([roc_auc_score(f["true"] == "Tumor", f["prob_Tumor"]) for f in mine]))
    pooled = pd.concat(mine)
    assert boot.pooled("cvae@40", "auroc") == pytest.approx(roc_auc_score(pooled["true"] == "Tumor",
                                                                          pooled["prob_Tumor"]))
    interval = boot.intervals()["cvae@40"]["auroc_pooled"]
    assert interval.estimate == boot.pooled("cvae@40", "auroc") and math.isnan(interval.low)
    assert boot.seeds() == [0, 1] and boot.n_subjects == 12
    with pytest.raises(CatvaeError, match="no pooled variant"):
        boot.pooled("cvae@40", "balanced_accuracy")


def test_an_arm_identical_to_none_differs_by_exactly_zero():
    boot = SubjectBootstrap(mixed_runs(), CLASSES, resamples=500, seed=0, interval="subjects")
    for metric in ("balanced_accuracy", "macro_f1"):
        difference, p, se = boot.compare("vae@40", "none", metric)
        assert difference.estimate == 0 and difference.low == 0 and difference.high == 0
        assert difference.contains(0.0) and p == 1.0 and se == 0
    # two-level: the runs are drawn per arm, so identical arms differ by seed draws, centred on zero
    difference, p, se = boot.with_interval("two_level").compare("vae@40", "none", "balanced_accuracy")
    assert difference.estimate == 0 and difference.low < 0 < difference.high and p > 0.5 and se > 0


def test_a_clearly_better_arm_gets_a_ci_above_zero_and_a_small_p():
    boot = SubjectBootstrap(mixed_runs(better=True), CLASSES, resamples=1000, seed=0)
    table = compare_arms(boot)
    row = table[(table["arm"] == "cvae@40") & (table["reference"] == "none")
                & (table["metric"] == "balanced_accuracy")].iloc[0]
    assert row["difference"] > 0.2 and row["low"] > 0 and row["role"] == "primary"
    assert row["p"] == pytest.approx(2 / 1001) and row["p_holm"] == pytest.approx(3 * 2 / 1001) and row["m"] == 3
    assert row["mde"] == pytest.approx(minimum_detectable_effect(row["se"], 0.05))
    assert row["mde"] == pytest.approx((1.959964 + 0.841621) * row["se"], rel=1e-5)
    # Holm family: the arms compared with `none` on the primary metric (vae@40, cvae@40, oversample@40)
    family = table[(table["reference"] == "none") & (table["metric"] == "balanced_accuracy")]
    np.testing.assert_allclose(family["p_holm"], holm(family["p"].to_numpy()))
    assert len(family) == 3
    # the secondary metric is exploratory: unadjusted, no Holm
    secondary = table[table["metric"] == "macro_f1"]
    assert (secondary["role"] == "exploratory").all() and secondary["p_holm"].isna().all()
    # generator vs VAE (the CAT-VAE paper's question) is its own family of one
    versus_vae = table[(table["reference"] == "vae@40") & (table["metric"] == "balanced_accuracy")]
    assert versus_vae["arm"].tolist() == ["cvae@40"] and versus_vae["p_holm"].iloc[0] == versus_vae["p"].iloc[0]
    assert holm_families(table) == {"real only": 3, "random oversampling": 2, "VAE": 1}
    by_f1 = compare_arms(boot, primary="macro_f1", references=["none"])
    assert set(by_f1.loc[by_f1["role"] == "primary", "metric"]) == {"macro_f1"}


def test_comparison_pairs():
    arms = ["none", "vae@40", "catvae@40", "vae@balance", "oversample@40", "classic@40", "weighted"]
    assert comparison_pairs(arms) == [
        ("vae@40", "none"), ("catvae@40", "none"), ("vae@balance", "none"), ("oversample@40", "none"),
        ("classic@40", "none"), ("weighted", "none"),
        ("vae@40", "oversample@40"), ("catvae@40", "oversample@40"), ("classic@40", "oversample@40"),
        ("catvae@40", "vae@40")]  # generators only vs the VAE; no oversample@balance
    assert comparison_pairs(["vae@40", "oversample@40"]) == [("vae@40", "oversample@40")]
    assert comparison_pairs(arms, ["classic"]) == [("vae@40", "classic@40"), ("catvae@40", "classic@40"),
                                                   ("oversample@40", "classic@40")]
    with pytest.raises(CatvaeError, match="evaluation.compare.*'gan'"):
        comparison_pairs(arms, ["none", "gan"])


def test_p_values_at_the_floor_print_as_bounds():
    floor = 2 / 10000
    assert PValue(floor, floor=floor).format() == "< 0.0002"
    assert PValue(16 * floor, 0.05, 16 * floor, adjusted=True).format() == "≤ 0.0032*"
    assert PValue(0.0004, floor=floor).format() == "<0.001"  # measured, above the floor
    assert PValue(0.2, 0.05, floor).format() == "0.200"


def _write_comparisons(folder, runs, seed):
    boot = SubjectBootstrap(runs, CLASSES, resamples=300, seed=seed)
    frame = comparisons_table(compare_arms(boot), ["vae", "cvae", "oversample"])
    return write_table(frame, folder / "comparisons", caption="Paired", config_name="tiny", seeds=[0, 1],
                       note="method")


def test_seeded_tables_are_identical_across_runs_and_input_order(tmp_path):
    runs = mixed_runs(better=True)
    first = [p.read_bytes() for p in _write_comparisons(tmp_path / "a", runs, seed=5)]
    shuffled = runs[:]
    random.Random(0).shuffle(shuffled)
    second = [p.read_bytes() for p in _write_comparisons(tmp_path / "b", shuffled, seed=5)]
    assert first == second
    other = [p.read_bytes() for p in _write_comparisons(tmp_path / "c", runs, seed=6)]
    assert other[0] != first[0]  # the seed is what fixes them


def test_comparisons_table_renders(tmp_path):
    boot = SubjectBootstrap(mixed_runs(better=True), CLASSES, resamples=300, seed=0, interval="subjects")
    frame = comparisons_table(compare_arms(boot), ["vae", "cvae", "oversample"], alpha=0.05, resamples=300)
    assert frame[["Method", "Versus"]].values.tolist() == [
        ["VAE", "None (real only)"], ["Conditional VAE", "None (real only)"],
        ["Random oversampling", "None (real only)"],
        ["VAE", "Random oversampling @ 40"], ["Conditional VAE", "Random oversampling @ 40"],
        ["Conditional VAE", "VAE @ 40"]]
    paths = write_table(frame, tmp_path / "comparisons", caption="Paired", config_name="tiny", seeds=[0, 1],
                        note="Δ = arm − reference; * Holm p ≤ 0.05; 95% CI")
    md = paths[1].read_text()
    assert " Δ Balanced accuracy |" in md and " Holm p (BA) |" in md and " MDE (BA) |" in md
    assert " Δ Macro-F1 (exploratory) |" in md and " p (macro-F1, exploratory) |" in md
    assert "Holm p (macro-F1" not in md  # only the primary metric is adjusted
    assert "0.000 [0.000, 0.000] |" in md  # VAE is identical to real only
    assert md.rstrip().endswith("Δ = arm − reference; * Holm p ≤ 0.05; 95% CI")
    cvae = md.splitlines()[5]
    # at the floor 2/301: the raw p is a bound, and Holm's (family of 3) the bound 3 x 2/301, significant
    assert cvae.startswith("| Conditional VAE ") and " < 0.0066 |" in cvae and " ≤ 0.02* |" in cvae
    assert "*" not in md.splitlines()[4]  # VAE: p = 1
    tex = paths[2].read_text()
    assert r"$\Delta$ Balanced accuracy" in tex and not {"Δ", "−", "≤"} & set(tex)
    assert r"{\footnotesize $\Delta$ = arm - reference; * Holm p $\leq$ 0.05; 95\% CI}" in tex
    csv = pd.read_csv(paths[0])
    assert {"Δ Balanced accuracy", "Δ Balanced accuracy CI low", "Δ Balanced accuracy CI high", "p (BA)",
            "p (BA) floor", "Holm p (BA)", "Holm p (BA) floor", "MDE (BA)", "Δ Macro-F1 (exploratory)"} <= set(csv.columns)
    assert csv["Holm p (BA)"].dtype == float and csv.loc[1, "Δ Balanced accuracy CI low"] > 0
    assert csv.loc[1, "Holm p (BA) floor"] == pytest.approx(3 * 2 / 301)


# ------------------------------------------------------------------------------------------ bad input


def test_bad_input_is_refused(tmp_path):
    base = predictions([("s1", 0, 0.8), ("s2", 1, 0.7)])
    with pytest.raises(CatvaeError, match="other subjects"):
        SubjectBootstrap([Run("none", base), Run("vae@40", base.assign(subject=["s1", "s3"]), source="x.csv")],
                         CLASSES, resamples=10)
    with pytest.raises(CatvaeError, match="given twice"):
        SubjectBootstrap([Run("none", base), Run("none", base)], CLASSES, resamples=10)
    with pytest.raises(CatvaeError, match="missing column.*prob_Tumor"):
        SubjectBootstrap([Run("none", base.drop(columns="prob_Tumor"))], CLASSES, resamples=10)
    with pytest.raises(CatvaeError, match=r"class\(es\) \['Edema'\]"):
        SubjectBootstrap([Run("none", base.assign(true=["Edema", "Tumor"]))], CLASSES, resamples=10)
    with pytest.raises(CatvaeError, match="evaluation.bootstrap"):
        SubjectBootstrap([Run("none", base)], CLASSES, resamples=0)
    with pytest.raises(CatvaeError, match="no predictions of arm 'vae@1'"):
        SubjectBootstrap([Run("none", base)], CLASSES, resamples=10).interval("vae@1", "macro_f1")
    with pytest.raises(CatvaeError, match="2 metrics records but 1"):
        load_runs([{"arm": "none", "seed": 0}] * 2, [tmp_path / "p.csv"])
    with pytest.raises(CatvaeError, match="p.csv: file not found"):
        load_runs([{"arm": "none", "seed": 0}], [tmp_path / "p.csv"])


def test_from_records_reads_files_and_defaults_fold_zero(tmp_path):
    paths = []
    for seed in (0, 1):
        path = tmp_path / f"seed{seed}" / "predictions.csv"
        path.parent.mkdir()
        predictions([("007", 0, 0.8), ("007", 1, 0.4), ("012", 1, 0.9)]).to_csv(path, index=False)
        paths.append(path)
    records = [{"arm": "none", "seed": s, "classes": CLASSES} for s in (0, 1)]
    boot = SubjectBootstrap.from_records(records, paths, resamples=100, seed=0)
    assert boot.clusters == [(0, "007"), (0, "012")]  # subject ids stay text ("007", not 7)
    assert boot.seeds() == [0, 1]
    assert "2 test subjects" in boot.describe() and "100 resamples" in boot.describe()
    assert "2 run(s) per arm (seeds 0, 1)" in boot.describe() and "training variance between seeds" in boot.describe()
    with pytest.raises(CatvaeError, match="differ"):
        SubjectBootstrap.from_records([records[0], {**records[1], "classes": ["a", "b"]}], paths, resamples=100)
