"""Snakemake adapter: train and score one classifier arm for one fold and seed; the rule names every output."""

from catvae.classifier.train import ClassifierFiles, run_arm
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: run_arm(
        snakemake.input.split,
        ClassifierFiles.of(dict(snakemake.output.items())),
        arm=snakemake.wildcards.arm,
        seed=int(snakemake.wildcards.seed),
        classes=list(snakemake.params.classes),
        synthetic_manifests={cls: snakemake.input[cls] for cls in snakemake.params.synthetic_classes},
        options=dict(snakemake.params.options),
        config_name=snakemake.params.config_name,
        fold=int(snakemake.wildcards.fold),
        replicate=snakemake.params.replicate,
        device=snakemake.params.device,
        threads=snakemake.threads,
    ),
)
