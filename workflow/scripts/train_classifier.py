"""Snakemake adapter: train and score one classifier arm for one seed."""

from pathlib import Path

from catvae.classifier.train import run_arm
from catvae.runner import run_step

synthetic = {cls: str(Path(snakemake.input[cls]) / "manifest.csv") for cls in snakemake.params.synthetic_classes}

run_step(
    snakemake,
    lambda: run_arm(
        snakemake.input.split,
        str(Path(snakemake.output.metrics).parent),
        arm=snakemake.wildcards.arm,
        seed=int(snakemake.wildcards.seed),
        classes=list(snakemake.params.classes),
        synthetic_manifests=synthetic,
        options=dict(snakemake.params.options),
        config_name=snakemake.params.config_name,
        paper_protocol=snakemake.params.paper_protocol,
        device=snakemake.params.device,
        threads=snakemake.threads,
    ),
)
