"""Paper-shaped result tables: generator quality and classification, as CSV, Markdown and LaTeX.

One in-memory table, two renderings. The DataFrames these functions return hold numbers, note strings
(why a metric is missing), :class:`MeanStd` cells (a metric over seeds, or KID with its subset std),
:class:`~catvae.report.statistics.Interval` cells (an estimate with its bootstrap confidence interval) and
:class:`PValue` cells. :func:`write_table` then renders them twice, because a reader and a script want
different things:

- Markdown / LaTeX (for people): ``MeanStd`` is ``"0.912 ± 0.013"`` (only ``"0.912"`` with one seed),
  ``Interval`` is ``"0.812 [0.701, 0.905]"``, a ``PValue`` below its alpha carries a ``*``, a missing
  metric shows its note, numbers use each column's decimals; an optional note under the table says how the
  numbers were made.
- CSV (for scripts, ``pd.read_csv`` reads it back): every ``MeanStd`` column becomes two numeric columns,
  ``<col>`` (mean) and ``<col> std`` (NaN with one seed), every ``Interval`` column three, ``<col>``,
  ``<col> CI low``, ``<col> CI high``; a note in a numeric column moves to ``<col> note`` and leaves NaN
  behind; the last two columns, ``config`` and ``seeds``, say what made it.

Std over seeds is the sample standard deviation (``ddof=1``): seeds are a sample of training runs.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from catvae.errors import CatvaeError
from catvae.io import atomic_path, read_json
from catvae.report.statistics import METRICS, POOLED, Interval, split_arm
from catvae.vocabulary.arms import KINDS, method_kind, method_label

log = logging.getLogger("catvae.report.tables")

#: SSIM / PSNR / MSE reconstruct through the latent code ("Reconstructed from" says what else the decoder got), so
#: they compare across models. The CAT-VAE's reconstructions with the image's own encoder features (the
#: reference's metric) bypass the bottleneck; they sit in separately named columns, empty for other models.
#: Weight-free diversity: mean MS-SSIM of random pairs of the class's synthetic images, and of its real training images
#: (the yardstick: synthetic above real = less diverse than the data); lower = more diverse.
DIVERSITY_COLUMNS: tuple[str, ...] = ("MS-SSIM synthetic pairs", "MS-SSIM real pairs")
#: The cost columns: measured on the machine that ran the study (wall time, memory), so two runs of the same code and
#: seeds differ in them and in nothing else (bench/compare_tables.py and the SLURM test compare the rest exactly).
MEASURED_COLUMNS: tuple[str, ...] = ("Training time (s)", "Inference (ms/image)", "Peak memory (MB)")
QUALITY_COLUMNS: tuple[str, ...] = (
    "Model", "Class", "Reconstructed from", "SSIM", "PSNR", "FID", "KID", "MSE", *DIVERSITY_COLUMNS,
    *MEASURED_COLUMNS, "Device",
)
OWN_FEATURE_COLUMNS: tuple[str, ...] = ("SSIM own features (bypass)", "PSNR own features (bypass)",
                                        "MSE own features (bypass)")
QUALITY_EXTRA_COLUMNS: tuple[str, ...] = OWN_FEATURE_COLUMNS + (
    "N recon", "N FID real/fake", "Median NN SSIM", "Near-copy share", "Attention", "Context", "Sampling",
    "TSTR balanced accuracy",
)
CLASSIFICATION_COLUMNS: tuple[str, ...] = (
    "Method", "Target", "Class", "Total", "Real", "Synthetic", "Precision", "Recall", "F1", "Accuracy", "Loss",
    *METRICS.values(), "Seeds",
)
#: Extra classification columns with the predictions of an arm's runs pooled (only with bootstrap intervals).
POOLED_COLUMNS: tuple[str, ...] = tuple(POOLED.values())

_QUALITY_FORMATS = {
    "SSIM": "{:.4f}", "PSNR": "{:.2f}", "FID": "{:.2f}", "KID": "{:.4f}", "MSE": "{:.5f}",
    OWN_FEATURE_COLUMNS[0]: "{:.4f}", OWN_FEATURE_COLUMNS[1]: "{:.2f}", OWN_FEATURE_COLUMNS[2]: "{:.5f}",
    **{column: "{:.3f}" for column in DIVERSITY_COLUMNS},
    "Training time (s)": "{:.1f}", "Inference (ms/image)": "{:.2f}", "Peak memory (MB)": "{:.1f}",
    "Median NN SSIM": "{:.4f}", "Near-copy share": "{:.3f}", "TSTR balanced accuracy": "{:.3f}",
    "TSTR AUROC": "{:.3f}",
}
#: The TSTR interval columns (with subject-bootstrap intervals) and the metric each shows.
TSTR_INTERVAL_COLUMNS: dict[str, str] = {"TSTR balanced accuracy": "balanced_accuracy", "TSTR AUROC": "auroc"}
_CLASSIFICATION_FORMATS = {
    "Total": "{:.0f}", "Real": "{:.0f}", "Synthetic": "{:.0f}",
    "Precision": "{:.3f}", "Recall": "{:.3f}", "F1": "{:.3f}", "Accuracy": "{:.3f}", "Loss": "{:.3f}",
    **{name: "{:.3f}" for name in (*METRICS.values(), *POOLED.values())},
}
_DEFAULT_FORMAT = "{:.4g}"


@dataclass(frozen=True)
class MeanStd:
    """A value reported as mean ± std. ``std`` is NaN when there is nothing to spread (one seed)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "MeanStd":
        """Mean and sample std (ddof=1) of `values`, ignoring NaN (an undefined metric in one seed)."""
        arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
        finite = arr[~np.isnan(arr)]
        if finite.size == 0:
            return cls(math.nan, math.nan, 0)
        std = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
        return cls(float(np.mean(finite)), std, int(finite.size))

    def format(self, fmt: str = _DEFAULT_FORMAT) -> str:
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.std):
            return fmt.format(self.mean)
        return f"{fmt.format(self.mean)} ± {fmt.format(self.std)}"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True)
