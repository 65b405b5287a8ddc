"""Snakemake adapter: real vs generated sample grid, per class and generator (fold 0, generator replicate 0)."""

from catvae.report.samples import collect_samples
from catvae.report.figures import sample_grid
from catvae.runner import run_step


def build():
    real, generated = collect_samples(
        snakemake.input.split,
        {tuple(pair): manifest for pair, manifest in zip(snakemake.params.pairs, snakemake.input.synthetic)},
        classes=list(snakemake.params.classes),
        image_size=snakemake.params.image_size,
        per_row=snakemake.params.per_row,
        seed=snakemake.params.seed,
    )
    return sample_grid(real, generated, snakemake.output[0])


run_step(snakemake, build)
