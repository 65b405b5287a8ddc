"""Snakemake adapter: train the CNN on one generator replicate's synthetic images only, score it on the fold's
real test images (TSTR); the rule names tstr.json and the test predictions."""

from catvae.classifier.tstr import run_tstr
from catvae.vocabulary.layout import replicate_seed
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: run_tstr(
        snakemake.input.split,
        {cls: snakemake.input[cls] for cls in snakemake.params.classes},
        snakemake.output.json,
        snakemake.output.predictions,
        model=snakemake.wildcards.model,
        classes=list(snakemake.params.classes),
        tstr_images=snakemake.params.tstr_images,
        targets=list(snakemake.params.targets),
        options=dict(snakemake.params.options),
        seed=replicate_seed(snakemake.params.seed, int(snakemake.wildcards.rep)),
        config_name=snakemake.params.config_name,
        select=snakemake.params.select,
        fold=int(snakemake.wildcards.fold),
        replicate=int(snakemake.wildcards.rep),
        device=snakemake.params.device,
        threads=snakemake.threads,
    ),
)
