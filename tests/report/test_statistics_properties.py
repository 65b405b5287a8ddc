"""Properties of the statistics that decide the study's claims, checked against their definitions.

The hand-computed examples in test_statistics.py pin a few values; these tests pin the rules, on the inputs that
random fixtures never produce (tied p-values and scores, replicates exactly at zero) and at more than one interval
level, so a changed comparison, constant or quantile fails here (each was seen to fail under bench/mutation.py).
"""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from catvae.errors import CatvaeError
from catvae.report.statistics import (
    Run,
    SubjectBootstrap,
    balanced_accuracy_from_confusion,
    bootstrap_p_value,
    _run_weights,
    holm,
    macro_f1_from_confusion,
)

CLASSES = ["NoTumor", "Tumor"]


def holm_by_definition(pvalues: list[float]) -> list[float]:
    """Holm's adjusted p-values written out: the i-th smallest (1-based) of m finite p-values becomes
    max over j <= i of min(1, (m - j + 1) p_(j)); NaN stays NaN. Ties: either order gives the same values."""
    finite = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    m = len(finite)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for j, (p, i) in enumerate(finite, start=1):
        running = max(running, min(1.0, (m - j + 1) * p))
        out[i] = running
    return out


@pytest.mark.parametrize("pvalues", [
    [0.01, 0.01, 0.04, 0.2],  # a tie at the smallest
    [0.03, 0.01, 0.03, 0.03, 0.5],  # a tie of three in the middle
    [0.2, 0.2, 0.2, 0.2],  # all tied: m p, capped at 1
    [0.001, math.nan, 0.012, math.nan, 0.012],  # NaNs are not hypotheses: m = 3
    [0.3, 0.01],  # 0.3 x 1 = 0.3 is raised by nothing; 0.01 x 2 = 0.02
    [0.04],  # one hypothesis: unchanged
])
def test_holm_is_its_step_down_definition_with_ties_and_nans(pvalues):
    adjusted = holm(pvalues)
    np.testing.assert_allclose(adjusted, holm_by_definition(pvalues), equal_nan=True)
    finite = ~np.isnan(np.asarray(pvalues))
    assert (adjusted[finite] >= np.asarray(pvalues)[finite]).all()
    # equal p-values get equal adjusted values, whatever their input order
    for p in set(np.asarray(pvalues)[finite]):
        assert len(set(adjusted[np.asarray(pvalues) == p])) == 1


def test_holm_random_families_match_the_definition():
    rng = np.random.default_rng(0)
    for m in range(1, 12):
        pvalues = list(np.round(rng.uniform(0, 0.3, m), 2))  # rounded: ties are common
        np.testing.assert_allclose(holm(pvalues), holm_by_definition(pvalues))


def p_value_by_definition(d: np.ndarray) -> float:
    d = d[~np.isnan(d)]
    below = (1 + np.sum(d <= 0)) / (d.size + 1)
    above = (1 + np.sum(d >= 0)) / (d.size + 1)
    return min(1.0, 2 * min(below, above))


@pytest.mark.parametrize("differences", [
    [0.0, 0.0, 0.1, 0.2, 0.3],  # replicates at zero count in both tails
    [-0.1, 0.0, 0.0, 0.0, 0.2, 0.3, 0.4],
    [-0.3, -0.2, -0.1, 0.0],  # the lower tail is the larger one
    [0.1, math.nan, 0.2, -0.05, math.nan],  # NaN replicates dropped, not counted in B
    [0.0],
])
def test_bootstrap_p_value_is_its_definition_with_zeros_and_nans(differences):
    d = np.asarray(differences, dtype=float)
    assert bootstrap_p_value(d) == pytest.approx(p_value_by_definition(d))
    assert bootstrap_p_value(-d) == pytest.approx(bootstrap_p_value(d))  # two-sided: symmetric in the sign


def test_bootstrap_p_value_counts_zero_replicates_in_both_tails():
    # 3 zeros and 6 positives of B = 9: #{d <= 0} = 3 -> p = 2 * (1 + 3)/10, not 2 * 1/10
    assert bootstrap_p_value(np.array([0.0, 0.0, 0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])) == pytest.approx(2 * 4 / 10)
    # 2 of 9 below zero, none at zero: 2 * 3/10
    assert bootstrap_p_value(np.array([-0.2, -0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])) == pytest.approx(0.6)


# ------------------------------------------------------------------------------- confusion-matrix metrics


