"""Snakemake adapter: the study's every real image as one table whose images are all training images (the
paper-protocol generators and classifiers read it); the rule names the input split and the output."""

from catvae.classifier.paper_protocol import write_paper_split
from catvae.runner import run_step

run_step(snakemake, lambda: write_paper_split(snakemake.input[0], snakemake.output[0]))
