"""The CAT-VAE reference's classification protocol (its Tables 6 and 7), reproduced as one switch
(`classifier.paper_protocol`), apart from the held-out study and never mixed with it.

What the reference did, as far as its paper and notebooks show, and what this module does the same way:

- **Generators trained on every image of the class.** The notebooks train each class's VAE / CAT-VAE on the whole
  class folder; here `paper_split` marks every real image of the study `train`, and the paper-protocol generators
  (their own Snakemake jobs, `generators/paper_protocol/...`) train on that table, so their synthetic images carry
  the content of images that later land in the scored 20%, as the reference's did.
- **Pools sized to the target including every real image.** Table 7's totals are per class with the real images
  counted (at 1000: 830 real + 170 synthetic Tumor, 277 real + 723 synthetic NoTumor). `build_training_set` on
  `paper_split` does exactly that: the "training" images are all real images, extras fill each class up to the
  target, and `balance` is the majority class's count over the whole cohort (830 on BraTS 2020).
- **Keras' 80/20 split with seed 42** (`image_dataset_from_directory(validation_split=0.2, seed=42)`), see
  `keras_validation_split`, the same split whatever the classifier seed.
- **Fixed epochs, the last one scored** on the 20% (the reference validated on it and reported that number).

What still differs is listed in docs/DEPARTURES.md (rows 17 and 30-31): the order of the files Keras shuffled (so the
images drawn are not the reference's), and the CNN's input pipeline shared with the held-out arms.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from catvae.classifier.arms import TrainingSet, build_training_set
from catvae.classifier.train import (
    run_header,
    portable_table,
    arm_class_weights,
    check_options,
    load_table,
    score_selected,
    train_and_select,
)
from catvae.data.split import read_split
from catvae.device import resolve_device, set_threads
from catvae.errors import CatvaeError
from catvae.io import JobFiles, write_csv, write_json
from catvae.precision import amp_dtype as resolve_amp_dtype
from catvae.vocabulary.layout import PAPER_CLASSIFIER_FILES

log = logging.getLogger("catvae.classifier.paper_protocol")

PAPER_PROTOCOL = "paper-mixed-80/20"
PAPER_VALIDATION_FRACTION = 0.2
PAPER_NOTE = (
    "Reference protocol, NOT a held-out estimate: every real image of the study (test subjects included) and the "
    "arm's synthetic/augmented extras (per class up to the target, real images counted; generators trained on "
    "every image of the class) were pooled and split 80/20 at random with a fixed seed, so synthetic images are "
    "scored as if they were patients and slices of one subject fall on both sides; fixed epochs, last epoch scored."
)


def paper_split(split: pd.DataFrame) -> pd.DataFrame:
    """The study's every real image as a split table whose partitions are all `train`, in the split's row order.

    It feeds the paper-protocol generators (trained on every image of the class), their synthesis (targets resolved
    on the whole cohort) and the paper-protocol classifier (pool = these rows + the extras). Any fold's split.csv
    holds every image once, so any fold's gives the same table.
    """
    if split.empty:
        raise CatvaeError("paper protocol: the split table has no images")
    duplicated = split["path"].astype(str).duplicated()
    if duplicated.any():
        raise CatvaeError(f"paper protocol: split lists {split.loc[duplicated, 'path'].iloc[0]} more than once")
    return split.assign(partition="train").reset_index(drop=True)


def composition(sources: pd.Series, classes_col: pd.Series, classes: list[str]) -> dict[str, dict[str, int]]:
    """Per class: how many images, how many real, how many not (synthetic or augmented)."""
    real = sources == "real"
    return {
        c: {"total": int((classes_col == c).sum()), "real": int(((classes_col == c) & real).sum()),
            "synthetic": int(((classes_col == c) & ~real).sum())}
        for c in classes
    }


def keras_validation_split(n: int, seed: int, fraction: float = PAPER_VALIDATION_FRACTION) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """Indices (fit, score) as Keras' `image_dataset_from_directory(validation_split=fraction, seed=seed)` splits
    a list of `n` files: shuffle with `np.random.RandomState(seed)`, the last `int(fraction * n)` validate.

    The rule and the seed are the reference's; the files it shuffles are not in the same order (Keras lists class
    folders alphabetically and the pools differ), so the images drawn are not the reference's.
    """
    order = np.arange(n)
    np.random.RandomState(int(seed)).shuffle(order)
    n_score = int(fraction * n)
    if n_score < 1 or n_score >= n:
        raise CatvaeError(f"paper protocol: cannot split {n} pooled images {1 - fraction:.0%}/{fraction:.0%}")
    return np.sort(order[:-n_score]), np.sort(order[-n_score:])


def paper_training_set(split: pd.DataFrame, arm: str, classes: list[str], synthetic_manifests: dict[str, str],
                       seed: int) -> TrainingSet:
    """The arm's pool under the paper protocol: every real image of the study plus extras that bring each class to
    the target *including* its real images (`balance`: the cohort's majority count). Synthetic extras come from
    the paper-protocol generators' manifests; resampling baselines redraw from every real image of the class."""
    return build_training_set(paper_split(split), arm, classes, synthetic_manifests, seed)


@dataclass(frozen=True)
class PaperProtocolFiles(JobFiles):
    """Every file one paper-protocol run writes (see `JobFiles`)."""

    metrics: Path
    history: Path
    training_set: Path

    DEFAULT_NAMES = PAPER_CLASSIFIER_FILES


def run_paper_protocol(
    split_csv: str,
    outputs: PaperProtocolFiles | str | os.PathLike,
    *,
    arm: str,
    seed: int,
    classes: list[str],
    synthetic_manifests: dict[str, str],
    options: dict,
    config_name: str,
    paper_seed: int = 42,
    device: str = "auto",
    threads: int = 1,
) -> dict:
    """Train one arm's CNN under the reference's protocol and score it on the pool's seeded 20%.

    `split_csv` is any table of the study's images (`paper_split` marks them all training images);
    `synthetic_manifests` are the paper-protocol generators' (trained on every image of the class). The 80/20
    split uses `paper_seed`, not the classifier seed (the reference's split did not move with its runs); the
    classifier seed sets the weights and batch order. Writes the metrics (with `n_test_synthetic`: how many of
    the scored images are not real), the learning curve and the pool; returns the metrics.
    """
    options = {**check_options(options), "select": "last", "patience": None}
    files = outputs if isinstance(outputs, PaperProtocolFiles) else PaperProtocolFiles.in_folder(outputs)
    set_threads(threads)
    dev = resolve_device(device)
    amp = resolve_amp_dtype(options["amp"], dev, key="classifier.amp")
    training = paper_training_set(read_split(split_csv, classes), arm, classes, synthetic_manifests, seed)
    pool = training.table()
    fit_idx, score_idx = keras_validation_split(len(pool), paper_seed)
    log.info("arm %s seed %d [paper protocol]: pool of %d images (%s)", arm, seed, len(pool), training.counts)
    images, labels = load_table(pool, classes, options["image_size"], options["channels"])
    fit_data, score_data = (images[fit_idx], labels[fit_idx]), (images[score_idx], labels[score_idx])
    trained = train_and_select(fit_data, score_data, n_classes=len(classes), options=options, device=dev, seed=seed,
                               label=f"{arm} seed{seed} [paper protocol]", amp_dtype=amp,
                               class_weights=arm_class_weights(training.method, fit_data[1], len(classes)))
    history, train_seconds = trained.history, trained.train_seconds
    _, scores = score_selected(trained, score_data, classes, options, dev, amp)  # select 'last', no patience
    result = run_header(training, seed, PAPER_PROTOCOL, config_name, dev, options, 0, None, amp)
    del result["fold"]  # one pool for the whole study: no fold
    result.update(scores)
    fitted, scored = pool.iloc[fit_idx], pool.iloc[score_idx]
    n_synthetic = int((scored["source"] != "real").sum())
    result.update({"counts": composition(fitted["source"], fitted["class"], classes), "n_train": len(fit_idx),
                   "pool_counts": training.counts, "n_pool": len(pool),
                   "n_pool_real": int((pool["source"] == "real").sum()), "split_seed": int(paper_seed),
                   "n_test_synthetic": n_synthetic, "test_synthetic_share": n_synthetic / len(scored),
                   "train_seconds": train_seconds, "note": PAPER_NOTE})
    write_csv(files.history, history)
    write_csv(files.training_set, portable_table(pool.assign(scored=np.isin(np.arange(len(pool)), score_idx)),
                                            files.training_set.parent))
    write_json(files.metrics, result)
    log.info("arm %s seed %d [paper protocol]: accuracy %.3f on %d pooled images (%d of them not real)",
             arm, seed, result["accuracy"], result["n_test"], n_synthetic)
    return result


def write_paper_split(split_csv: str | os.PathLike, out: str | os.PathLike) -> pd.DataFrame:
    """`paper_split` of one fold's split.csv, written to `out` (the paper-protocol jobs' shared input), its paths
    relative to `out`'s folder as every manifest's are."""
    split = read_split(split_csv)
    folder = Path(out).resolve().parent
    table = paper_split(split.assign(path=[os.path.relpath(p, folder) for p in split["abspath"]]))
    write_csv(out, table.drop(columns="abspath"))
    log.info("paper protocol: %d images of %d subjects, every one a training image (%s)", len(table),
             table["subject"].nunique(), table["class"].value_counts().to_dict())
    return table
