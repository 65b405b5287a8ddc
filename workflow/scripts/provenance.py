"""Snakemake adapter: record config, seeds, package versions and code revision beside the results."""

from catvae.report.provenance import write_provenance
from catvae.runner import run_step

run_step(
    snakemake,
    lambda: write_provenance(
        snakemake.output[0],
        config=dict(snakemake.params.config),
        seeds=list(snakemake.params.seeds),
        config_files=list(snakemake.params.config_files),
    ),
)
