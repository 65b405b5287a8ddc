"""Snakemake adapter: forest plot of each arm's paired difference in the primary metric (figures/effects.png)."""

from catvae.report.figures import effects_forest
from catvae.report.statistics import SubjectBootstrap, compare_arms
from catvae.report.tables import load_records
from catvae.runner import run_step


def draw():
    params = snakemake.params
    records = load_records(snakemake.input.metrics)
    bootstrap = SubjectBootstrap.from_records(records, snakemake.input.predictions, **params.bootstrap)
    primary = params.compare["primary"]
    comparisons = compare_arms(bootstrap, references=params.compare["references"], primary=primary)
    return effects_forest(comparisons, snakemake.output[0], metric=primary, alpha=1 - bootstrap.ci,
                          method_order=list(params.method_order), note=bootstrap.describe())


run_step(snakemake, draw)
