"""Snakemake adapter: grid of confusion matrices, one panel per arm."""

from catvae.io import read_json
from catvae.report.figures import confusion_grid
from catvae.runner import run_step

run_step(snakemake, lambda: confusion_grid([read_json(p) for p in snakemake.input], snakemake.output[0]))
