"""Train on synthetic, test on real (TSTR): what one generator's images carry about the classes, on their own.

The paper's CNN is trained on a generator's synthetic images alone (the first N of each class's manifest, the same
prefix rule the arms use; N = `quality.tstr_images`, by default the largest synthesis target) for
`classifier.epochs`, and one epoch's weights are scored once on the fold's real test subjects. Which epoch is
`quality.tstr_select`:

* ``best_val`` (default): the epoch with the best balanced accuracy on the fold's real *validation* subjects, the
  rule every classification arm follows (`classifier.select: best_val`), so the score reads as what an arm's CNN
  reaches with synthetic images alone. Why not the last epoch: on the demo the CNN fits the synthetic images to
  98-99% training accuracy within 5 epochs, and its real-validation balanced accuracy peaks at epoch 2 and then
  falls (a demo CAT-VAE of 120 epochs: 0.78 at epoch 2, 0.50 at epoch 5), so the last epoch measures how far the
  CNN has learnt the synthetic images' own texture as much as what they carry of the classes. The test subjects
  never steer the choice, so a generator whose images carry nothing still scores about chance on them; the cost
  is that a generator with swapped classes scores near chance rather than below it.
* ``last``: no real image steers the score.

The real validation curve is recorded either way (``val_balanced_accuracy_by_epoch``).
The score is balanced accuracy, whose chance level is 1 / (number of classes)
whatever the class mix, so a generator whose images carry nothing of their class scores about 0.5 on two classes.
It needs no pretrained weights, unlike FID, and it asks the question the study cares about.

The test predictions are written too, in the classifier arms' predictions.csv format, so the generator quality table
can put a subject-bootstrap confidence interval on the score (one bare number of 81 slices of 9 subjects cannot say
whether it beats chance).
"""

from __future__ import annotations

import logging
import os
from typing import Literal, Sequence

import pandas as pd

from catvae.classifier.arms import synthetic_rows
from catvae.classifier.evaluate import predictions_table
from catvae.classifier.train import SELECT_MODES, check_options, load_table, score_selected, train_and_select
from catvae.data.split import read_split
from catvae.device import resolve_device, set_threads
from catvae.errors import CatvaeError
from catvae.generators.synthesis import tstr_count
from catvae.io import write_csv, write_json
from catvae.precision import amp_dtype as resolve_amp_dtype
from catvae.precision import dtype_name

log = logging.getLogger("catvae.classifier.tstr")

PROTOCOL = "train-synthetic-test-real"


def training_table(split: pd.DataFrame, synthetic_manifests: dict[str, str], *, model: str, classes: list[str],
                   tstr_images: int | Literal["largest"], targets: Sequence[int | str]) -> tuple[pd.DataFrame, int]:
    """What a TSTR run trains on, and how many images per class: the first N rows of each class's synthetic
    manifest, N = `tstr_count` ('largest' and 'balance' resolved with the split's largest real training class).

    Refuses a class without a manifest and a "synthetic" image that is a real image of the split (any partition):
    TSTR must train on synthetic images alone."""
    majority = int(split.loc[split["partition"] == "train", "class"].value_counts().max())
    n_per_class = tstr_count(tstr_images, targets, majority)
    missing = [c for c in classes if c not in synthetic_manifests]
    if missing:
        raise CatvaeError(f"TSTR of {model!r} needs a synthetic manifest of every class; missing {missing}")
    table = pd.concat([synthetic_rows(model, c, n_per_class, synthetic_manifests) for c in classes],
                      ignore_index=True)
    reused = sorted(set(table["abspath"]) & set(split["abspath"]))
    if reused:
        raise CatvaeError(f"TSTR of {model!r}: real image(s) {reused[:3]} are listed as synthetic")
    return table, n_per_class


def run_tstr(
    split_csv: str,
    synthetic_manifests: dict[str, str],
    out_json: str | os.PathLike,
    predictions_csv: str | os.PathLike,
    *,
    model: str,
    classes: list[str],
    tstr_images: int | Literal["largest"],
    targets: Sequence[int | str],
    options: dict,
    seed: int,
    config_name: str,
    select: str = "best_val",
    fold: int = 0,
    replicate: int = 0,
    device: str = "auto",
    threads: int = 1,
) -> dict:
    """Train the CNN on `model`'s synthetic images of every class (`synthetic_manifests`: class -> manifest) for
    `options['epochs']` epochs, score the epoch `select` picks ('best_val' | 'last', see the module) on the real
    test split, through the arms' own path (`train_and_select`, `score_selected`: the same seeding, CNN, selection
    and metrics, and autocast on CUDA when `options['amp']`, the config key `classifier.amp`); write the test
    predictions to `predictions_csv` (``path, subject, true, pred, prob_<class>...``, as an arm's predictions.csv:
    what the subject bootstrap reads) and the scores to `out_json` (written last, so a run that stopped early leaves
    no tstr.json); return the scores."""
    options = check_options(options)
    if select not in SELECT_MODES:  # the arms' epoch rules, under TSTR's own config key
        raise CatvaeError(f"config key 'quality.tstr_select' must be one of {list(SELECT_MODES)}, got {select!r}")
    set_threads(threads)
    dev = resolve_device(device)
    amp = resolve_amp_dtype(options["amp"], dev, key="classifier.amp")  # as the arms: autocast on CUDA only
    split = read_split(split_csv, classes)
    table, n_per_class = training_table(split, synthetic_manifests, model=model, classes=classes,
                                        tstr_images=tstr_images, targets=targets)
    parts = {p: split[split["partition"] == p].reset_index(drop=True) for p in ("val", "test")}
    for name, frame in parts.items():
        if frame.empty:
            raise CatvaeError(f"{split_csv} has no '{name}' partition rows")

    size, channels = options["image_size"], options["channels"]
    log.info("TSTR %s fold %d replicate %d: %d synthetic images per class, %d real val%s", model, fold, replicate,
             n_per_class, len(parts["val"]), f", AMP {dtype_name(amp)}" if amp else "")
    train_data = load_table(table, classes, size, channels)
    val_data = load_table(parts["val"], classes, size, channels)
    fixed = {**options, "select": select, "patience": None}
    fitted = train_and_select(train_data, val_data, n_classes=len(classes), options=fixed, device=dev, seed=seed,
                              label=f"TSTR {model}", amp_dtype=amp)

    test_data = load_table(parts["test"], classes, size, channels)  # read only once the weights are fixed
    probs, scores = score_selected(fitted, test_data, classes, fixed, dev, amp)
    result = {"model": model, "fold": int(fold), "replicate": int(replicate), "protocol": PROTOCOL,
              "classes": list(classes), "n_per_class": n_per_class, "n_train": len(table), "seed": int(seed),
              "config_name": config_name, "device": str(dev), "train_seconds": fitted.train_seconds}
    result.update(scores)
    result["val_balanced_accuracy_by_epoch"] = [float(v) for v in fitted.history["val_balanced_acc"]]
    write_csv(predictions_csv, predictions_table(parts["test"], probs, classes))
    write_json(out_json, result)
    log.info("TSTR %s fold %d replicate %d: balanced accuracy %.3f on %d real test images (epoch %d)", model, fold,
             replicate, result["balanced_accuracy"], result["n_test"], fitted.chosen)
    return result

