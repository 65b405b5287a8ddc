"""Snakemake adapter: generate one class's synthetic images for the largest target (smaller targets are prefixes)."""

from catvae.generators.synthesis import synthesise
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: synthesise(
        snakemake.input.checkpoint,
        snakemake.input.split,
        snakemake.output[0],
        class_name=snakemake.wildcards.cls,
        targets=list(snakemake.params.targets),
        context_mode=snakemake.params.context,
        sampling=dict(snakemake.params.sampling),
        seed=snakemake.params.seed,
        device=snakemake.params.device,
        batch_size=snakemake.params.batch_size,
        threads=snakemake.threads,
    ),
)
