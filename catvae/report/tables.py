"""Paper-shaped result tables: generator quality and classification, as CSV, Markdown and LaTeX.

One in-memory table, two renderings. The DataFrames these functions return hold numbers, note strings
(why a metric is missing) and :class:`MeanStd` cells (a metric over seeds, or KID with its subset std).
:func:`write_table` then renders them twice, because a reader and a script want different things:

- Markdown / LaTeX (for people): ``MeanStd`` is ``"0.912 ± 0.013"`` (only ``"0.912"`` with one seed),
  a missing metric shows its note, numbers use each column's decimals.
- CSV (for scripts, ``pd.read_csv`` reads it back): every ``MeanStd`` column becomes two numeric columns,
  ``<col>`` (mean) and ``<col> std`` (NaN with one seed); a note in a numeric column moves to
  ``<col> note`` and leaves NaN behind; the last two columns, ``config`` and ``seeds``, say what made it.

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

log = logging.getLogger("catvae.report.tables")

#: Methods that are baselines rather than generators; they sort after the generators.
BASELINES: tuple[str, ...] = ("oversample", "classic")

#: How method / model ids are printed in the tables (ids not listed print as they are).
METHOD_LABELS: dict[str, str] = {
    "none": "None (real only)",
    "vae": "VAE",
    "catvae": "CAT-VAE",
    "cvae": "Conditional VAE",
    "oversample": "Random oversampling",
    "classic": "Classical augmentation",
}

#: SSIM / PSNR / MSE reconstruct through the latent code ("Reconstructed from" says what else the decoder got), so
#: they compare across models. The CAT-VAE's reconstructions with the image's own encoder features (the
#: reference's metric) bypass the bottleneck; they sit in separately named columns, empty for other models.
QUALITY_COLUMNS: tuple[str, ...] = (
    "Model", "Class", "Reconstructed from", "SSIM", "PSNR", "FID", "KID", "MSE", "Training time (s)",
    "Inference (ms/image)", "Peak memory (MB)", "Device",
)
OWN_FEATURE_COLUMNS: tuple[str, ...] = ("SSIM own features (bypass)", "PSNR own features (bypass)",
                                        "MSE own features (bypass)")
QUALITY_EXTRA_COLUMNS: tuple[str, ...] = OWN_FEATURE_COLUMNS + (
    "N recon", "N FID real/fake", "Median NN SSIM", "Near-copy share", "Attention", "Context", "Sampling",
)
CLASSIFICATION_COLUMNS: tuple[str, ...] = (
    "Method", "Target", "Class", "Total", "Real", "Synthetic", "Precision", "Recall", "F1", "Accuracy", "Loss",
    "Seeds",
)

_QUALITY_FORMATS = {
    "SSIM": "{:.4f}", "PSNR": "{:.2f}", "FID": "{:.2f}", "KID": "{:.4f}", "MSE": "{:.5f}",
    OWN_FEATURE_COLUMNS[0]: "{:.4f}", OWN_FEATURE_COLUMNS[1]: "{:.2f}", OWN_FEATURE_COLUMNS[2]: "{:.5f}",
    "Training time (s)": "{:.1f}", "Inference (ms/image)": "{:.2f}", "Peak memory (MB)": "{:.1f}",
    "Median NN SSIM": "{:.4f}", "Near-copy share": "{:.3f}",
}
_CLASSIFICATION_FORMATS = {
    "Total": "{:.0f}", "Real": "{:.0f}", "Synthetic": "{:.0f}",
    "Precision": "{:.3f}", "Recall": "{:.3f}", "F1": "{:.3f}", "Accuracy": "{:.3f}", "Loss": "{:.3f}",
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
    return METHOD_LABELS.get(method, method)


# --------------------------------------------------------------------------------- generator quality


def generator_quality_table(quality: list[dict]) -> pd.DataFrame:
    """One row per generator and class from quality.json records (models in first-seen order, then classes).

    A metric that is ``null`` shows its ``<metric>_note`` (for FID/KID also the shared ``fid_note``), so the
    reader sees *why* it is missing; KID carries its subset std as a :class:`MeanStd`. The own-feature columns
    are empty ("-") for models whose decoder reads no encoder features.
    """
    if not quality:
        raise CatvaeError("generator quality table: no quality.json records given")
    required = ("model", "class", "ssim", "psnr", "mse", "fid", "kid", "train_time_s",
                "inference_ms_per_image", "peak_memory_mb", "device")
    model_rank: dict[str, int] = {}
    rows = []
    for record in quality:
        where = _where(record, f"quality.json of {record.get('model')}/{record.get('class')}")
        _require(record, required, where)
        model_rank.setdefault(record["model"], len(model_rank))

        def metric(key: str) -> float | str:
            value = _number(record.get(key), key, where)
            if math.isnan(value):
                note = record.get(f"{key}_note") or (record.get("fid_note") if key in ("fid", "kid") else None)
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
            "_rank": model_rank[record["model"]],
        })
    frame = pd.DataFrame(rows).sort_values("_rank", kind="stable").drop(columns="_rank").reset_index(drop=True)
    frame["N recon"] = frame["N recon"].astype("Int64")
    frame.attrs["formats"] = dict(_QUALITY_FORMATS)
    return frame[list(QUALITY_COLUMNS + QUALITY_EXTRA_COLUMNS)]


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
    """The paper's row order: ``none``, then generators (in `method_order`) by target, then baselines."""
    if method == "none":
        group = 0
    elif method in BASELINES:
        group = 2
    else:
        group = 1
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


