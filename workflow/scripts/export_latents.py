"""Snakemake adapter: the conditional VAE's latent means of every real image, for the latent-space figure."""

from catvae.generators.evaluate import export_latents
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: export_latents(
        snakemake.input.checkpoint,
        snakemake.input.split,
        snakemake.output[0],
        device=snakemake.params.device,
        threads=snakemake.threads,
    ),
)
