"""Uncertainty of the classification results: a cluster bootstrap over test subjects, paired arm comparisons, Holm.

Why subjects: the slices of one brain are strongly correlated, so a bootstrap that resamples slices treats
81 slices of 9 brains as 81 independent patients and gives intervals that are far too narrow. Here a
resample draws test *subjects* with replacement and takes all of their slices (a cluster bootstrap).

What is pooled: the input is a list of :class:`Run` records (arm, fold, seed, test predictions), one per
trained classifier, read from wherever the workflow keeps them. An arm's predictions of all its seeds (and
folds) are pooled: the point estimate is the metric of the pooled predictions (scikit-learn, via
:func:`catvae.metrics.classification.classification_metrics`), and each bootstrap replicate recomputes the
metric on the pooled predictions of the drawn subjects, every seed included. With k-fold cross-validation the
draw is stratified by fold: each fold's test subjects are resampled within that fold, so each fold keeps its
size. The cluster is (fold, subject).

What the interval holds: test-sample variance (which subjects happened to be tested). The models are fixed,
so the spread between training seeds is not in it (the tables' ``±`` over seeds shows that).

Paired comparisons use the *same* subject resamples for every arm, so the difference arm − reference is
computed on the same patients in every replicate; see :meth:`SubjectBootstrap.compare` for the p-value.

Speed: a replicate is a weight (multiplicity) per subject, so instead of re-slicing predictions the
bootstrap sums per-subject sufficient statistics: confusion matrices (balanced accuracy, macro-F1) and
pairwise rank counts (AUROC as the Mann-Whitney statistic). These are the same formulas scikit-learn uses;
the tests check equality with scikit-learn on explicitly rebuilt resamples.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from catvae.errors import CatvaeError

log = logging.getLogger("catvae.report.statistics")

#: Metrics with bootstrap intervals, in table order, with their printed names.
METRICS: dict[str, str] = {"balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro-F1", "auroc": "AUROC"}
#: Metrics compared between arms.
COMPARED: tuple[str, ...] = ("balanced_accuracy", "macro_f1")
#: Reference arms of the paired comparisons: the key is the reference's method.
REFERENCES: dict[str, str] = {"none": "real only", "oversample": "random oversampling"}


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
class _ArmStatistics:
    """Per-subject sufficient statistics of one arm, pooled over its runs (subjects in bootstrap order)."""

    confusion: np.ndarray  # [S, K, K] counts
    pair_counts: list[np.ndarray]  # per scored class c: [S, S] Mann-Whitney counts, positives of s vs negatives of t
    positives: list[np.ndarray]  # per scored class: [S] count of rows with true == c
    negatives: list[np.ndarray]  # per scored class: [S] count of rows with true != c
    point: dict[str, float]  # scikit-learn on the pooled predictions
    runs: list[Run]


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


class SubjectBootstrap:
    """Cluster bootstrap over test subjects, pooled over folds and seeds, shared by every arm (paired).

    `runs` are all runs of all arms; every run of one fold must have tested the same subjects (else the
    arms are not paired and a comparison would mix patients). `resamples` replicates are drawn once, with
    ``numpy.random.default_rng(seed)``, fold by fold in sorted order over subjects sorted by name, so the
    result does not depend on the order of `runs`.
    """

    def __init__(self, runs: Sequence[Run], classes: Sequence[str], *, resamples: int = 2000,
                 ci: float = 0.95, seed: int = 0) -> None:
        if not runs:
            raise CatvaeError("bootstrap: no classifier runs given")
        if int(resamples) < 1:
            raise CatvaeError(f"config key 'evaluation.bootstrap' must be >= 1, got {resamples}")
        if not 0 < float(ci) < 1:
            raise CatvaeError(f"config key 'evaluation.ci' must lie in (0, 1), got {ci}")
        self.classes = list(classes)
        self.resamples, self.ci, self.seed = int(resamples), float(ci), int(seed)
        tables = [self._check(run) for run in runs]
        self.clusters = self._clusters(runs, tables)
        self.folds = sorted({fold for fold, _ in self.clusters})
        index = {c: i for i, c in enumerate(self.clusters)}
        self.weights = self._draw()
        by_arm: dict[str, list[tuple[Run, pd.DataFrame]]] = {}
        for run, table in zip(runs, tables):
            group = by_arm.setdefault(run.arm, [])
            if any(r.fold == run.fold and r.seed == run.seed for r, _ in group):
                raise CatvaeError(f"{run.source or run.arm}: arm {run.arm} fold {run.fold} seed {run.seed} given twice")
            group.append((run, table))
        self._arms = {arm: self._arm_statistics(group, index) for arm, group in by_arm.items()}
        log.info("subject bootstrap: %d arm(s), %d subject(s) in %d fold(s), %d resamples, seed %d",
                 len(self._arms), len(self.clusters), len(self.folds), self.resamples, self.seed)

    @classmethod
    def from_records(cls, metrics: Sequence[Mapping], predictions: Sequence[str | os.PathLike], *,
                     resamples: int = 2000, ci: float = 0.95, seed: int = 0, arm_key: str = "arm",
                     seed_key: str = "seed") -> "SubjectBootstrap":
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
                   resamples=resamples, ci=ci, seed=seed)

    # ------------------------------------------------------------------------------- construction

    def _check(self, run: Run) -> pd.DataFrame:
        """The run's rows checked and coded: subject (str), true / pred (class indices), ``prob_<class>``."""
        where = run.source or f"predictions of arm {run.arm} fold {run.fold} seed {run.seed}"
        frame = run.predictions
        prob_columns = [f"prob_{c}" for c in self.classes]
        missing = [c for c in ["subject", "true", *prob_columns] if c not in frame.columns]
        if missing:
            raise CatvaeError(f"{where}: missing column(s) {', '.join(missing)}")
        if frame.empty:
            raise CatvaeError(f"{where}: no predictions")
        if frame["subject"].isna().any() or (frame["subject"].astype(str).str.strip() == "").any():
            raise CatvaeError(f"{where}: empty subject id(s); the bootstrap resamples subjects")
        lookup = {c: i for i, c in enumerate(self.classes)}
        out = pd.DataFrame({"subject": frame["subject"].astype(str)})
        for column in ("true", "pred"):
            if column not in frame.columns:
                continue
            codes = frame[column].astype(str).map(lookup)
            if codes.isna().any():
                bad = sorted(set(frame.loc[codes.isna(), column].astype(str)))[:5]
                raise CatvaeError(f"{where}: {column} class(es) {bad} not in {self.classes}")
            out[column] = codes.astype(int).to_numpy()
        probs = frame[prob_columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(probs).all():
            raise CatvaeError(f"{where}: non-numeric or missing probabilities")
        if "pred" not in out:
            out["pred"] = probs.argmax(axis=1)
        for i, column in enumerate(prob_columns):
            out[column] = probs[:, i]
        return out

    @staticmethod
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

    def _draw(self) -> np.ndarray:
        """``[B, S]`` multiplicities: each fold's subjects drawn with replacement, as many as the fold has."""
        rng = np.random.default_rng(self.seed)
        weights = np.zeros((self.resamples, len(self.clusters)))
        for fold in self.folds:
            members = np.array([i for i, (f, _) in enumerate(self.clusters) if f == fold])
            n = members.size
            draws = rng.integers(0, n, size=(self.resamples, n)) + n * np.arange(self.resamples)[:, None]
            weights[:, members] = np.bincount(draws.ravel(), minlength=self.resamples * n).reshape(self.resamples, n)
        return weights

    def _arm_statistics(self, group: list[tuple[Run, pd.DataFrame]], index: Mapping[tuple[int, str], int]
                        ) -> _ArmStatistics:
        pooled = pd.concat(
            [table.assign(_cluster=[index[(run.fold, s)] for s in table["subject"]]) for run, table in group],
            ignore_index=True)
        k, n_clusters = len(self.classes), len(self.clusters)
        cluster = pooled["_cluster"].to_numpy()
        true, pred = pooled["true"].to_numpy(), pooled["pred"].to_numpy()
        probs = pooled[[f"prob_{c}" for c in self.classes]].to_numpy()
        confusion = np.zeros((n_clusters, k, k))
        np.add.at(confusion, (cluster, true, pred), 1)
        scored = [1] if k == 2 else list(range(k))  # binary: the positive (second) class only
        pair_counts, positives, negatives = [], [], []
        for c in scored:
            positive = true == c
            pair_counts.append(_pair_counts(probs[:, c], positive, cluster, n_clusters))
            positives.append(np.bincount(cluster[positive], minlength=n_clusters).astype(float))
            negatives.append(np.bincount(cluster[~positive], minlength=n_clusters).astype(float))
        # Imported here: the `catvae.metrics` package imports torch, which the table builders never need.
        from catvae.metrics.classification import classification_metrics

        metrics = classification_metrics(true, probs, self.classes, pred=pred)
        point = {name: math.nan if metrics[name] is None else float(metrics[name]) for name in METRICS}
        return _ArmStatistics(confusion, pair_counts, positives, negatives, point, [run for run, _ in group])

    # ------------------------------------------------------------------------------------ results

    @property
    def arms(self) -> list[str]:
        return list(self._arms)

    @property
    def n_subjects(self) -> int:
        return len(self.clusters)

    def seeds(self, arm: str | None = None) -> list[int]:
        """Distinct seeds of one arm (or of all runs)."""
        arms = [self._stats(arm)] if arm else list(self._arms.values())
        return sorted({run.seed for stats in arms for run in stats.runs})

    def _stats(self, arm: str) -> _ArmStatistics:
        if arm not in self._arms:
            raise CatvaeError(f"bootstrap: no predictions of arm {arm!r} (have {', '.join(self._arms)})")
        return self._arms[arm]

    def point(self, arm: str, metric: str) -> float:
        """The metric of the arm's pooled predictions (scikit-learn); NaN where undefined."""
        return self._stats(arm).point[self._metric(metric)]

    def replicates(self, arm: str, metric: str) -> np.ndarray:
        """``[B]`` bootstrap replicates of the metric (NaN where a resample leaves it undefined)."""
        stats, metric = self._stats(arm), self._metric(metric)
        if metric in ("balanced_accuracy", "macro_f1"):
            k = len(self.classes)
            confusion = (self.weights @ stats.confusion.reshape(len(self.clusters), k * k)).reshape(-1, k, k)
            fn = balanced_accuracy_from_confusion if metric == "balanced_accuracy" else macro_f1_from_confusion
            return fn(confusion)
        per_class = []
        for pairs, pos, neg in zip(stats.pair_counts, stats.positives, stats.negatives):
            numerator = ((self.weights @ pairs) * self.weights).sum(axis=1)  # w_b' A w_b, through BLAS
            denominator = (self.weights @ pos) * (self.weights @ neg)
            with np.errstate(invalid="ignore", divide="ignore"):
                per_class.append(np.where(denominator > 0, numerator / denominator, np.nan))
        return np.mean(per_class, axis=0)  # NaN when any class is undefined, as for the point estimate

    def interval(self, arm: str, metric: str) -> Interval:
        """Point estimate and equal-tailed percentile interval of level `ci`."""
        return self._interval(self.point(arm, metric), self.replicates(arm, metric), f"{arm} {metric}")

    def intervals(self) -> dict[str, dict[str, Interval]]:
        """arm -> metric id -> :class:`Interval`, for every arm and every metric of :data:`METRICS`."""
        return {arm: {metric: self.interval(arm, metric) for metric in METRICS} for arm in self.arms}

    def compare(self, arm: str, reference: str, metric: str) -> tuple[Interval, float]:
        """Paired difference arm − reference: point, percentile CI, and its two-sided bootstrap p-value.

        Both arms' metrics are recomputed on the same subject resamples, so each replicate of the difference
        is taken on the same patients; the p-value is :func:`bootstrap_p_value` of those replicates.
        """
        differences = self.replicates(arm, metric) - self.replicates(reference, metric)
        point = self.point(arm, metric) - self.point(reference, metric)
        return self._interval(point, differences, f"{arm} - {reference} {metric}"), bootstrap_p_value(differences)

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

    def describe(self, runs: str = "seeds") -> str:
        """How the intervals were made, for the line under a table; `runs` names what a run's seed is (e.g.
        ``"generator replicates"`` for TSTR runs)."""
        folds = f", within each of the {len(self.folds)} folds" if len(self.folds) > 1 else ""
        pooled = f"folds and {runs}" if len(self.folds) > 1 else runs
        return (f"metrics of the predictions pooled over {pooled} {', '.join(map(str, self.seeds()))}; "
                f"[{self.ci:.0%} CI]: percentile interval of a cluster bootstrap over the {self.n_subjects} test "
                f"subjects ({self.resamples} resamples, seed {self.seed}; a resample draws subjects with "
                f"replacement{folds} and keeps all their slices). The CI holds test-subject sampling variance; "
                f"the spread between training {runs} is not in it")


def interval_note(bootstrap: SubjectBootstrap) -> str:
    """The line under the classification table: what the ± and the [CI] hold."""
    return ("Precision, Recall, F1, Accuracy, Loss: mean ± sample std over the training seeds (their spread on "
            f"one test set). {', '.join(METRICS.values())}: {bootstrap.describe()}.")


def tstr_note(bootstrap: SubjectBootstrap) -> str:
    """The line under the generator quality table: what the TSTR [CI] holds, where chance lies, and what the
    interval cannot rule out (training luck, which the subject bootstrap does not resample)."""
    k = len(bootstrap.classes)
    return (f"TSTR balanced accuracy, TSTR AUROC: {bootstrap.describe('generator replicates')}. Chance level: "
            f"balanced accuracy 1/{k} = {1 / k:.3f} ({k} classes), AUROC 0.5. A CNN that learned nothing of the "
            "classes mostly predicts one class (balanced accuracy at chance) but may still rank the test images by an "
            "accidental feature, so an AUROC far from 0.5 alone does not show that the synthetic images carry the "
            "classes.")


def comparison_note(bootstrap: SubjectBootstrap, config_name: str, alpha: float) -> str:
    """The line under the comparisons table: the method, the Holm family, the config and seeds."""
    return (f"Δ = arm − reference (positive: the arm does better), {bootstrap.describe()}. Paired: every arm is "
            "recomputed on the same subject resamples. p: two-sided bootstrap p-value, "
            "2 min((1 + #{Δ* ≤ 0}) / (B + 1), (1 + #{Δ* ≥ 0}) / (B + 1)) over the B resampled differences Δ*. "
            "Holm p: Holm's step-down correction across the arms compared with the same reference on the same "
            f"metric; * Holm p ≤ {alpha:g}. Config `{config_name}`, seeds {', '.join(map(str, bootstrap.seeds()))}.")


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
    """``"vae@437"`` -> ``("vae", "437")``; ``"none"`` -> ``("none", None)``."""
    method, _, target = arm.partition("@")
    return method, (target or None)


def comparison_pairs(arms: Iterable[str]) -> list[tuple[str, str]]:
    """(arm, reference) pairs: every arm against ``none``, and every arm with a target other than random
    oversampling against ``oversample@<same target>``; a reference that was not run is skipped."""
    arms = list(arms)
    pairs = []
    for arm in arms:
        method, target = split_arm(arm)
        if arm != "none" and "none" in arms:
            pairs.append((arm, "none"))
        reference = f"oversample@{target}"
        if target is not None and method != "oversample" and reference in arms:
            pairs.append((arm, reference))
    return pairs


def compare_arms(bootstrap: SubjectBootstrap, arms: Sequence[str] | None = None,
                 metrics: Sequence[str] = COMPARED) -> pd.DataFrame:
    """Long table of paired comparisons, one row per (arm, reference, metric), Holm-adjusted.

    Columns: ``arm, method, target, reference, versus, metric, difference, low, high, p, p_holm``.
    The Holm family is one reference kind (real only, or random oversampling) and one metric: the m arms
    compared in that column of the table.
    """
    arms = list(arms if arms is not None else bootstrap.arms)
    rows = []
    for arm, reference in comparison_pairs(arms):
        method, target = split_arm(arm)
        for metric in metrics:
            difference, p = bootstrap.compare(arm, reference, metric)
            rows.append({"arm": arm, "method": method, "target": target, "reference": reference,
                         "versus": REFERENCES[split_arm(reference)[0]], "metric": metric,
                         "difference": difference.estimate, "low": difference.low, "high": difference.high,
                         "p": p})
    columns = ["arm", "method", "target", "reference", "versus", "metric", "difference", "low", "high", "p",
               "p_holm"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows)
    frame["p_holm"] = np.nan
    for _, members in frame.groupby(["versus", "metric"], sort=False).groups.items():
        frame.loc[members, "p_holm"] = holm(frame.loc[members, "p"].to_numpy())
    return frame[columns]
