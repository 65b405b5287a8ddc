"""Snakemake adapter: generate one class's synthetic images for the largest target (smaller targets are prefixes)
and for the TSTR score, from one generator replicate of one fold; the rule names the manifest, info and images."""

from catvae.generators.synthesis import SynthesisFiles, synthesise
from catvae.vocabulary.layout import replicate_seed
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: synthesise(
        snakemake.input.checkpoint,
        snakemake.input.split,
        SynthesisFiles.of(dict(snakemake.output.items())),
        class_name=snakemake.wildcards.cls,
        targets=list(snakemake.params.targets),
        tstr_images=snakemake.params.tstr_images,
        context_mode=snakemake.params.context,
        sampling=dict(snakemake.params.sampling),
        # a paper-protocol generator has no replicate wildcard: it is the one generator, replicate 0's seed
        seed=replicate_seed(snakemake.params.seed, int(snakemake.wildcards.get("rep", 0))),
        device=snakemake.params.device,
        batch_size=snakemake.params.batch_size,
        threads=snakemake.threads,
    ),
)
