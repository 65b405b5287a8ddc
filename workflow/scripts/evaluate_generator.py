"""Snakemake adapter: quality figures of one generator replicate of one fold for one class."""

from catvae.generators.evaluate import evaluate_generator
from catvae.vocabulary.layout import replicate_seed
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: evaluate_generator(
        snakemake.input.checkpoint,
        snakemake.input.split,
        snakemake.input.manifest,
        snakemake.output.quality,
        class_name=snakemake.wildcards.cls,
        # the declared weights file, else the configured path with no file there (FID/KID n/a, saying where)
        inception_weights=snakemake.input.get("inception_weights") or snakemake.params.inception_weights,
        max_fid_images=snakemake.params.max_fid_images,
        near_copy_ssim=snakemake.params.near_copy_ssim,
        diversity_pairs=snakemake.params.diversity_pairs,
        timing_images=snakemake.params.timing_images,
        device=snakemake.params.device,
        seed=replicate_seed(snakemake.params.seed, int(snakemake.wildcards.rep)),
        config_name=snakemake.params.config_name,
        train_stats=snakemake.input.stats,
        synthetic_info=snakemake.input.info,
        fold=int(snakemake.wildcards.fold),
        replicate=int(snakemake.wildcards.rep),
        threads=snakemake.threads,
    ),
)