def confusion_of(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    confusion = np.zeros((k, k))
    np.add.at(confusion, (true, pred), 1)
    return confusion


def test_confusion_metrics_match_scikit_learn_on_many_small_samples():
    """Small samples (absent classes, classes never predicted, perfect and empty rows) against scikit-learn,
    one matrix at a time and as one batch ``[B, K, K]``."""
    rng = np.random.default_rng(1)
    samples = [(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 1])),  # perfect
               (np.array([0, 0, 0, 1]), np.array([1, 1, 1, 1])),  # one class never predicted
               (np.array([2, 2, 2]), np.array([2, 0, 1]))]  # one class present of three
    samples += [(rng.integers(0, 3, n), rng.integers(0, 3, n)) for n in rng.integers(2, 12, 30)]
    confusions, bacc, f1 = [], [], []
    for true, pred in samples:
        confusions.append(confusion_of(true, pred, 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns of predicted classes with no true example
            bacc.append(balanced_accuracy_score(true, pred))
        f1.append(f1_score(true, pred, labels=[0, 1, 2], average="macro", zero_division=0))
    batch = np.stack(confusions)
    np.testing.assert_allclose(balanced_accuracy_from_confusion(batch), bacc, atol=1e-12)
    np.testing.assert_allclose(macro_f1_from_confusion(batch), f1, atol=1e-12)
    for confusion, expected in zip(confusions, bacc):
        assert balanced_accuracy_from_confusion(confusion) == pytest.approx(expected, abs=1e-12)


def test_metrics_of_an_empty_confusion_are_undefined_or_zero_without_a_warning():
    """An empty resample is an expected case (thousands of replicates), not a numerical accident: no warning."""
    empty = np.zeros((2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(balanced_accuracy_from_confusion(empty))  # no class present: no recall to average
        assert macro_f1_from_confusion(empty) == 0.0  # zero_division=0 for every class
        assert macro_f1_from_confusion([[3, 0], [0, 0]]) == pytest.approx(0.5)  # integer counts, a class absent


# ------------------------------------------------------------------------------------ the bootstrap


def tied_runs(n_subjects: int = 9, slices: int = 6, seed: int = 0) -> list[Run]:
    """Two arms whose probabilities take only 5 values (0, 0.25, ..., 1): many scores tie, within and across
    subjects and classes, as a CNN's saturated sigmoid outputs do."""
    rng = np.random.default_rng(seed)
    runs = []
    for arm in ("none", "vae@10"):
        rows = []
        for s in range(n_subjects):
            for j in range(slices):
                true = (s + j) % 2
                p = float(rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], p=[0.1, 0.2, 0.4, 0.2, 0.1]))
                p = p if true else 1 - p if rng.uniform() < 0.5 else p
                rows.append({"subject": f"s{s}", "true": CLASSES[true], "prob_NoTumor": 1 - p, "prob_Tumor": p})
        runs.append(Run(arm, pd.DataFrame(rows)))
    return runs


def assert_auroc_replicates_are_scikit_learns(boot: SubjectBootstrap, frame: pd.DataFrame) -> None:
    """Every AUROC replicate of arm `none` equals scikit-learn's on the resample rebuilt from the weights (NaN when
    the resample has one class only), and no numerical warning is raised on the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replicates = boot.replicates("none", "auroc")
    for b in range(boot.resamples):
        sample = pd.concat([frame[frame["subject"] == subject]
                            for i, (_, subject) in enumerate(boot.clusters) for _ in range(int(boot.weights[b, i]))])
        positive = (sample["true"] == "Tumor").to_numpy()
        if positive.all() or not positive.any():
            assert math.isnan(replicates[b])
        else:
            assert replicates[b] == pytest.approx(roc_auc_score(positive, sample["prob_Tumor"]), abs=1e-12)


def test_auroc_replicates_count_tied_scores_as_one_half():
    """AUROC replicates equal scikit-learn's (ties count 1/2) on resamples rebuilt by hand from the weights."""
    runs = tied_runs()
    boot = SubjectBootstrap(runs, CLASSES, resamples=30, seed=2)
    frame = runs[0].predictions
    assert frame["prob_Tumor"].duplicated().sum() > len(frame) / 2  # the fixture really ties
    assert_auroc_replicates_are_scikit_learns(boot, frame)
    assert boot.point("none", "auroc") == pytest.approx(
        roc_auc_score(frame["true"] == "Tumor", frame["prob_Tumor"]), abs=1e-12)


@pytest.mark.parametrize("classes_of", [
    ["N", "TT", "NT", "NNT"],  # a subject without negatives between others; one negative; one of each
    ["NN", "T", "N"],  # a single positive slice in the whole test set
    ["N", "T"],  # a resample of one slice of each class: one pair
])
def test_auroc_replicates_with_subjects_of_one_class_and_single_slices(classes_of):
    rows = [{"subject": f"s{s}", "true": "Tumor" if c == "T" else "NoTumor", "prob_NoTumor": 1 - p, "prob_Tumor": p}
            for s, mix in enumerate(classes_of) for c, p in zip(mix, (0.5, 0.7, 0.5))]
    frame = pd.DataFrame(rows)
    boot = SubjectBootstrap([Run("none", frame)], CLASSES, resamples=60, seed=4)
    assert_auroc_replicates_are_scikit_learns(boot, frame)


@pytest.mark.parametrize("ci", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_intervals_are_the_equal_tailed_quantiles_of_their_replicates(ci):
    """An interval of level `ci` is (point, q((1 - ci)/2), q(1 - (1 - ci)/2)) of the replicates, for the arm's
    metrics and for a paired difference (whose p-value is bootstrap_p_value of the same replicates)."""
    boot = SubjectBootstrap(tied_runs(), CLASSES, resamples=400, ci=ci, seed=1)
    tail = (1 - ci) / 2
    for metric in ("balanced_accuracy", "macro_f1", "auroc"):
        replicates = boot.replicates("none", metric)
        replicates = replicates[~np.isnan(replicates)]
        interval = boot.interval("none", metric)
        assert interval.estimate == boot.point("none", metric)
        assert (interval.low, interval.high) == pytest.approx(tuple(np.quantile(replicates, [tail, 1 - tail])))
        assert interval.low < interval.high  # the fixture's replicates are spread
    difference, p, se = boot.compare("vae@10", "none", "balanced_accuracy")
    d = boot.replicates("vae@10", "balanced_accuracy") - boot.replicates("none", "balanced_accuracy")
    assert se == pytest.approx(np.std(d[~np.isnan(d)], ddof=1))  # the MDE's standard error, by its definition
    assert difference.estimate == pytest.approx(
        boot.point("vae@10", "balanced_accuracy") - boot.point("none", "balanced_accuracy"))
    assert (difference.low, difference.high) == pytest.approx(tuple(np.quantile(d, [tail, 1 - tail])))
    assert p == pytest.approx(p_value_by_definition(d))


def test_interval_contains_its_ends():
    boot = SubjectBootstrap(tied_runs(), CLASSES, resamples=200, seed=0)
    interval = boot.interval("none", "balanced_accuracy")
    assert interval.contains(interval.low) and interval.contains(interval.high)
    assert not interval.contains(interval.low - 1e-9) and not interval.contains(interval.high + 1e-9)


@pytest.mark.parametrize("sizes", [(4, 4), (3, 5, 4), (6,)])
def test_every_resample_draws_each_fold_to_its_size_and_every_subject_can_be_drawn(sizes):
    """Folds of equal and of unequal size: a resample keeps each fold's subject count, draws only that fold's
    subjects, and over many resamples every subject is drawn (its mean weight is 1)."""
    runs = []
    for fold, n in enumerate(sizes):
        rows = [{"subject": f"f{fold}s{s}", "true": CLASSES[s % 2], "prob_NoTumor": 0.4, "prob_Tumor": 0.6}
                for s in range(n) for _ in range(2)]
        runs.append(Run("none", pd.DataFrame(rows), fold=fold))
    boot = SubjectBootstrap(runs, CLASSES, resamples=4000, seed=5)
    assert boot.weights.shape == (4000, sum(sizes))
    for fold, n in enumerate(sizes):
        members = [i for i, (f, _) in enumerate(boot.clusters) if f == fold]
        assert len(members) == n
        assert (boot.weights[:, members].sum(axis=1) == n).all()
        np.testing.assert_allclose(boot.weights[:, members].mean(axis=0), 1.0, atol=0.08)
    assert (boot.weights >= 0).all() and (boot.weights == np.round(boot.weights)).all()


def test_p_values_read_back_as_none_count_as_missing():
    """A p-value or replicate stored as JSON null comes back as None: it is missing (NaN), not an error."""
    np.testing.assert_allclose(holm([0.01, None, 0.04]), [0.02, math.nan, 0.04], equal_nan=True)
    assert bootstrap_p_value(np.array([0.1, None, 0.2, -0.1], dtype=object)) == pytest.approx(2 * 2 / 4)


def test_an_interval_over_partly_undefined_replicates_says_how_many_were_dropped(caplog):
    """Subjects of one class each: a resample of Tumor subjects only has no AUROC. The interval is taken over the
    defined replicates, and the warning names the quantity and counts the undefined ones; none when all are defined."""
    runs = []
    for arm in ("none", "vae@10"):
        rows = [{"subject": f"s{s}", "true": CLASSES[s % 2], "prob_NoTumor": 1 - p, "prob_Tumor": p}
                for s in range(3) for p in (0.3, 0.6, 0.8 if arm == "none" else 0.4)]
        runs.append(Run(arm, pd.DataFrame(rows)))
    boot = SubjectBootstrap(runs, CLASSES, resamples=200, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # undefined replicates are expected: NaN without a warning
        replicates = boot.replicates("none", "auroc")
    undefined = int(np.isnan(replicates).sum())
    assert 0 < undefined < 200
    difference = boot.replicates("vae@10", "auroc") - replicates
    with caplog.at_level(logging.WARNING, logger="catvae.report.statistics"):
        interval = boot.interval("none", "auroc")
        boot.compare("vae@10", "none", "auroc")
    tail = (1 - boot.ci) / 2
    assert (interval.low, interval.high) == pytest.approx(tuple(np.quantile(replicates[~np.isnan(replicates)],
                                                                            [tail, 1 - tail])))
    assert [r.getMessage() for r in caplog.records] == [
        f"none auroc: undefined in {undefined} of 200 resamples; interval over the rest",
        f"vae@10 - none auroc: undefined in {int(np.isnan(difference).sum())} of 200 resamples; interval over the rest"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="catvae.report.statistics"):
        boot.interval("none", "balanced_accuracy")
    assert not caplog.records


# ------------------------------------------------------------------------------- bad prediction files, run weights

def _frame(n: int = 4, **columns) -> pd.DataFrame:
    frame = pd.DataFrame({"subject": [f"s{i}" for i in range(n)], "true": [CLASSES[i % 2] for i in range(n)],
                          "prob_NoTumor": [0.4] * n, "prob_Tumor": [0.6] * n})
    for name, values in columns.items():
        frame[name] = values
    return frame


@pytest.mark.parametrize("frame, problem", [
    (_frame().drop(columns=["prob_Tumor"]), "missing column(s) prob_Tumor"),
    (_frame().iloc[:0], "no predictions"),
    (_frame(subject=["s0", "", "s2", "s3"]), "empty subject id(s); the bootstrap resamples subjects"),
    (_frame(subject=["s0", None, "s2", "s3"]), "empty subject id(s); the bootstrap resamples subjects"),
    (_frame(n=6, true=["a", "b", "c", "d", "e", "f"]), "true class(es) ['a', 'b', 'c', 'd', 'e'] not in"),
    (_frame(prob_Tumor=["0.6", "high", "0.6", "0.6"]), "non-numeric or missing probabilities"),
])
def test_a_bad_predictions_file_is_refused_naming_the_file_and_the_problem(frame, problem):
    """Every refusal names the file the rows came from (or, without one, the arm, fold and seed) and says what is
    wrong, as the project's errors must; a non-numeric probability is refused, not passed on as a ValueError."""
    with pytest.raises(CatvaeError) as raised:
        SubjectBootstrap([Run("none", frame, source="results/x/predictions.csv")], CLASSES, resamples=10)
    assert str(raised.value).startswith(f"results/x/predictions.csv: {problem}"), str(raised.value)
    with pytest.raises(CatvaeError, match=r"^predictions of arm none fold 1 seed 2: "):
        SubjectBootstrap([Run("none", frame, fold=1, seed=2)], CLASSES, resamples=10)


class _Fake:
    def __init__(self, fold: int):
        self.run = Run("a", pd.DataFrame(), fold=fold)


def test_run_weights_are_rescaled_draw_counts_in_every_fold_with_two_or_more_runs():
    """Per fold of R >= 2 runs, a resample's run weights are 1 + sqrt(R / (R - 1)) (n - 1) for draw counts n >= 0
    that sum to R; a fold with one run keeps weight 1, whatever the order of the folds; `subjects` weighs 1."""
    folds = [0, 1, 2]
    runs = [_Fake(0), _Fake(1), _Fake(1), _Fake(1), _Fake(2), _Fake(2)]  # a one-run fold first
    weights = _run_weights("a", runs, folds, 400, 0, "two_level")
    assert weights.shape == (400, 6) and (weights[:, 0] == 1).all()
    for members in ([1, 2, 3], [4, 5]):
        r = len(members)
        counts = (weights[:, members] - 1) / math.sqrt(r / (r - 1)) + 1
        assert np.allclose(counts, np.round(counts)) and (np.round(counts) >= 0).all()
        assert (np.round(counts).sum(axis=1) == r).all()
        assert len({tuple(row) for row in np.round(counts)}) > 1  # drawn, not fixed
    assert (_run_weights("a", runs, folds, 400, 0, "subjects") == 1).all()
