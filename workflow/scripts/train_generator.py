"""Snakemake adapter: train one generator (per class for vae/catvae, over all classes for cvae)."""

from pathlib import Path

from catvae.generators.train import train_generator
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: train_generator(
        snakemake.wildcards.model,
        snakemake.input.split,
        str(Path(snakemake.output.checkpoint).parent),
        group=snakemake.wildcards.group,
        image_size=snakemake.params.image_size,
        channels=snakemake.params.channels,
        options=dict(snakemake.params.options),
        classes=list(snakemake.params.classes),
        modalities=list(snakemake.params.modalities),
        seed=snakemake.params.seed,
        device=snakemake.params.device,
        threads=snakemake.threads,
    ),
)
