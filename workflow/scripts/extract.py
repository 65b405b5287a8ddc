"""Snakemake adapter: turn the configured dataset into slices, manifest.csv, discarded.csv."""

from pathlib import Path

from catvae.data.kinds import prepare_dataset
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: prepare_dataset(
        dict(snakemake.params.dataset),
        out_dir=Path(snakemake.output.manifest).parent,
        cohort=snakemake.input.get("cohort"),
        threads=snakemake.threads,
    ),
)