class PValue:
    """A p-value; the rendered table marks it with ``*`` when it is at most ``alpha`` (the CSV keeps the number).

    ``floor`` is the smallest value the test can give (a bootstrap's 2 / (B + 1), times m after Holm): a p-value at
    it is a bound, not a measurement, and prints as ``< floor`` (raw) or ``≤ floor`` (``adjusted``), never as a
    point value; the CSV carries the floor in ``<col> floor``.
    """

    value: float
    alpha: float | None = None
    floor: float | None = None
    adjusted: bool = False

    def at_floor(self) -> bool:
        return self.floor is not None and not math.isnan(self.value) and self.value <= self.floor * (1 + 1e-9)

    def format(self, fmt: str = "{:.3f}") -> str:
        if math.isnan(self.value):
            return "n/a"
        if self.at_floor():
            text = f"{'≤' if self.adjusted else '<'} {self.floor:.2g}"
        else:
            text = "<0.001" if self.value < 0.001 else fmt.format(self.value)
        return f"{text}*" if self.alpha is not None and self.value <= self.alpha else text

    def __str__(self) -> str:
        return self.format()


def _parts(cell: Any) -> list[tuple[str, float]] | None:
    """The CSV columns (suffix, value) of a statistic cell, or None for a plain cell."""
    if isinstance(cell, MeanStd):
        return [("", cell.mean), (" std", cell.std)]
    if isinstance(cell, Interval):
        return [("", cell.estimate), (" CI low", cell.low), (" CI high", cell.high)]
    if isinstance(cell, PValue):
        return [("", cell.value)] + ([(" floor", cell.floor)] if cell.floor is not None else [])
    return None


# --------------------------------------------------------------------------------------------- loading


