"""Snakemake adapter: learning curves (train / validation accuracy and loss) of every arm, mean over its runs."""

from pathlib import Path

import pandas as pd

from catvae.report.figures import learning_curves, read_history
from catvae.runner import run_step


def build():
    # Arm folders are classifier/fold<f>/<arm>/seed<k>/history.csv; an arm's curve is the mean of its runs.
    runs = {}
    for path in snakemake.input:
        runs.setdefault(Path(path).parent.parent.name, []).append(read_history(path))
    histories = {arm: pd.concat(frames, ignore_index=True) for arm, frames in runs.items()}
    return learning_curves(histories, snakemake.output[0], method_order=list(snakemake.params.method_order))


run_step(snakemake, build)
