"""Uncertainty of the classification results: a two-level bootstrap over test subjects and training runs,
paired arm comparisons, Holm over one declared primary metric, minimum detectable effects.

Two sources of chance make a study's number, and an interval that holds only one of them is too narrow:

- **Test subjects.** The slices of one brain are strongly correlated, so a bootstrap that resamples slices
  treats 81 slices of 9 brains as 81 independent patients. A resample draws test *subjects* with replacement
  and takes all of their slices (a cluster bootstrap); with k-fold cross-validation each fold's test subjects
  are resampled within that fold, so each fold keeps its size. The cluster is (fold, subject).
- **Training.** Two classifier seeds (or generator replicates) of one arm differ by as much as two arms do. In
  the default ``two_level`` interval each resample also draws, per arm and fold, that arm's R training runs
  with replacement. Resampling R values underestimates the variance of their mean by the factor (R - 1) / R,
  so the drawn runs' deviation from the arm's mean is rescaled by sqrt(R / (R - 1)) (the rescaling bootstrap of
  survey sampling, Rao and Wu 1988): a run's weight is ``1 + sqrt(R/(R-1)) (n_r - 1)`` where ``n_r`` is how
  often it was drawn. With one run per arm and fold the training variance cannot be estimated; the weight is
  then 1 and the captions say so. ``subjects`` keeps every run's weight at 1 (test-subject variance only).
  Subjects and runs are crossed (every run tests the same subjects), and resampling both factors
  independently is the "pigeonhole" bootstrap (Owen 2007), mildly conservative in the subject x run
  interaction; ``docs/STATISTICS.md`` gives the simulated error rates.

What is estimated: a model's quality. Each metric is computed per trained network on its own test
predictions (scikit-learn, via :func:`catvae.metrics.classification.classification_metrics`) and averaged
over the arm's runs; each bootstrap replicate recomputes every run's metric on the drawn subjects and averages
with the run weights. Pooling the predictions of different networks before an AUROC ranks one seed's
probabilities against another's, which is not any model's AUROC; the pooled values stay available as
labelled extra columns (:data:`POOLED`).

Paired comparisons use the *same* subject resamples for every arm, so the difference arm − reference is
computed on the same patients in every replicate; the runs are drawn per arm (different networks). See
:meth:`SubjectBootstrap.compare` for the p-value and :func:`compare_arms` for the families.

Speed: a replicate is a weight (multiplicity) per subject and per run, so instead of re-slicing predictions
the bootstrap sums per-subject sufficient statistics of each run: confusion matrices (balanced accuracy,
macro-F1) and pairwise rank counts (AUROC as the Mann-Whitney statistic). These are the same formulas
scikit-learn uses; the tests check equality with scikit-learn on explicitly rebuilt resamples.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from catvae.config import defaults
from catvae.errors import CatvaeError
from catvae.registry import GENERATORS
from catvae.vocabulary.arms import Arm, reference_arm, reference_labels

log = logging.getLogger("catvae.report.statistics")

#: Metrics with bootstrap intervals (per trained network, averaged over the arm's runs), in table order.
METRICS: dict[str, str] = {"balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro-F1", "auroc": "AUROC"}
#: The same metrics on the predictions of all runs pooled (point values, labelled extra columns). Balanced
#: accuracy is left out: on one test set per fold its pooled value is the runs' mean anyway.
POOLED: dict[str, str] = {"macro_f1": "Macro-F1 (pooled)", "auroc": "AUROC (pooled)"}
#: Metrics compared between arms; the declared primary one (``evaluation.primary``) goes first.
COMPARED: tuple[str, ...] = ("balanced_accuracy", "macro_f1")
#: Interval kinds (``evaluation.interval``): which sources of variance a resample redraws.
INTERVALS: dict[str, str] = {"two_level": "test subjects and training runs", "subjects": "test subjects only"}
#: Power at which the minimum detectable effect is stated.
POWER = 0.8
#: Reference methods of the paired comparisons (``evaluation.compare``) and how the tables name them.
REFERENCES: dict[str, str] = reference_labels()


@dataclass(frozen=True)
class Run:
    """One trained classifier's test predictions.

    `predictions` has a ``subject`` column, a ``true`` column (class names), a ``pred`` column (class names;
    the argmax of the probabilities when absent) and one ``prob_<class>`` column per class, as the
    classifier stage writes ``predictions.csv``. `source` names the file in error messages.
    """

    arm: str
    predictions: pd.DataFrame = field(repr=False)
    fold: int = 0
    seed: int = 0
    source: str = ""


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval (``low``, ``high``); NaN where undefined."""

    estimate: float
    low: float
    high: float

    def format(self, fmt: str = "{:.3f}") -> str:
        if math.isnan(self.estimate):
            return "n/a"
        if math.isnan(self.low) or math.isnan(self.high):
            return fmt.format(self.estimate)
        return f"{fmt.format(self.estimate)} [{fmt.format(self.low)}, {fmt.format(self.high)}]"

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return self.format()


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), in the input order; NaN stays NaN.

    Sorted ascending, the i-th smallest of m p-values becomes ``max_{j<=i} min(1, (m - j + 1) p_(j))``
    (i, j from 1); a hypothesis is rejected at level alpha when its adjusted p-value is <= alpha.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = finite.size
    if m == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def bootstrap_p_value(differences: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "no difference" from replicates of a difference (NaN ones dropped).

    ``p = min(1, 2 min((1 + #{d* <= 0}) / (B + 1), (1 + #{d* >= 0}) / (B + 1)))``: twice the smaller tail
    share of the bootstrap distribution on either side of zero, i.e. the smallest alpha at which the
    equal-tailed percentile interval of level 1 - alpha excludes 0 (the test that inverts the reported CI).
    The +1 counts the observed sample as one replicate, so p is never 0 with finitely many resamples (its
    floor is 2 / (B + 1)). Replicates equal to 0 count in both tails, so an arm identical to its reference
    gets p = 1.
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return math.nan
    below = (1 + np.count_nonzero(d <= 0)) / (d.size + 1)
    above = (1 + np.count_nonzero(d >= 0)) / (d.size + 1)
    return float(min(1.0, 2 * min(below, above)))


# ------------------------------------------------------------------------ metrics from subject weights


def balanced_accuracy_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Balanced accuracy of confusion matrices ``[..., K, K]`` (rows true): mean recall over present classes.

    Classes with no true example are left out, as :func:`sklearn.metrics.balanced_accuracy_score` does.
    """
    confusion = np.asarray(confusion, dtype=float)
    support = confusion.sum(axis=-1)
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
    present = (support > 0).sum(axis=-1)
    return np.where(present > 0, np.nansum(recall, axis=-1) / np.maximum(present, 1), np.nan)


def macro_f1_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Macro-F1 of confusion matrices ``[..., K, K]``: ``2tp / (2tp + fp + fn)`` per class (0 when that is
    0/0, scikit-learn's ``zero_division=0``), averaged over all K classes."""
    confusion = np.asarray(confusion, dtype=float)
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    fn = confusion.sum(axis=-1) - tp
    fp = confusion.sum(axis=-2) - tp
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return f1.mean(axis=-1)


@dataclass
class _RunStatistics:
    """Per-subject sufficient statistics of one trained network on its fold's test subjects (in fold order)."""

    run: Run
    members: np.ndarray  # [S_f] indices of the fold's subjects in SubjectBootstrap.clusters
    confusion: np.ndarray  # [S_f, K, K] counts
    pair_counts: list[np.ndarray]  # per scored class c: [S_f, S_f] Mann-Whitney counts, positives of s vs negatives of t
    positives: list[np.ndarray]  # per scored class: [S_f] count of rows with true == c
    negatives: list[np.ndarray]  # per scored class: [S_f] count of rows with true != c
    point: dict[str, float]  # scikit-learn on this run's predictions


@dataclass
class _ArmStatistics:
    """One arm's runs (sorted by fold, seed), its pooled point values and its run weights ``[B, R]``."""

    runs: list[_RunStatistics]
    tables: list[pd.DataFrame]  # the runs' coded predictions, for the pooled values (computed when asked)
    run_weights: np.ndarray
    pooled: dict[str, float] = field(default_factory=dict)  # scikit-learn on all runs' predictions pooled


def _pair_counts(scores: np.ndarray, positive: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """``A[s, t]`` = sum over positives i of s and negatives j of t of ``1[score_i > score_j] + 0.5 1[=]``."""
    counts = np.zeros((n_clusters, n_clusters))
    pos_scores, pos_cluster = scores[positive], cluster[positive]
    for t in range(n_clusters):
        neg = np.sort(scores[~positive & (cluster == t)])
        if neg.size == 0 or pos_scores.size == 0:
            continue
        below = np.searchsorted(neg, pos_scores, side="left")
        ties = np.searchsorted(neg, pos_scores, side="right") - below
        counts[:, t] = np.bincount(pos_cluster, weights=below + 0.5 * ties, minlength=n_clusters)
    return counts


def _point_metrics(true: np.ndarray, pred: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    # Imported here: the `catvae.metrics` package imports torch, which the table builders never need.
    from catvae.metrics.classification import classification_metrics

    metrics = classification_metrics(true, probs, classes, pred=pred)
    return {name: math.nan if metrics[name] is None else float(metrics[name]) for name in METRICS}


# ----------------------------------------------------------------------------------------------------------------
# The pieces SubjectBootstrap is built from: coded predictions, the subject resamples (shared by every arm), each
# run's sufficient statistics, a metric of one fold's runs under subject weights, and each arm's run weights.
# ----------------------------------------------------------------------------------------------------------------


def _coded_predictions(run: Run, classes: Sequence[str]) -> pd.DataFrame:
    """The run's rows checked and coded: subject (str), true / pred (class indices), ``prob_<class>``."""
    classes = list(classes)
    where = run.source or f"predictions of arm {run.arm} fold {run.fold} seed {run.seed}"
    frame = run.predictions
    prob_columns = [f"prob_{c}" for c in classes]
    missing = [c for c in ["subject", "true", *prob_columns] if c not in frame.columns]
    if missing:
        raise CatvaeError(f"{where}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise CatvaeError(f"{where}: no predictions")
    if frame["subject"].isna().any() or (frame["subject"].astype(str).str.strip() == "").any():
        raise CatvaeError(f"{where}: empty subject id(s); the bootstrap resamples subjects")
    lookup = {c: i for i, c in enumerate(classes)}
    out = pd.DataFrame({"subject": frame["subject"].astype(str)})
    for column in ("true", "pred"):
        if column not in frame.columns:
            continue
        codes = frame[column].astype(str).map(lookup)
        if codes.isna().any():
            bad = sorted(set(frame.loc[codes.isna(), column].astype(str)))[:5]
            raise CatvaeError(f"{where}: {column} class(es) {bad} not in {classes}")
        out[column] = codes.astype(int).to_numpy()
    probs = frame[prob_columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(probs).all():
        raise CatvaeError(f"{where}: non-numeric or missing probabilities")
    if "pred" not in out:
        out["pred"] = probs.argmax(axis=1)
    for i, column in enumerate(prob_columns):
        out[column] = probs[:, i]
    return out


def _clusters(runs: Sequence[Run], tables: Sequence[pd.DataFrame]) -> list[tuple[int, str]]:
    """Sorted (fold, subject) clusters; every run of a fold must have tested the same subjects."""
    per_fold: dict[int, tuple[frozenset[str], str]] = {}
    for run, table in zip(runs, tables):
        subjects = frozenset(table["subject"])
        where = run.source or f"arm {run.arm} fold {run.fold} seed {run.seed}"
        if run.fold not in per_fold:
            per_fold[run.fold] = (subjects, where)
        elif per_fold[run.fold][0] != subjects:
            first, other = per_fold[run.fold]
            diff = sorted(first ^ subjects)[:5]
            raise CatvaeError(f"{where}: tests other subjects than {other} in fold {run.fold} "
                              f"(e.g. {diff}); paired comparisons need one test set per fold")
    return sorted((fold, subject) for fold, (subjects, _) in per_fold.items() for subject in subjects)


@dataclass(frozen=True)
class _SubjectResamples:
    """The subject level of the bootstrap, drawn once and shared by every arm (what makes comparisons paired):
    the sorted (fold, subject) clusters and ``[B, S]`` multiplicities, each fold's subjects drawn with
    replacement, as many as the fold has, from ``default_rng(seed)`` fold by fold in sorted order."""

    clusters: list[tuple[int, str]]
    folds: list[int]
    weights: np.ndarray                   # [B, S]
    fold_weights: dict[int, np.ndarray]   # fold -> [B, S_f], contiguous (the matrix products read it)

    @classmethod
    def draw(cls, runs: Sequence[Run], tables: Sequence[pd.DataFrame], resamples: int,
             seed: int) -> "_SubjectResamples":
        clusters = _clusters(runs, tables)
        folds = sorted({fold for fold, _ in clusters})
        weights = _draw_subjects(clusters, folds, resamples, seed)
        fold_weights = {fold: np.ascontiguousarray(weights[:, _members(clusters, fold)]) for fold in folds}
        return cls(clusters, folds, weights, fold_weights)

    def members(self, fold: int) -> np.ndarray:
        """Indices in `clusters` of the fold's subjects."""
        return _members(self.clusters, fold)


def _draw_subjects(clusters: Sequence[tuple[int, str]], folds: Sequence[int], resamples: int,
                   seed: int) -> np.ndarray:
    """``[B, S]`` multiplicities: each fold's subjects drawn with replacement, as many as the fold has."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((resamples, len(clusters)))
    for fold in folds:
        members = _members(clusters, fold)
        weights[:, members] = _multiplicities(rng, resamples, members.size)
    return weights


def _members(clusters: Sequence[tuple[int, str]], fold: int) -> np.ndarray:
    return np.array([i for i, (f, _) in enumerate(clusters) if f == fold])


def _run_statistics(run: Run, table: pd.DataFrame, subjects: _SubjectResamples,
                    classes: Sequence[str]) -> _RunStatistics:
    """One run's per-subject sufficient statistics (confusion counts, Mann-Whitney pair counts) on its fold's
    subjects, and its own metrics (every subject once)."""
    members = subjects.members(run.fold)
    local = {subjects.clusters[i][1]: j for j, i in enumerate(members)}
    k, n = len(classes), members.size
    cluster = table["subject"].map(local).to_numpy()
    true, pred = table["true"].to_numpy(), table["pred"].to_numpy()
    probs = table[[f"prob_{c}" for c in classes]].to_numpy()
    confusion = np.zeros((n, k, k))
    np.add.at(confusion, (cluster, true, pred), 1)
    scored = [1] if k == 2 else list(range(k))  # binary: the positive (second) class only
    pair_counts, positives, negatives = [], [], []
    for c in scored:
        positive = true == c
        pair_counts.append(_pair_counts(probs[:, c], positive, cluster, n))
        positives.append(np.bincount(cluster[positive], minlength=n).astype(float))
        negatives.append(np.bincount(cluster[~positive], minlength=n).astype(float))
    stats = _RunStatistics(run, members, confusion, pair_counts, positives, negatives, {})
    # The run's own metrics: its statistics with every subject once (the formulas scikit-learn uses; tested).
    ones = np.ones((1, n))
    stats.point.update({metric: float(_fold_metric([stats], metric, ones, k)[0, 0]) for metric in METRICS})
    return stats


def _fold_metric(runs: Sequence[_RunStatistics], metric: str, weights: np.ndarray, n_classes: int) -> np.ndarray:
    """``[B, R_f]``: the metric of runs of one fold with subject multiplicities `weights` ``[B, S_f]``. The
    runs' statistics sit side by side so that one matrix product serves them all (BLAS is far faster on
    one wide product than on many narrow ones)."""
    if not runs:
        return np.zeros((weights.shape[0], 0))
    b, r, n, k = weights.shape[0], len(runs), weights.shape[1], n_classes
    if metric in ("balanced_accuracy", "macro_f1"):
        stacked = np.concatenate([run.confusion.reshape(n, k * k) for run in runs], axis=1)
        confusion = (weights @ stacked).reshape(b, r, k, k)
        fn = balanced_accuracy_from_confusion if metric == "balanced_accuracy" else macro_f1_from_confusion
        return fn(confusion)
    per_class = []
    for c in range(len(runs[0].pair_counts)):
        pairs = np.concatenate([run.pair_counts[c] for run in runs], axis=1)  # [S_f, R_f S_f]
        # w_b' A_r w_b for every run r at once, through BLAS
        numerator = np.einsum("brs,bs->br", (weights @ pairs).reshape(b, r, n), weights)
        pos = weights @ np.stack([run.positives[c] for run in runs], axis=1)
        neg = weights @ np.stack([run.negatives[c] for run in runs], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class.append(np.where(pos * neg > 0, numerator / (pos * neg), np.nan))
    return np.mean(per_class, axis=0)  # NaN when any class is undefined, as for the point estimate


def _run_weights(arm: str, runs: Sequence[_RunStatistics], folds: Sequence[int], resamples: int, seed: int,
                 interval: str) -> np.ndarray:
    """``[B, R]`` weights of the arm's runs: 1 everywhere for ``subjects``; for ``two_level`` each fold's R
    runs drawn with replacement (multiplicity n) from ``default_rng([seed, crc32(arm)])`` and rescaled,
    ``1 + sqrt(R / (R - 1)) (n - 1)``, so the weighted mean's resampling variance is the unbiased s^2 / R rather
    than (R - 1) / R of it; a fold with a single run keeps weight 1 (no training variance can be estimated from one
    run)."""
    weights = np.ones((resamples, len(runs)))
    if interval == "subjects":
        return weights
    rng = np.random.default_rng([seed, zlib.crc32(arm.encode())])
    for fold in folds:
        members = np.array([i for i, r in enumerate(runs) if r.run.fold == fold])
        if members.size < 2:
            continue
        scale = math.sqrt(members.size / (members.size - 1))
        weights[:, members] = 1 + scale * (_multiplicities(rng, resamples, members.size) - 1)
    return weights


class SubjectBootstrap:
    """Two-level bootstrap over test subjects and training runs (or subjects only), shared by every arm (paired).

    `runs` are all runs of all arms; every run of one fold must have tested the same subjects (else the
    arms are not paired and a comparison would mix patients). `resamples` replicates are drawn once, with
    ``numpy.random.default_rng(seed)``, fold by fold in sorted order over subjects sorted by name; each arm's
    run draws come from ``default_rng([seed, crc32(arm)])``, fold by fold over its runs sorted by seed, so
    the result depends neither on the order of `runs` nor on which other arms are present. `interval` is
    ``"two_level"`` (subjects and runs redrawn) or ``"subjects"`` (runs fixed), see :data:`INTERVALS`.

    Built from named pieces: each run's predictions are coded (`_coded_predictions`), the subjects drawn once
    (`_SubjectResamples`), each run reduced to per-subject statistics (`_run_statistics`) and each arm's runs
    weighted (`_run_weights`); a metric on weighted subjects is `_fold_metric`.
    """

    def __init__(self, runs: Sequence[Run], classes: Sequence[str], *, resamples: int = 9999,
                 ci: float = 0.95, seed: int = 0, interval: str = "two_level") -> None:
        if not runs:
            raise CatvaeError("bootstrap: no classifier runs given")
        if int(resamples) < 1:
            raise CatvaeError(f"config key 'evaluation.bootstrap' must be >= 1, got {resamples}")
        if not 0 < float(ci) < 1:
            raise CatvaeError(f"config key 'evaluation.ci' must lie in (0, 1), got {ci}")
        if interval not in INTERVALS:
            raise CatvaeError(f"config key 'evaluation.interval' must be one of {', '.join(INTERVALS)}, "
                              f"got {interval!r}")
        self.classes = list(classes)
        self.resamples, self.ci, self.seed, self.interval_kind = int(resamples), float(ci), int(seed), interval
        tables = [_coded_predictions(run, self.classes) for run in runs]
        self._subjects = _SubjectResamples.draw(runs, tables, self.resamples, self.seed)
        by_arm: dict[str, list[tuple[Run, pd.DataFrame]]] = {}
        for run, table in zip(runs, tables):
            group = by_arm.setdefault(run.arm, [])
            if any(r.fold == run.fold and r.seed == run.seed for r, _ in group):
                raise CatvaeError(f"{run.source or run.arm}: arm {run.arm} fold {run.fold} seed {run.seed} given twice")
            group.append((run, table))
        self._arms = {arm: self._arm_statistics(arm, group) for arm, group in by_arm.items()}
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        log.info("%s bootstrap: %d arm(s), %d subject(s) in %d fold(s), %d resamples, seed %d", interval,
                 len(self._arms), len(self.clusters), len(self.folds), self.resamples, self.seed)

    @classmethod
    def from_records(cls, metrics: Sequence[Mapping], predictions: Sequence[str | os.PathLike], *,
                     resamples: int = 9999, ci: float = 0.95, seed: int = 0, interval: str = "two_level",
                     arm_key: str = "arm", seed_key: str = "seed") -> "SubjectBootstrap":
        """From metrics.json records and their predictions.csv files, paired by position (:func:`load_runs`);
        the classes are the records' ``classes``, which must agree. `arm_key` / `seed_key` name the record keys
        that say the arm and the seed (TSTR runs: ``model`` and ``replicate``)."""
        if not metrics:
            raise CatvaeError("bootstrap: no metrics records given")
        classes = list(metrics[0].get("classes") or [])
        for record in metrics:
            if list(record.get("classes") or []) != classes:
                where = record.get("_path", f"metrics of arm {record.get('arm')}")
                raise CatvaeError(f"{where}: classes {record.get('classes')} differ from {classes} in other records")
        return cls(load_runs(metrics, predictions, arm_key=arm_key, seed_key=seed_key), classes,
                   resamples=resamples, ci=ci, seed=seed, interval=interval)

    def _arm_statistics(self, arm: str, group: list[tuple[Run, pd.DataFrame]]) -> _ArmStatistics:
        group = sorted(group, key=lambda item: (item[0].fold, item[0].seed))
        runs = [_run_statistics(run, table, self._subjects, self.classes) for run, table in group]
        return _ArmStatistics(runs, [table for _, table in group], self._run_weights(arm, runs))

    def _run_weights(self, arm: str, runs: Sequence[_RunStatistics]) -> np.ndarray:
        return _run_weights(arm, runs, self.folds, self.resamples, self.seed, self.interval_kind)

    def with_interval(self, interval: str) -> "SubjectBootstrap":
        """The same subject resamples and run statistics with another interval kind (:data:`INTERVALS`), e.g.
        the subjects-only interval beside the two-level one without rebuilding anything."""
        if interval not in INTERVALS:
            raise CatvaeError(f"config key 'evaluation.interval' must be one of {', '.join(INTERVALS)}, "
                              f"got {interval!r}")
        other = copy.copy(self)
        other.interval_kind, other._cache = interval, {}
        other._arms = {arm: dataclasses.replace(stats, run_weights=other._run_weights(arm, stats.runs))
                       for arm, stats in self._arms.items()}
        return other

    # ------------------------------------------------------------------------------------ results

    @property
    def clusters(self) -> list[tuple[int, str]]:
        """The sorted (fold, subject) clusters."""
        return self._subjects.clusters

    @property
    def folds(self) -> list[int]:
        return self._subjects.folds

    @property
    def weights(self) -> np.ndarray:
        """``[B, S]`` subject multiplicities of every resample (shared by every arm)."""
        return self._subjects.weights

    @property
    def arms(self) -> list[str]:
        return list(self._arms)

    @property
    def n_subjects(self) -> int:
        return len(self.clusters)

    def seeds(self, arm: str | None = None) -> list[int]:
        """Distinct seeds of one arm (or of all runs)."""
        arms = [self._stats(arm)] if arm else list(self._arms.values())
        return sorted({r.run.seed for stats in arms for r in stats.runs})

    def runs_per_fold(self, arm: str) -> list[int]:
        """How many training runs the arm has in each fold (sorted folds)."""
        runs = self._stats(arm).runs
        return [sum(r.run.fold == fold for r in runs) for fold in self.folds]

    def _stats(self, arm: str) -> _ArmStatistics:
        if arm not in self._arms:
            raise CatvaeError(f"bootstrap: no predictions of arm {arm!r} (have {', '.join(self._arms)})")
        return self._arms[arm]

    def point(self, arm: str, metric: str) -> float:
        """The metric per trained network averaged over the arm's runs; NaN where undefined."""
        return float(np.mean([r.point[self._metric(metric)] for r in self._stats(arm).runs]))

    def pooled(self, arm: str, metric: str) -> float:
        """The metric of the predictions of all the arm's runs pooled (scikit-learn), for :data:`POOLED`."""
        if metric not in POOLED:
            raise CatvaeError(f"bootstrap: no pooled variant of {metric!r} (have {', '.join(POOLED)})")
        stats = self._stats(arm)
        if not stats.pooled:
            pooled = pd.concat(stats.tables, ignore_index=True)
            stats.pooled.update(_point_metrics(pooled["true"].to_numpy(), pooled["pred"].to_numpy(),
                                               pooled[[f"prob_{c}" for c in self.classes]].to_numpy(), self.classes))
        return stats.pooled[metric]

    def run_replicates(self, arm: str, metric: str) -> np.ndarray:
        """``[B, R]``: each run's metric on each resample's subjects (runs sorted by fold, seed)."""
        metric, runs = self._metric(metric), self._stats(arm).runs
        return np.concatenate([_fold_metric([r for r in runs if r.run.fold == fold], metric,
                                            self._subjects.fold_weights[fold], len(self.classes))
                               for fold in self.folds], axis=1)

    def replicates(self, arm: str, metric: str) -> np.ndarray:
        """``[B]`` bootstrap replicates of the arm's metric: the run-weighted mean of :meth:`run_replicates`,
        clipped to the metric's range [0, 1] (NaN where a resample leaves a run's metric undefined)."""
        key = (arm, self._metric(metric))
        if key not in self._cache:
            weights = self._stats(arm).run_weights
            # The rescaled run weights extrapolate past the runs (an undrawn run weighs < 0), which can carry a
            # resample just outside the metric's range [0, 1]; no resample of real networks can lie there.
            mean = (weights * self.run_replicates(arm, metric)).sum(axis=1) / weights.shape[1]
            self._cache[key] = np.clip(mean, 0.0, 1.0)
        return self._cache[key]

    def interval(self, arm: str, metric: str) -> Interval:
        """Point estimate and equal-tailed percentile interval of level `ci`."""
        return self._interval(self.point(arm, metric), self.replicates(arm, metric), f"{arm} {metric}")

    def intervals(self) -> dict[str, dict[str, Interval]]:
        """arm -> metric id -> :class:`Interval`, for every arm and metric of :data:`METRICS`, plus the
        :data:`POOLED` values under ``<metric>_pooled`` (point only: no interval)."""
        return {arm: {**{metric: self.interval(arm, metric) for metric in METRICS},
                      **{f"{m}_pooled": Interval(self.pooled(arm, m), math.nan, math.nan) for m in POOLED}}
                for arm in self.arms}

    def compare(self, arm: str, reference: str, metric: str) -> tuple[Interval, float, float]:
        """Paired difference arm − reference: point, percentile CI, two-sided bootstrap p-value, and the
        standard error (std of the resampled differences).

        Both arms' metrics are recomputed on the same subject resamples, so each replicate of the difference
        is taken on the same patients; the runs are drawn per arm. The p-value is :func:`bootstrap_p_value`.
        """
        differences = self.replicates(arm, metric) - self.replicates(reference, metric)
        point = self.point(arm, metric) - self.point(reference, metric)
        finite = differences[~np.isnan(differences)]
        se = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
        return (self._interval(point, differences, f"{arm} - {reference} {metric}"), bootstrap_p_value(differences),
                se)

    @property
    def p_floor(self) -> float:
        """The smallest two-sided p-value B resamples can give, 2 / (B + 1)."""
        return 2 / (self.resamples + 1)

    def _interval(self, point: float, replicates: np.ndarray, what: str) -> Interval:
        finite = replicates[~np.isnan(replicates)]
        if finite.size < replicates.size:
            log.warning("%s: undefined in %d of %d resamples; interval over the rest", what,
                        replicates.size - finite.size, replicates.size)
        if finite.size == 0 or math.isnan(point):
            return Interval(point, math.nan, math.nan)
        tail = (1 - self.ci) / 2
        low, high = np.quantile(finite, [tail, 1 - tail])
        return Interval(float(point), float(low), float(high))

    @staticmethod
    def _metric(metric: str) -> str:
        if metric not in METRICS:
            raise CatvaeError(f"bootstrap: unknown metric {metric!r} (have {', '.join(METRICS)})")
        return metric

    def run_counts(self, runs: str = "seeds") -> str:
        """How many training runs each arm had per fold, and what that lets the interval hold."""
        counts: dict[int, list[str]] = {}
        for arm in self.arms:
            counts.setdefault(min(self.runs_per_fold(arm)), []).append(arm)
        per = " per fold" if len(self.folds) > 1 else ""
        if len(counts) == 1:
            (n,) = counts
            text = f"{n} run(s) per arm{per} ({runs} {', '.join(map(str, self.seeds()))})"
        else:
            text = "; ".join(f"{n} run(s){per}: {', '.join(arms)}" for n, arms in sorted(counts.items()))
        if 1 in counts and self.interval_kind == "two_level":
            which = "every arm" if len(counts) == 1 else ", ".join(counts[1])
            text += (f". With one run{per}, training variance could not be estimated for {which}: "
                     "its interval holds test-subject variance only")
        return text

    def describe(self, runs: str = "seeds") -> str:
        """How the intervals were made, for the line under a table: the variance sources held and the run
        counts; `runs` names what a run's seed is (e.g. ``"generator replicates"`` for TSTR runs)."""
        folds = f", within each of the {len(self.folds)} folds" if len(self.folds) > 1 else ""
        metric = f"each metric computed per trained network and averaged over the arm's {runs}"
        if self.interval_kind == "two_level":
            how = (f"two-level bootstrap ({self.resamples} resamples, seed {self.seed}): a resample draws the "
                   f"{self.n_subjects} test subjects with replacement{folds} (all their slices) and, per arm and "
                   f"fold, the arm's training runs with replacement (rescaled by sqrt(R/(R-1))). The CI holds "
                   f"test-subject sampling variance and training variance between {runs}")
        else:
            how = (f"cluster bootstrap over the {self.n_subjects} test subjects ({self.resamples} resamples, seed "
                   f"{self.seed}; a resample draws subjects with replacement{folds} and keeps all their slices). "
                   f"The CI holds test-subject sampling variance only; the spread between training {runs} is not "
                   "in it")
        return f"{metric}; [{self.ci:.0%} CI]: percentile interval of a {how}; {self.run_counts(runs)}"


def _multiplicities(rng: np.random.Generator, resamples: int, n: int) -> np.ndarray:
    """``[B, n]``: how often each of n items is drawn in each of B draws of n with replacement."""
    draws = rng.integers(0, n, size=(resamples, n)) + n * np.arange(resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def interval_note(bootstrap: SubjectBootstrap) -> str:
    """The line under the classification table: what the ± and the [CI] hold."""
    pooled = ", ".join(POOLED.values())
    return ("Precision, Recall, F1, Accuracy, Loss: mean ± sample std over the training seeds (their spread on "
            f"one test set). {', '.join(METRICS.values())}: {bootstrap.describe()}. {pooled}: the metric of all "
            "runs' predictions pooled (ranks one network's probabilities against another's; not a model's "
            "quality), point value only.")


def tstr_note(bootstrap: SubjectBootstrap) -> str:
    """The line under the generator quality table: what the TSTR [CI] holds and where chance lies."""
    k = len(bootstrap.classes)
    return (f"TSTR balanced accuracy, TSTR AUROC: {bootstrap.describe('generator replicates')}. Chance level: "
            f"balanced accuracy 1/{k} = {1 / k:.3f} ({k} classes), AUROC 0.5. A CNN that learned nothing of the "
            "classes mostly predicts one class (balanced accuracy at chance) but may still rank the test images by an "
            "accidental feature, so an AUROC far from 0.5 alone does not show that the synthetic images carry the "
            "classes.")


def comparison_note(bootstrap: SubjectBootstrap, config_name: str, alpha: float, primary: str,
                    families: Mapping[str, int]) -> str:
    """The line under the comparisons table: the method, the primary metric and its Holm families, the
    resolution of the p-values, the minimum detectable effect, the config and seeds."""
    floor = bootstrap.p_floor
    sizes = ", ".join(f"vs {versus}: m = {m}" for versus, m in families.items())
    return (f"Δ = arm − reference (positive: the arm does better); {bootstrap.describe()}. Paired: both arms are "
            "recomputed on the same subject resamples. p: two-sided bootstrap p-value, "
            "2 min((1 + #{Δ* ≤ 0}) / (B + 1), (1 + #{Δ* ≥ 0}) / (B + 1)) over the B resampled differences Δ*; "
            f"with B = {bootstrap.resamples} the smallest it can be is 2/(B+1) = {floor:.2g}, printed "
            f"'< {floor:.2g}' (the true p is at most that), and a Holm-adjusted one at that floor '≤ m x {floor:.2g}'. "
            f"Primary metric: {METRICS[primary].lower()}; Holm p: Holm's step-down correction across the arms "
            f"compared with one reference on the primary metric ({sizes}); * Holm p ≤ {alpha:g}. Other metrics: "
            f"exploratory, p unadjusted, no *. MDE: minimum detectable effect, the |Δ| a two-sided test at "
            f"alpha {alpha:g} (unadjusted) detects with {POWER:.0%} power, (z_(1-alpha/2) + z_{POWER:g}) x SE, SE the "
            "std of the resampled differences; a non-significant Δ with an MDE above the effect of interest is "
            f"inconclusive, not evidence of no effect. Config `{config_name}`, seeds "
            f"{', '.join(map(str, bootstrap.seeds()))}.")


def minimum_detectable_effect(se: float, alpha: float, power: float = POWER) -> float:
    """The smallest true |difference| a two-sided level-`alpha` test detects with probability `power`, under a
    normal approximation with standard error `se`: ``(z_{1 - alpha/2} + z_power) se``."""
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * se)


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """A predictions.csv as written by the classifier stage (``subject`` kept as text)."""
    try:
        return pd.read_csv(path, dtype={"subject": str, "true": str, "pred": str})
    except FileNotFoundError as exc:
        raise CatvaeError(f"{path}: file not found") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CatvaeError(f"{path}: cannot read predictions ({exc})") from exc


def load_runs(metrics: Sequence[Mapping], predictions: Sequence[str | os.PathLike], *, arm_key: str = "arm",
              seed_key: str = "seed") -> list[Run]:
    """Pair each metrics.json record (arm, seed, optional fold) with the predictions file at the same position.

    The workflow passes both lists in one order, whatever its folder layout; a record without ``fold`` is
    fold 0 (the single held-out split). `arm_key` and `seed_key` name the keys that hold the arm and the seed:
    a tstr.json record is one run of arm ``model``, its seed the generator ``replicate``.
    """
    if len(metrics) != len(predictions):
        raise CatvaeError(f"bootstrap: {len(metrics)} metrics records but {len(predictions)} predictions files")
    runs = []
    for record, path in zip(metrics, predictions):
        where = record.get("_path", f"metrics of arm {record.get(arm_key)}")
        missing = [k for k in (arm_key, seed_key) if k not in record]
        if missing:
            raise CatvaeError(f"{where}: missing key(s) {', '.join(missing)}")
        runs.append(Run(arm=str(record[arm_key]), predictions=read_predictions(path),
                        fold=int(record.get("fold", 0)), seed=int(record[seed_key]), source=os.fspath(path)))
    return runs


# ------------------------------------------------------------------------------------ comparisons


def split_arm(arm: str) -> tuple[str, str | None]:
    """``"vae@437"`` -> ``("vae", "437")``; ``"none"`` -> ``("none", None)`` (:meth:`Arm.split`)."""
    return Arm.split(arm)


#: The default of ``evaluation.compare`` (the schema's): real only, random oversampling, and the VAE (the CAT-VAE
#: paper's claim).
DEFAULT_COMPARE: tuple[str, ...] = tuple(defaults("evaluation")["compare"])


def comparison_pairs(arms: Iterable[str], references: Sequence[str] = DEFAULT_COMPARE) -> list[tuple[str, str]]:
    """(arm, reference) pairs, grouped by reference in the order of `references` (``evaluation.compare``).

    ``none``: every other arm against real only. A baseline method (``oversample``, ``classic``): every arm
    with a target and another method against ``<method>@<same target>``. A generator (``vae``): every *other
    generator* arm against it at the same target (CAT-VAE vs VAE is the CAT-VAE paper's claim). A reference
    that was not run is skipped.
    """
    arms = list(arms)
    unknown = [r for r in references if r not in REFERENCES]
    if unknown:
        raise CatvaeError(f"config key 'evaluation.compare': unknown reference(s) {unknown} "
                          f"(have {', '.join(REFERENCES)})")
    pairs = []
    for reference in references:
        for arm in arms:
            method, target = split_arm(arm)
            if reference == "none":
                if arm != "none" and "none" in arms:
                    pairs.append((arm, "none"))
                continue
            if target is None or method == reference or reference_arm(arm, reference) not in arms:
                continue
            if reference in GENERATORS and method not in GENERATORS:
                continue
            pairs.append((arm, reference_arm(arm, reference)))
    return pairs


COMPARISON_COLUMNS: list[str] = ["arm", "method", "target", "reference", "versus", "metric", "role", "difference",
                                 "low", "high", "se", "mde", "p", "p_holm", "m"]


def compare_arms(bootstrap: SubjectBootstrap, arms: Sequence[str] | None = None,
                 references: Sequence[str] = DEFAULT_COMPARE, primary: str = "balanced_accuracy",
                 alpha: float | None = None) -> pd.DataFrame:
    """Long table of paired comparisons, one row per (arm, reference, metric).

    Columns :data:`COMPARISON_COLUMNS`: ``role`` is ``primary`` for the declared primary metric and
    ``exploratory`` for the others (:data:`COMPARED`); ``se`` the std of the resampled differences, ``mde`` the
    minimum detectable effect at `alpha` (default 1 - ci) and 80% power. Only the primary metric is
    Holm-adjusted (``p_holm``), one family per reference kind (real only, oversampling, VAE): the ``m`` arms
    compared with it. Exploratory rows keep ``p_holm`` and ``m`` empty.
    """
    if primary not in METRICS:
        raise CatvaeError(f"config key 'evaluation.primary': unknown metric {primary!r} (have {', '.join(METRICS)})")
    alpha = 1 - bootstrap.ci if alpha is None else alpha
    metrics = [primary, *(m for m in COMPARED if m != primary)]
    arms = list(arms if arms is not None else bootstrap.arms)
    rows = []
    for arm, reference in comparison_pairs(arms, references):
        method, target = split_arm(arm)
        for metric in metrics:
            difference, p, se = bootstrap.compare(arm, reference, metric)
            rows.append({"arm": arm, "method": method, "target": target, "reference": reference,
                         "versus": REFERENCES[split_arm(reference)[0]], "metric": metric,
                         "role": "primary" if metric == primary else "exploratory",
                         "difference": difference.estimate, "low": difference.low, "high": difference.high,
                         "se": se, "mde": minimum_detectable_effect(se, alpha), "p": p})
    if not rows:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    frame = pd.DataFrame(rows)
    frame["p_holm"], frame["m"] = np.nan, np.nan
    for _, members in frame[frame["role"] == "primary"].groupby("versus", sort=False).groups.items():
        frame.loc[members, "p_holm"] = holm(frame.loc[members, "p"].to_numpy())
        frame.loc[members, "m"] = len(members)
    return frame[COMPARISON_COLUMNS]


def holm_families(comparisons: pd.DataFrame) -> dict[str, int]:
    """Reference label -> size m of its Holm family (the primary-metric comparisons with that reference)."""
    primary = comparisons[comparisons["role"] == "primary"]
    return {str(versus): int(len(rows)) for versus, rows in primary.groupby("versus", sort=False)}