def load_records(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Read quality.json / metrics.json files; each record remembers its file (``_path``) for error messages."""
    records = []
    for path in paths:
        try:
            record = read_json(path)
        except FileNotFoundError as exc:
            raise CatvaeError(f"{path}: file not found") from exc
        except ValueError as exc:
            raise CatvaeError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise CatvaeError(f"{path}: expected a JSON object, got {type(record).__name__}")
        record["_path"] = os.fspath(path)
        records.append(record)
    return records


def _where(record: Mapping[str, Any], fallback: str) -> str:
    return str(record.get("_path", fallback))


def _require(record: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise CatvaeError(f"{where}: missing key(s) {', '.join(missing)}")


def _number(value: Any, key: str, where: str) -> float:
    """A metric as float; JSON null becomes NaN (the caller decides whether a note explains it)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CatvaeError(f"{where}: {key} must be a number or null, got {value!r}")
    return float(value)


def label(method: str) -> str:
    """The printed name of a method / model id."""
    return method_label(method)


# --------------------------------------------------------------------------------- generator quality


def generator_quality_table(quality: list[dict], tstr: list[dict] | None = None,
                            tstr_intervals: Mapping[str, Mapping[str, Interval]] | None = None) -> pd.DataFrame:
    """One row per generator and class from quality.json records (models in first-seen order, then classes).

    A metric that is ``null`` shows its ``<metric>_note``, so the reader sees *why* it is missing; a missing FID or
    KID shows ``n/a`` and its reason (``fid_note``, the same sentence on every row when the weights are missing) is
    said once, in ``frame.attrs["caption_note"]``, which `write_table` adds to the caption; KID carries its subset
    std as a :class:`MeanStd`. Records of several folds or generator replicates of one (model, class) are pooled: every number becomes a :class:`MeanStd` over them.
    `tstr` (tstr.json records, one per model, fold and replicate) fills the TSTR column: the balanced accuracy of
    the CNN trained on that generator's synthetic images alone, on the real test images of the same fold.
    `tstr_intervals` (model id -> metric id -> :class:`Interval`, e.g.
    :meth:`catvae.report.statistics.SubjectBootstrap.intervals` over the TSTR runs, arm = model) replaces that
    column by the model's pooled balanced accuracy with its interval and adds "TSTR AUROC" likewise, on every class
    row of the model (TSTR scores a model, not a class); a bare number cannot say whether a score beats chance.
    The own-feature columns are empty ("-") for models whose decoder reads no encoder features.
    A model without an encoder (the diffusion comparator) shows its reconstruction columns as their note (n/a).
    The diversity columns (mean MS-SSIM of random pairs; lower = more diverse) show the class's synthetic images
    beside its real training images, on every row.
    """
    if not quality:
        raise CatvaeError("generator quality table: no quality.json records given")
    tstr_score = {}
    for record in tstr or []:
        where = _where(record, f"tstr.json of {record.get('model')}")
        _require(record, ("model", "fold", "replicate", "balanced_accuracy"), where)
        tstr_score[(record["model"], record["fold"], record["replicate"])] = _number(
            record["balanced_accuracy"], "balanced_accuracy", where)
    required = ("model", "class", "ssim", "psnr", "mse", "fid", "kid", "train_time_s",
                "inference_ms_per_image", "peak_memory_mb", "device")
    model_rank: dict[str, int] = {}
    rows = []
    fid_reasons: dict[str, None] = {}  # ordered set: why FID/KID are missing, for the caption
    for record in quality:
        where = _where(record, f"quality.json of {record.get('model')}/{record.get('class')}")
        _require(record, required, where)
        model_rank.setdefault(record["model"], len(model_rank))

        def metric(key: str) -> float | str:
            value = _number(record.get(key), key, where)
            if math.isnan(value):
                if key in ("fid", "kid"):
                    reason = str(record.get(f"{key}_note") or record.get("fid_note") or "")
                    if reason:
                        fid_reasons[reason.removeprefix("n/a: ").removeprefix("n/a")] = None
                    return "n/a"
                note = record.get(f"{key}_note")
                return str(note) if note else "n/a"
            return value

        kid = metric("kid")
        if not isinstance(kid, str):
            kid = MeanStd(kid, _number(record.get("kid_std"), "kid_std", where), 1)
        memo = record.get("memorisation") or {}
        if not isinstance(memo, Mapping):
            raise CatvaeError(f"{where}: memorisation must be an object, got {memo!r}")
        n_real, n_fake = record.get("n_fid_real"), record.get("n_fid_fake")
        n_recon = _number(record.get("n_recon"), "n_recon", where)
        rows.append({
            "Model": label(record["model"]),
            "Class": str(record["class"]),
            "Reconstructed from": str(record.get("recon_path") or ""),
            "SSIM": metric("ssim"),
            "PSNR": metric("psnr"),
            "FID": metric("fid"),
            "KID": kid,
            "MSE": metric("mse"),
            DIVERSITY_COLUMNS[0]: metric("diversity_ms_ssim"),
            DIVERSITY_COLUMNS[1]: metric("diversity_ms_ssim_real"),
            "Training time (s)": metric("train_time_s"),
            "Inference (ms/image)": metric("inference_ms_per_image"),
            "Peak memory (MB)": metric("peak_memory_mb"),
            "Device": str(record["device"]),
            **{column: _number(record.get(f"{key}_own_features"), f"{key}_own_features", where)
               for column, key in zip(OWN_FEATURE_COLUMNS, ("ssim", "psnr", "mse"))},
            "N recon": None if math.isnan(n_recon) else int(n_recon),
            "N FID real/fake": f"{n_real}/{n_fake}" if n_real is not None or n_fake is not None else "",
            "Median NN SSIM": _number(memo.get("median_nn_ssim"), "memorisation.median_nn_ssim", where),
            "Near-copy share": _number(memo.get("near_copy_share"), "memorisation.near_copy_share", where),
            "Attention": record.get("attention") or "",
            "Context": record.get("context") or "",
            "Sampling": _sampling_label(record.get("sampling")),
            "TSTR balanced accuracy": tstr_score.get(
                (record["model"], record.get("fold", 0), record.get("replicate", 0)), "n/a") if tstr else "n/a",
            "_rank": model_rank[record["model"]],
        })
    frame = _pool_runs(pd.DataFrame(rows))
    frame = frame.sort_values("_rank", kind="stable").reset_index(drop=True)
    columns = list(QUALITY_COLUMNS + QUALITY_EXTRA_COLUMNS)
    if tstr_intervals is not None:
        models = list(model_rank)
        for column, metric in TSTR_INTERVAL_COLUMNS.items():
            frame[column] = [_tstr_interval(tstr_intervals, models[rank], metric) for rank in frame["_rank"]]
        columns += [c for c in TSTR_INTERVAL_COLUMNS if c not in columns]
    frame = frame.drop(columns="_rank")
    frame["N recon"] = frame["N recon"].astype("Int64")
    frame.attrs["formats"] = dict(_QUALITY_FORMATS)
    frame = frame[columns]
    if fid_reasons:
        frame.attrs["caption_note"] = f"FID and KID n/a: {'; '.join(fid_reasons)}"
    return frame


def _tstr_interval(intervals: Mapping[str, Mapping[str, Interval]], model: str, metric: str) -> Interval:
    if model not in intervals or metric not in intervals[model]:
        raise CatvaeError(f"generator quality table: no TSTR interval of {metric} for model {model}")
    return intervals[model][metric]


def _pool_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (Model, Class): with several runs (folds x generator replicates), numbers become MeanStd over
    the runs, counts their total, and text cells the distinct values joined; a single run passes unchanged."""
    pooled = []
    for _, group in rows.groupby(["Model", "Class"], sort=False):
        if len(group) == 1:
            pooled.append(group.iloc[0].to_dict())
            continue
        row = {}
        for column in group.columns:
            cells = list(group[column])
            if column in ("Model", "Class", "_rank"):
                row[column] = cells[0]
            elif column == "N recon":
                row[column] = None if any(pd.isna(c) for c in cells) else int(sum(cells))
            elif all(isinstance(c, MeanStd) or _is_number(c) for c in cells):
                row[column] = MeanStd.of([c.mean if isinstance(c, MeanStd) else c for c in cells])
            else:
                row[column] = " / ".join(dict.fromkeys(str(c) for c in cells if not isinstance(c, MeanStd)))
        pooled.append(row)
    return pd.DataFrame(pooled, columns=rows.columns)


def _sampling_label(sampling: Any) -> str:
    """``prior``, or ``gmm (k full)`` with the fitted number of components and covariance type."""
    if not isinstance(sampling, Mapping) or not sampling.get("mode"):
        return ""
    if sampling["mode"] == "gmm" and sampling.get("components"):
        return f"gmm ({sampling['components']} {sampling.get('covariance', '')})".replace(" )", ")")
    return str(sampling["mode"])


# ------------------------------------------------------------------------------------ classification


def _target_key(target: Any) -> tuple[int, float, str]:
    if target is None:
        return (0, 0.0, "")
    if isinstance(target, (int, float)) and not isinstance(target, bool):
        return (1, float(target), "")
    return (2, 0.0, str(target))


def arm_sort_key(method: str, target: Any, method_order: Sequence[str]) -> tuple:
    """The paper's row order: ``none`` and the other real-only arms, then generators (in `method_order`) by target,
    then the resampling baselines."""
    group = KINDS.index(method_kind(method))
    rank = method_order.index(method) if method in method_order else len(method_order)
    return (group, rank, method, _target_key(target))


def order_arms(metrics: Sequence[Mapping[str, Any]], method_order: Sequence[str] | None = None) -> list[str]:
    """Distinct arm ids of `metrics` in table order (methods not in `method_order` keep first-seen order)."""
    seen_methods = list(dict.fromkeys(str(m.get("method")) for m in metrics))
    order = list(method_order or []) + [m for m in seen_methods if m not in (method_order or [])]
    arms: dict[str, tuple] = {}
    for m in metrics:
        arms.setdefault(str(m.get("arm")), arm_sort_key(str(m.get("method")), m.get("target"), order))
    return sorted(arms, key=lambda arm: arms[arm])


def classification_table(metrics: list[dict], method_order: Sequence[str] | None = None,
                         intervals: Mapping[str, Mapping[str, Interval]] | None = None) -> pd.DataFrame:
    """One row per (arm, class) from metrics.json records, shaped like the paper's Tables 6/7.

    Total / Real / Synthetic are the arm's *training-set* counts per class. Precision, Recall, F1
    (per class), Accuracy and Loss (per arm, repeated on each of its class rows) are :class:`MeanStd`
    over the arm's runs (seeds, and folds where there are several); ``Seeds`` lists the seeds.
    Balanced accuracy, Macro-F1 and AUROC (per arm) come from `intervals` (arm -> metric id -> an
    :class:`Interval` of the subject bootstrap, :meth:`catvae.report.statistics.SubjectBootstrap.interval`);
    without `intervals` (e.g. the paper-protocol table, whose predictions are not kept) they are
    :class:`MeanStd` over the runs of the metrics.json values. `method_order` is the config's generator
    order (e.g. ``generators.models`` then ``classifier.baselines``); without it methods keep first-seen
    order. All records must share one protocol and one class list.
    """
    if not metrics:
        raise CatvaeError("classification table: no metrics.json records given")
    required = ("arm", "method", "target", "seed", "protocol", "classes", "counts", "per_class", "accuracy", "loss")
    if intervals is None:
        required += tuple(METRICS)
    by_arm: dict[str, list[dict]] = {}
    classes = protocol = None
    for record in metrics:
        where = _where(record, f"metrics.json of arm {record.get('arm')} seed {record.get('seed')}")
        _require(record, required, where)
        if classes is None:
            classes, protocol = list(record["classes"]), record["protocol"]
        if list(record["classes"]) != classes:
            raise CatvaeError(f"{where}: classes {record['classes']} differ from {classes} in other records")
        if record["protocol"] != protocol:
            raise CatvaeError(f"{where}: protocol {record['protocol']!r} mixed with {protocol!r} in one table")
        group = by_arm.setdefault(str(record["arm"]), [])
        run = (record.get("fold", 0), record["seed"])
        if any((r.get("fold", 0), r["seed"]) == run for r in group):
            raise CatvaeError(f"{where}: arm {record['arm']} fold {run[0]} seed {run[1]} given twice")
        for cls in classes:
            if cls not in record["counts"] or cls not in record["per_class"]:
                raise CatvaeError(f"{where}: class {cls!r} missing from counts or per_class")
        group.append(record)

    rows = []
    for arm in order_arms(metrics, method_order):
        runs = sorted(by_arm[arm], key=lambda r: (r.get("fold", 0), r["seed"]))
        first = runs[0]
        where = _where(first, f"metrics.json of arm {arm}")
        seeds = ", ".join(str(s) for s in sorted({r["seed"] for r in runs}))
        accuracy = MeanStd.of([_number(r["accuracy"], "accuracy", _where(r, where)) for r in runs])
        loss = MeanStd.of([_number(r["loss"], "loss", _where(r, where)) for r in runs])
        if intervals is not None:
            if arm not in intervals or any(m not in intervals[arm] for m in METRICS):
                raise CatvaeError(f"classification table: no bootstrap intervals of arm {arm}")
            pooled: dict[str, Any] = {name: intervals[arm][m] for m, name in METRICS.items()}
            pooled.update({name: intervals[arm][f"{m}_pooled"] for m, name in POOLED.items()
                           if f"{m}_pooled" in intervals[arm]})
        else:
            pooled = {name: MeanStd.of([_number(r[m], m, _where(r, where)) for r in runs])
                      for m, name in METRICS.items()}
        for cls in classes:
            row: dict[str, Any] = {
                "Method": label(str(first["method"])),
                "Target": first["target"],
                "Class": cls,
            }
            for column, key in (("Total", "total"), ("Real", "real"), ("Synthetic", "synthetic")):
                values = {int(r["counts"][cls][key]) for r in runs}
                # Counts are fixed by the split and target; they differ across runs when folds differ or
                # the split itself is seeded (paper protocol), and then the table shows their spread.
                row[column] = values.pop() if len(values) == 1 else MeanStd.of(
                    [r["counts"][cls][key] for r in runs])
            for column, key in (("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")):
                row[column] = MeanStd.of(
                    [_number(r["per_class"][cls].get(key), f"per_class.{cls}.{key}", _where(r, where))
                     for r in runs])
            row["Accuracy"], row["Loss"], row["Seeds"] = accuracy, loss, seeds
            row.update(pooled)
            rows.append(row)
    extra = [c for c in POOLED_COLUMNS if rows and c in rows[0]]
    frame = pd.DataFrame(rows, columns=list(CLASSIFICATION_COLUMNS) + extra)
    _integer_targets(frame)
    frame.attrs["formats"] = dict(_CLASSIFICATION_FORMATS)
    frame.attrs["protocol"] = protocol
    return frame


def _integer_targets(frame: pd.DataFrame) -> None:
    """Whole-number targets print as integers; `none` has no target: <NA>, not 437.0."""
    targets = frame["Target"].dropna()
    if all(isinstance(t, (int, np.integer)) or (isinstance(t, float) and t.is_integer()) for t in targets):
        frame["Target"] = frame["Target"].astype("Int64")


# ---------------------------------------------------------------------------------------- comparisons

COMPARISON_LABELS: dict[str, str] = {"balanced_accuracy": "BA", "macro_f1": "macro-F1", "auroc": "AUROC"}


def comparisons_table(comparisons: pd.DataFrame, method_order: Sequence[str] | None = None,
                      alpha: float = 0.05, resamples: int | None = None) -> pd.DataFrame:
    """One row per (arm, reference) from :func:`catvae.report.statistics.compare_arms`'s long table.

    Rows are grouped by reference kind (real only, oversampling, VAE: the order of ``evaluation.compare``), arms
    in the classification table's order within each. Per compared metric: ``Δ <metric>`` (an :class:`Interval`:
    the paired difference arm − reference with its CI), ``p (<short>)`` and ``MDE (<short>)`` (the minimum
    detectable effect); the primary metric also ``Holm p (<short>)`` (a :class:`PValue`, marked at `alpha`),
    the other metrics are labelled exploratory and carry no mark. With `resamples` (B) a p-value at the floor
    2/(B+1) prints as a bound (``< floor``; after Holm ``≤ m x floor``).
    """
    needed = ["arm", "method", "target", "reference", "versus", "metric", "role", "difference", "low", "high",
              "mde", "p", "p_holm", "m"]
    missing = [c for c in needed if c not in comparisons.columns]
    if missing:
        raise CatvaeError(f"comparisons table: missing column(s) {', '.join(missing)}")
    if comparisons.empty:
        raise CatvaeError("comparisons table: no comparisons (is there a `none` arm, an oversampling arm, "
                          "or a VAE arm?)")
    metrics = list(dict.fromkeys(comparisons["metric"]))
    unknown = [m for m in metrics if m not in COMPARISON_LABELS]
    if unknown:
        raise CatvaeError(f"comparisons table: unknown metric(s) {unknown}")
    primary = set(comparisons.loc[comparisons["role"] == "primary", "metric"])
    if len(primary) != 1:
        raise CatvaeError(f"comparisons table: expected one primary metric, got {sorted(primary)}")
    floor = None if resamples is None else 2 / (int(resamples) + 1)
    order = order_arms([arm_fields(a) for a in comparisons["arm"]], method_order)
    rows = []
    for versus in dict.fromkeys(comparisons["versus"]):
        mine = comparisons[comparisons["versus"] == versus]
        for arm in [a for a in order if a in set(mine["arm"])]:
            pair = mine[mine["arm"] == arm].set_index("metric")
            method, target = split_arm(arm)
            row: dict[str, Any] = {"Method": label(method), "Target": _parse_target(target),
                                   "Versus": arm_label(str(pair["reference"].iloc[0]))}
            for metric in metrics:
                if metric not in pair.index:
                    raise CatvaeError(f"comparisons table: {arm} vs {versus} lacks metric {metric}")
                r = pair.loc[metric]
                short = COMPARISON_LABELS[metric]
                if r["role"] == "primary":
                    row[f"Δ {METRICS[metric]}"] = Interval(float(r["difference"]), float(r["low"]), float(r["high"]))
                    row[f"p ({short})"] = PValue(float(r["p"]), floor=floor)
                    row[f"Holm p ({short})"] = PValue(float(r["p_holm"]), alpha,
                                                      None if floor is None else floor * int(r["m"]), adjusted=True)
                    row[f"MDE ({short})"] = float(r["mde"])
                else:
                    tag = f"{short}, exploratory"
                    row[f"Δ {METRICS[metric]} (exploratory)"] = Interval(float(r["difference"]), float(r["low"]),
                                                                         float(r["high"]))
                    row[f"p ({tag})"] = PValue(float(r["p"]), floor=floor)
                    row[f"MDE ({tag})"] = float(r["mde"])
            rows.append(row)
    frame = pd.DataFrame(rows)
    _integer_targets(frame)
    formats = {c: "{:.3f}" for c in frame.columns if c.startswith(("Δ", "p (", "Holm p", "MDE"))}
    frame.attrs["formats"] = formats
    return frame


def _parse_target(target: str | None) -> int | str | None:
    if target is None:
        return None
    return int(target) if target.isdigit() else target


def arm_fields(arm: str) -> dict[str, Any]:
    """``"vae@437"`` -> ``{"arm": "vae@437", "method": "vae", "target": 437}`` (a count target as a number, so
    arms sort 437 before 1000), the fields :func:`order_arms` reads."""
    method, target = split_arm(arm)
    return {"arm": arm, "method": method, "target": _parse_target(target)}


def arm_label(arm: str) -> str:
    """The printed name of an arm: ``"CAT-VAE @ 437"``, ``"None (real only)"``."""
    method, target = split_arm(arm)
    return label(method) + (f" @ {target}" if target else "")


def spread_note(n_seeds: int, folds: int, replicates: int) -> str:
    """What the ± of a classification table holds, for its caption: which sources of variance each arm's runs vary.

    Every arm's runs differ in the classifier seed (initialisation, batch order, dropout; for oversample/classic also
    the resampling draws); with folds also in the training and test subjects; generator arms additionally in the
    generator replicate only when there is more than one (seed k draws from replicate k mod replicates).
    """
    runs = f"{n_seeds} seed(s)" + (f" x {folds} folds" if folds > 1 else "")
    note = (f"mean ± std over {runs}; every ± holds classifier-seed variance (initialisation, batch order; "
            "oversample/classic also their resampling draws)")
    if folds > 1:
        note += ", and the variation between folds (different training and test subjects)"
    if replicates > 1 and n_seeds > 1:
        note += f"; generator arms also hold generator variance ({replicates} independently trained replicates)"
    else:
        note += "; generator arms reuse one generator per fold, so their ± holds no generator variance"
    return note


# --------------------------------------------------------------------------------------------- writing


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _csv_frame(df: pd.DataFrame, config_name: str, seeds: Sequence[int]) -> pd.DataFrame:
    """Numeric CSV layout: a statistic cell -> its parts (`<col>`, `<col> std` / `<col> CI low`, ...);
    notes in numeric columns -> `<col> note`."""
    out: dict[str, Any] = {}
    for column in df.columns:
        cells = list(df[column])
        parts = [_parts(c) for c in cells]
        suffixes = list(dict.fromkeys(suffix for p in parts if p for suffix, _ in p))
        has_number = bool(suffixes) or any(_is_number(c) for c in cells)
        notes = [c if isinstance(c, str) and has_number else None for c in cells]
        if has_number:
            out[column] = [p[0][1] if p else (math.nan if isinstance(c, str) else c) for c, p in zip(cells, parts)]
        else:
            out[column] = cells
        for suffix in suffixes[1:] if suffixes and suffixes[0] == "" else suffixes:
            out[f"{column}{suffix}"] = [dict(p).get(suffix, math.nan) if p else math.nan for p in parts]
        if any(n is not None for n in notes):
            out[f"{column} note"] = [n or "" for n in notes]
    frame = pd.DataFrame(out, index=df.index)
    frame["config"] = config_name
    frame["seeds"] = " ".join(str(s) for s in seeds)
    return frame


def _display_frame(df: pd.DataFrame, formats: Mapping[str, str]) -> pd.DataFrame:
    """Every cell as the string a reader sees."""

    def show(value: Any, fmt: str | None) -> str:
        if _parts(value) is not None:
            return value.format(fmt or _DEFAULT_FORMAT)
        if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value)):
            return "-"
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and fmt is None:
            return str(value)
        if _is_number(value):
            return (fmt or _DEFAULT_FORMAT).format(value)
        return str(value)

    return pd.DataFrame(
        {c: [show(v, formats.get(c)) for v in df[c]] for c in df.columns}, index=df.index)


def _numeric_columns(df: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(df[col]) or any(_is_number(c) or _parts(c) is not None for c in df[col])
            for col in df.columns]


def provenance_line(config_name: str, seeds: Sequence[int]) -> str:
    word = "seed" if len(seeds) == 1 else "seeds"
    return f"config `{config_name}`, {word} {', '.join(str(s) for s in seeds)}"


def write_table(df: pd.DataFrame, stem: str | Path, *, caption: str, config_name: str, seeds: list[int],
                formats: Mapping[str, str] | None = None, note: str | None = None) -> list[Path]:
    """Write `stem`.csv, `stem`.md and `stem`.tex atomically; return the three paths.

    The Markdown starts with a Pandoc caption line and the LaTeX has a ``%`` comment and a caption, both
    naming the config and seed(s); the CSV carries them in its last columns ``config`` and ``seeds``
    (seeds space-separated). `formats` (column -> ``str.format`` spec) defaults to the ones the table
    builders store in ``df.attrs["formats"]``. `note` (how the numbers were made) is printed under the
    Markdown table and under the LaTeX tabular, so a pasted table keeps it. A builder's
    ``df.attrs["caption_note"]`` (e.g. why every FID cell says n/a) is added to the caption, said once there
    instead of in every cell.
    """
    if not seeds:
        raise CatvaeError(f"{stem}: no seeds given for the table's provenance")
    if df.attrs.get("caption_note"):
        caption = f"{caption}; {df.attrs['caption_note']}"
    stem = Path(stem)
    formats = dict(df.attrs.get("formats", {}), **(formats or {}))
    where = provenance_line(config_name, seeds)
    display = _display_frame(df, formats)
    numeric = _numeric_columns(df)

    markdown = display.to_markdown(
        index=False, disable_numparse=True, colalign=["right" if n else "left" for n in numeric])
    latex = display.to_latex(
        index=False, escape=True, column_format="".join("r" if n else "l" for n in numeric),
        caption=f"{caption} ({where.replace('`', '')}).", label=f"tab:{stem.name}")
    latex = _latex_symbols(latex)  # escape=True already escaped every other special character
    if note:
        under = _latex_symbols(_latex_escape(note))
        latex = latex.replace("\\end{table}", f"\\par\\smallskip\n{{\\footnotesize {under}}}\n\\end{{table}}")

    paths = [stem.parent / f"{stem.name}.{suffix}" for suffix in ("csv", "md", "tex")]
    with atomic_path(paths[0]) as tmp:
        _csv_frame(df, config_name, seeds).to_csv(tmp, index=False)
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(f"Table: {caption} ({where}).\n\n{markdown}\n" + (f"\n{note}\n" if note else ""),
                       encoding="utf-8")
    with atomic_path(paths[2]) as tmp:
        tmp.write_text(f"% {caption}; {where.replace('`', '')}\n{latex}", encoding="utf-8")
    log.info("wrote %s.{csv,md,tex} (%d rows)", stem, len(df))
    return paths


_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                   "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    """Escape LaTeX's special characters in free text (the note; cells are escaped by pandas)."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text.replace("`", ""))


def _latex_symbols(text: str) -> str:
    """Non-ASCII symbols the tables use, as math that compiles without extra packages."""
    for symbol, math_ in (("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("−", "-"), ("≤", r"$\leq$"), ("≥", r"$\geq$"),
                          ("<", "$<$")):
        text = text.replace(symbol, math_)
    return text
