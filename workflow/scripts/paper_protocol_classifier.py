"""Snakemake adapter: train and score one classifier arm under the reference's protocol (one pool for the whole
study, seeded 80/20 split, last epoch); the rule names every output."""

from catvae.classifier.paper_protocol import PaperProtocolFiles, run_paper_protocol
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: run_paper_protocol(
        snakemake.input.split,
        PaperProtocolFiles.of(dict(snakemake.output.items())),
        arm=snakemake.wildcards.arm,
        seed=int(snakemake.wildcards.seed),
        classes=list(snakemake.params.classes),
        synthetic_manifests={cls: snakemake.input[cls] for cls in snakemake.params.synthetic_classes},
        options=dict(snakemake.params.options),
        config_name=snakemake.params.config_name,
        paper_seed=snakemake.params.paper_seed,
        device=snakemake.params.device,
        threads=snakemake.threads,
    ),
)
