"""Snakemake adapter: learning curves (train / validation accuracy and loss) of every arm."""

from pathlib import Path

from catvae.report.figures import learning_curves, read_history
from catvae.runner import run_step


def build():
    # Arm folders are classifier/<arm>/seed<k>/history.csv; one curve per arm (its first seed).
    histories = {}
    for path in snakemake.input:
        arm = Path(path).parent.parent.name
        if arm not in histories:
            histories[arm] = read_history(path)
    return learning_curves(histories, snakemake.output[0])


run_step(snakemake, build)
