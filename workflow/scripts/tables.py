"""Snakemake adapter: build one paper-shaped table (CSV, Markdown, LaTeX) from per-job JSON / CSV files."""

from pathlib import Path

from catvae.report.study_tables import build_table
from catvae.runner import run_step


def build():
    params, files = snakemake.params, snakemake.input
    return build_table(
        params.kind, Path(snakemake.output.csv).with_suffix(""), config_name=params.config_name,
        seeds=list(params.seeds), folds=params.folds, replicates=params.replicates,
        method_order=list(params.method_order), bootstrap=params.get("bootstrap"), compare=params.get("compare"),
        metrics=files.get("metrics", list(files)),  # the paper-protocol table's input: its metrics files, unnamed
        predictions=files.get("predictions", []), quality=files.get("quality", []), tstr=files.get("tstr", []),
        tstr_predictions=files.get("tstr_predictions", []),
    )


run_step(snakemake, build)
