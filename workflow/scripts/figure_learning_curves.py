"""Snakemake adapter: learning curves (train / validation accuracy and loss) of every arm, mean over its runs."""

import pandas as pd

from catvae.report.figures import learning_curves, read_history
from catvae.runner import run_step
from catvae.vocabulary.layout import classifier_runs


def build():
    # The rule lists every run's history.csv in classifier_runs' order (fold, arm, seed), so each file's arm is known
    # without reading it from the path; an arm's curve is the mean of its runs.
    arms, seeds = list(snakemake.params.arms), list(snakemake.params.seeds)
    folds = range(len(snakemake.input) // (len(arms) * len(seeds)))
    runs = {}
    for path, (_, arm, _) in zip(snakemake.input, classifier_runs(folds, arms, seeds), strict=True):
        runs.setdefault(arm, []).append(read_history(path))
    histories = {arm: pd.concat(frames, ignore_index=True) for arm, frames in runs.items()}
    return learning_curves(histories, snakemake.output[0], method_order=list(snakemake.params.method_order))


run_step(snakemake, build)
