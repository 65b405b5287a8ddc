"""Snakemake adapter: train one generator replicate of one fold (per class for vae/catvae, over all classes for
cvae); the rule names the checkpoint, history and statistics files."""

from catvae.generators.train import GeneratorFiles, train_generator
from catvae.runner import run_step
from catvae.vocabulary.layout import replicate_seed

run_step(
    snakemake,
    lambda: train_generator(
        snakemake.wildcards.model,
        snakemake.input.split,
        GeneratorFiles.of(dict(snakemake.output.items())),
        group=snakemake.wildcards.group,
        image_size=snakemake.params.image_size,
        channels=snakemake.params.channels,
        options=dict(snakemake.params.options),
        classes=list(snakemake.params.classes),
        modalities=list(snakemake.params.modalities),
        # a paper-protocol generator has no replicate wildcard: it is the one generator, replicate 0's seed
        seed=replicate_seed(snakemake.params.seed, int(snakemake.wildcards.get("rep", 0))),
        device=snakemake.params.device,
        threads=snakemake.threads,
    ),
)
