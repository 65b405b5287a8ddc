"""Snakemake adapter: split the manifest by subject into train / val / test (one fold of a k-fold study)."""

from catvae.data.split import write_split
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: write_split(
        snakemake.input.manifest,
        snakemake.output.split,
        dict(snakemake.params.fractions),
        snakemake.params.seed,
        fold=int(snakemake.wildcards.fold),
        folds=snakemake.params.folds,
    ),
)
