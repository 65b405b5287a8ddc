"""Snakemake adapter: the conditional VAE's latent space (PCA), by class and by modality."""

from catvae.report.figures import latent_space
from catvae.runner import run_step

run_step(snakemake, lambda: latent_space(snakemake.input[0], snakemake.output[0]))
