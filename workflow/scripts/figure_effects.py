"""Snakemake adapter: forest plot of each arm's paired balanced-accuracy difference (figures/effects.png)."""

from catvae.report.figures import effects_forest
from catvae.report.statistics import SubjectBootstrap, compare_arms
from catvae.report.tables import load_records
from catvae.runner import run_step


def draw():
    params = snakemake.params
    records = load_records(snakemake.input.metrics)
    bootstrap = SubjectBootstrap.from_records(records, snakemake.input.predictions, **params.bootstrap)
    return effects_forest(compare_arms(bootstrap), snakemake.output[0], alpha=1 - bootstrap.ci,
                          method_order=list(params.method_order), note=bootstrap.describe())


run_step(snakemake, draw)