def classification_table(metrics: list[dict], method_order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per (arm, class) from metrics.json records, shaped like the paper's Tables 6/7.

    Total / Real / Synthetic are the arm's *training-set* counts per class. Precision, Recall, F1
    (per class), Accuracy and Loss (per arm, repeated on each of its class rows) are :class:`MeanStd`
    over the arm's seeds; ``Seeds`` lists them. `method_order` is the config's generator order
    (e.g. ``generators.models`` then ``classifier.baselines``); without it methods keep first-seen order.
    All records must share one protocol and one class list.
    """
    if not metrics:
        raise CatvaeError("classification table: no metrics.json records given")
    required = ("arm", "method", "target", "seed", "protocol", "classes", "counts", "per_class", "accuracy", "loss")
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
        if any(r["seed"] == record["seed"] for r in group):
            raise CatvaeError(f"{where}: arm {record['arm']} seed {record['seed']} given twice")
        for cls in classes:
            if cls not in record["counts"] or cls not in record["per_class"]:
                raise CatvaeError(f"{where}: class {cls!r} missing from counts or per_class")
        group.append(record)

    rows = []
    for arm in order_arms(metrics, method_order):
        runs = sorted(by_arm[arm], key=lambda r: r["seed"])
        first = runs[0]
        where = _where(first, f"metrics.json of arm {arm}")
        seeds = ", ".join(str(r["seed"]) for r in runs)
        accuracy = MeanStd.of([_number(r["accuracy"], "accuracy", _where(r, where)) for r in runs])
        loss = MeanStd.of([_number(r["loss"], "loss", _where(r, where)) for r in runs])
        for cls in classes:
            row: dict[str, Any] = {
                "Method": label(str(first["method"])),
                "Target": first["target"],
                "Class": cls,
            }
            for column, key in (("Total", "total"), ("Real", "real"), ("Synthetic", "synthetic")):
                values = {int(r["counts"][cls][key]) for r in runs}
                # Counts are fixed by the split and target; they differ across seeds only when the
                # split itself is seeded (paper protocol), and then the table shows their spread.
                row[column] = values.pop() if len(values) == 1 else MeanStd.of(
                    [r["counts"][cls][key] for r in runs])
            for column, key in (("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")):
                row[column] = MeanStd.of(
                    [_number(r["per_class"][cls].get(key), f"per_class.{cls}.{key}", _where(r, where))
                     for r in runs])
            row["Accuracy"], row["Loss"], row["Seeds"] = accuracy, loss, seeds
            rows.append(row)
    frame = pd.DataFrame(rows, columns=list(CLASSIFICATION_COLUMNS))
    targets = frame["Target"].dropna()
    if all(isinstance(t, (int, np.integer)) or (isinstance(t, float) and t.is_integer()) for t in targets):
        frame["Target"] = frame["Target"].astype("Int64")  # `none` has no target: <NA>, not 437.0
    frame.attrs["formats"] = dict(_CLASSIFICATION_FORMATS)
    frame.attrs["protocol"] = protocol
    return frame


# --------------------------------------------------------------------------------------------- writing


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _csv_frame(df: pd.DataFrame, config_name: str, seeds: Sequence[int]) -> pd.DataFrame:
    """Numeric CSV layout: MeanStd -> `<col>`, `<col> std`; notes in numeric columns -> `<col> note`."""
    out: dict[str, Any] = {}
    for column in df.columns:
        cells = list(df[column])
        has_stat = any(isinstance(c, MeanStd) for c in cells)
        has_number = has_stat or any(_is_number(c) for c in cells)
        notes = [c if isinstance(c, str) and has_number else None for c in cells]
        if has_number:
            out[column] = [c.mean if isinstance(c, MeanStd) else (math.nan if isinstance(c, str) else c)
                           for c in cells]
        else:
            out[column] = cells
        if has_stat:
            out[f"{column} std"] = [c.std if isinstance(c, MeanStd) else math.nan for c in cells]
        if any(n is not None for n in notes):
            out[f"{column} note"] = [n or "" for n in notes]
    frame = pd.DataFrame(out, index=df.index)
    frame["config"] = config_name
    frame["seeds"] = " ".join(str(s) for s in seeds)
    return frame


def _display_frame(df: pd.DataFrame, formats: Mapping[str, str]) -> pd.DataFrame:
    """Every cell as the string a reader sees."""

    def show(value: Any, fmt: str | None) -> str:
        if isinstance(value, MeanStd):
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
    return [pd.api.types.is_numeric_dtype(df[col]) or any(_is_number(c) or isinstance(c, MeanStd) for c in df[col])
            for col in df.columns]


def provenance_line(config_name: str, seeds: Sequence[int]) -> str:
    word = "seed" if len(seeds) == 1 else "seeds"
    return f"config `{config_name}`, {word} {', '.join(str(s) for s in seeds)}"


def write_table(df: pd.DataFrame, stem: str | Path, *, caption: str, config_name: str, seeds: list[int],
                formats: Mapping[str, str] | None = None) -> list[Path]:
    """Write `stem`.csv, `stem`.md and `stem`.tex atomically; return the three paths.

    The Markdown starts with a Pandoc caption line and the LaTeX has a ``%`` comment and a caption, both
    naming the config and seed(s); the CSV carries them in its last columns ``config`` and ``seeds``
    (seeds space-separated). `formats` (column -> ``str.format`` spec) defaults to the ones the table
    builders store in ``df.attrs["formats"]``.
    """
    if not seeds:
        raise CatvaeError(f"{stem}: no seeds given for the table's provenance")
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
    latex = latex.replace("±", r"$\pm$")  # escape=True already escaped every other special character

    paths = [stem.parent / f"{stem.name}.{suffix}" for suffix in ("csv", "md", "tex")]
    with atomic_path(paths[0]) as tmp:
        _csv_frame(df, config_name, seeds).to_csv(tmp, index=False)
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(f"Table: {caption} ({where}).\n\n{markdown}\n", encoding="utf-8")
    with atomic_path(paths[2]) as tmp:
        tmp.write_text(f"% {caption}; {where.replace('`', '')}\n{latex}", encoding="utf-8")
    log.info("wrote %s.{csv,md,tex} (%d rows)", stem, len(df))
    return paths
