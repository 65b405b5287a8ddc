"""Snakemake adapter: quality figures of one generator for one class."""

from pathlib import Path

from catvae.generators.evaluate import evaluate_generator
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: evaluate_generator(
        snakemake.input.checkpoint,
        snakemake.input.split,
        str(Path(snakemake.input.synthetic) / "manifest.csv"),
        snakemake.output.quality,
        class_name=snakemake.wildcards.cls,
        inception_weights=snakemake.params.inception_weights,
        max_fid_images=snakemake.params.max_fid_images,
        near_copy_ssim=snakemake.params.near_copy_ssim,
        device=snakemake.params.device,
        seed=snakemake.params.seed,
        config_name=snakemake.params.config_name,
        threads=snakemake.threads,
    ),
)
