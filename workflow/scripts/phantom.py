"""Snakemake adapter: write the embedded BraTS-format phantom cohort."""

from catvae.data.brats.phantom import write_phantom_cohort
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: write_phantom_cohort(
        snakemake.output[0],
        n_subjects=snakemake.params.n_subjects,
        shape=tuple(snakemake.params.shape),
        seed=snakemake.params.seed,
        threads=snakemake.threads,
    ),
)
