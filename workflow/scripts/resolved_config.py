"""Snakemake adapter: write the settings this run uses (the validated config, defaults filled) and their files."""

from catvae.config import dump_config
from catvae.io import atomic_path
from catvae.runner import run_step


def write() -> None:
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(dump_config(snakemake.params.config, snakemake.params.config_files))


run_step(snakemake, write)
