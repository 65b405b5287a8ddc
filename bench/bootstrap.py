"""Benchmark the tables' bootstrap at the paper's scale: time to build, to draw every arm's intervals, and to
compute every paired comparison (vs real only, oversampling and the VAE at the same target).

Synthetic binary predictions (no training): `--subjects` test subjects split over `--folds` folds, `--slices`
slices each, `--seeds` seeds, the arms of the paper's design for `--targets` targets (none, weighted, and
vae / catvae / cvae / oversample / classic at each target), `--resamples` resamples, `--interval` two_level or
subjects. The defaults are the BraTS 2020 paper study: 369 subjects, 5 folds x 3 seeds, 3 targets (17 arms),
9 slices per subject (3 per plane), 9999 resamples, two-level. The demo: `--subjects 9 --folds 1 --targets 2`.

    .venv/bin/python bench/bootstrap.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catvae.report.statistics import Run, SubjectBootstrap, compare_arms  # noqa: E402

CLASSES = ["NoTumor", "Tumor"]


def synthetic_runs(subjects: int, folds: int, slices: int, seeds: int, targets: int, seed: int = 0) -> list[Run]:
    rng = np.random.default_rng(seed)
    names = [f"BraTS_{i:03d}" for i in range(subjects)]
    names_of = {f: [s for i, s in enumerate(names) if i % folds == f] for f in range(folds)}
    arm_names = ["none", "weighted"] + [f"{method}@{t}" for method in ("vae", "catvae", "cvae", "oversample", "classic")
                                        for t in range(targets)]
    runs = []
    for arm in arm_names:
        for k in range(seeds):
            for fold, members in names_of.items():
                n = len(members) * slices
                true = rng.integers(0, 2, n)
                p = np.clip(rng.normal(0.3 + 0.4 * true, 0.25), 0, 1)
                frame = pd.DataFrame({"subject": np.repeat(members, slices), "true": np.array(CLASSES)[true],
                                      "prob_NoTumor": 1 - p, "prob_Tumor": p})
                runs.append(Run(arm, frame, fold=fold, seed=k))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=369)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--slices", type=int, default=9)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--targets", type=int, default=3)
    parser.add_argument("--resamples", type=int, default=9999)
    parser.add_argument("--interval", choices=["two_level", "subjects"], default="two_level")
    args = parser.parse_args()
    runs = synthetic_runs(args.subjects, args.folds, args.slices, args.seeds, args.targets)
    arms = len({r.arm for r in runs})
    import catvae.metrics.classification  # noqa: F401  (import time is not bootstrap time)

    start = time.perf_counter()
    bootstrap = SubjectBootstrap(runs, CLASSES, resamples=args.resamples, seed=0, interval=args.interval)
    built = time.perf_counter()
    bootstrap.intervals()
    intervals = time.perf_counter()
    comparisons = compare_arms(bootstrap)
    compared = time.perf_counter()
    rows = sum(len(r.predictions) for r in runs if r.arm == "none")
    print(f"{arms} arms x {rows} predictions ({args.subjects} subjects, {args.folds} folds, {args.seeds} seeds), "
          f"{args.resamples} resamples, {args.interval}")
    print(f"build (per-subject statistics, draws): {built - start:6.2f} s")
    print(f"intervals (3 metrics x {arms} arms):   {intervals - built:6.2f} s")
    print(f"comparisons ({len(comparisons)} rows):          {compared - intervals:6.2f} s")


if __name__ == "__main__":
    main()
