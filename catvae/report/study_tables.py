"""The study's tables from its job files: per kind, which records it reads, the bootstrap over which runs, the table
builder, and the caption and note under it. `build_table` is what the table rules' script calls.

| kind | reads | intervals |
|---|---|---|
| `generator_quality` | every quality.json, tstr.json, tstr_predictions.csv | TSTR runs (arm: model, seed: replicate) |
| `classification` | every arm run's metrics.json and predictions.csv | the arms' runs |
| `comparisons` | the same | the same, paired (`compare_arms`, Holm) |
| `paper_protocol` | every metrics_paper_protocol.json | none (not held-out) |
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import pandas as pd

from catvae.errors import CatvaeError
from catvae.report.captions import TABLE_CAPTIONS
from catvae.report.statistics import (
    INTERVALS,
    SubjectBootstrap,
    compare_arms,
    comparison_note,
    holm_families,
    interval_note,
    tstr_note,
)
from catvae.report.tables import (
    classification_table,
    comparisons_table,
    generator_quality_table,
    load_records,
    spread_note,
    write_table,
)

TABLE_KINDS: tuple[str, ...] = tuple(TABLE_CAPTIONS)

Paths = Sequence[str | os.PathLike]


def build_table(
    kind: str,
    out_stem: str | os.PathLike,
    *,
    config_name: str,
    seeds: Sequence[int],
    folds: int,
    replicates: int,
    method_order: Sequence[str],
    bootstrap: Mapping[str, Any] | None = None,
    compare: Mapping[str, Any] | None = None,
    metrics: Paths = (),
    predictions: Paths = (),
    quality: Paths = (),
    tstr: Paths = (),
    tstr_predictions: Paths = (),
) -> Any:
    """Build table `kind` (`TABLE_KINDS`) and write `<out_stem>.{csv,md,tex}` (`write_table`).

    `metrics` / `predictions`: the arm runs' (classification, comparisons; paired by position) or the paper
    protocol's metrics files; `quality`, `tstr`, `tstr_predictions`: the generator quality table's. `bootstrap`
    holds `SubjectBootstrap`'s settings (`resamples`, `ci`, `seed`, `interval`), `compare` the comparisons'
    (`references`, `primary`). `seeds`, `folds` and `replicates` say how many runs each number pools (captions).
    """
    if kind not in TABLE_CAPTIONS:
        raise CatvaeError(f"unknown table kind {kind!r} (have {', '.join(TABLE_KINDS)})")
    caption, note, boot = TABLE_CAPTIONS[kind], None, None
    if kind == "generator_quality":
        frame, boot, note = _generator_quality(quality, tstr, tstr_predictions, bootstrap or {})
        if folds * len(seeds) > 1:
            caption += f"; other numbers: mean ± std over {folds} fold(s) x {len(seeds)} replicate(s)"
    elif kind == "paper_protocol":
        frame = classification_table(load_records(metrics), method_order=list(method_order))
        caption += "; " + spread_note(len(seeds), folds, replicates)
    else:
        records = load_records(metrics)
        boot = SubjectBootstrap.from_records(records, predictions, **(bootstrap or {}))
        if kind == "classification":
            frame = classification_table(records, list(method_order), boot.intervals())
            caption += "; " + spread_note(len(seeds), folds, replicates)
            note = interval_note(boot)
        else:
            frame, note = _comparisons(boot, compare, method_order, config_name)
    if boot is not None:
        runs = "generator replicates" if kind == "generator_quality" else "seeds"
        caption += f"; CIs hold {INTERVALS[boot.interval_kind]}: {boot.run_counts(runs)}"
    return write_table(frame, out_stem, caption=caption, config_name=config_name, seeds=list(seeds), note=note)


def _generator_quality(quality: Paths, tstr: Paths, tstr_predictions: Paths,
                       bootstrap: Mapping[str, Any]) -> tuple[pd.DataFrame, SubjectBootstrap, str]:
    """The generator quality table with TSTR intervals from the bootstrap over the TSTR runs, and its note."""
    records = load_records(tstr)
    boot = SubjectBootstrap.from_records(records, tstr_predictions, arm_key="model", seed_key="replicate",
                                         **bootstrap)
    frame = generator_quality_table(load_records(quality), tstr=records, tstr_intervals=boot.intervals())
    return frame, boot, tstr_note(boot)


def _comparisons(boot: SubjectBootstrap, compare: Mapping[str, Any] | None, method_order: Sequence[str],
                 config_name: str) -> tuple[pd.DataFrame, str]:
    """The paired comparisons against `compare['references']`, Holm over `compare['primary']`, and their note."""
    if not compare:
        raise CatvaeError("the comparisons table needs the evaluation.compare settings (references, primary)")
    alpha, primary = 1 - boot.ci, compare["primary"]
    comparisons = compare_arms(boot, references=compare["references"], primary=primary)
    frame = comparisons_table(comparisons, list(method_order), alpha=alpha, resamples=boot.resamples)
    return frame, comparison_note(boot, config_name, alpha, primary, holm_families(comparisons))
