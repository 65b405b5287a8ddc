"""Training one classifier arm and scoring it once on the held-out real test set (the reference's mixed-pool
80/20 protocol is its own job: catvae.classifier.paper_protocol).

Model selection uses the real validation subjects only (`classifier.select`): `best_val` keeps the weights of the
epoch with the highest validation balanced accuracy (ties: the lower validation loss, then the earlier epoch), with
optional early stopping (`classifier.patience`); `last` keeps the final epoch (the reference scored its last epoch, epoch 20). The test images are
loaded only after training and selection are over, and `select_epoch` sees nothing but the validation history, so
the test set cannot influence which weights are scored. Balanced accuracy, not accuracy, chooses: on imbalanced
classes a model that predicts only the majority class has high accuracy and chance-level balanced accuracy.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score
from torch.utils.data import DataLoader

from catvae.classifier.arms import TrainingSet, build_training_set
from catvae.classifier.augment import apply_recipe
from catvae.classifier.cnn import build_cnn, inverse_frequency_weights, loss_function, loss_targets
from catvae.classifier.evaluate import (
    check_no_leakage,
    predict,
    predictions_table,
    score,
    write_confusion,
)
from catvae.config import defaults, schema_enum
from catvae.data.images import load_images
from catvae.data.split import read_split
from catvae.device import device_name, resolve_device, seed_everything, set_threads
from catvae.errors import CatvaeError
from catvae.io import JobFiles, atomic_path, write_csv, write_json
from catvae.logs import PROGRESS
from catvae.models import count_parameters
from catvae.optim import build_adam
from catvae.precision import amp_dtype as resolve_amp_dtype
from catvae.precision import autocast, dtype_name, grad_scaler, to_device, use_channels_last
from catvae.vocabulary.arms import WEIGHTED
from catvae.vocabulary.layout import CLASSIFIER_FILES

log = logging.getLogger("catvae.classifier.train")

OPTION_KEYS = ("image_size", "channels", "epochs", "batch_size", "lr")
#: Optional keys and their defaults (the schema's): which epoch is scored, early stopping.
SELECT_MODES = schema_enum("classifier", "select")
HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc", "seconds"]
HELD_OUT = "held-out"


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """The `classifier` config keys this stage reads, validated so a typo names the key."""
    missing = [k for k in OPTION_KEYS if k not in options]
    if missing:
        raise CatvaeError(f"config lacks classifier key(s) {['classifier.' + k for k in missing]}")
    out = {k: options[k] for k in OPTION_KEYS}
    for key in ("image_size", "channels", "epochs", "batch_size"):
        if not isinstance(out[key], (int, np.integer)) or isinstance(out[key], bool) or out[key] < 1:
            raise CatvaeError(f"config key 'classifier.{key}' must be a positive integer, got {out[key]!r}")
        out[key] = int(out[key])
    if not isinstance(out["lr"], (int, float)) or not out["lr"] > 0:
        raise CatvaeError(f"config key 'classifier.lr' must be a positive number, got {out['lr']!r}")
    out["lr"] = float(out["lr"])
    schema_defaults = defaults("classifier")
    amp = options.get("amp", schema_defaults["amp"])
    if not isinstance(amp, bool):
        raise CatvaeError(f"config key 'classifier.amp' must be true or false, got {amp!r}")
    out["amp"] = amp
    out.update({k: options.get(k, schema_defaults[k]) for k in ("select", "patience")})
    if out["select"] not in SELECT_MODES:
        raise CatvaeError(f"config key 'classifier.select' must be one of {list(SELECT_MODES)}, got {out['select']!r}")
    patience = out["patience"]
    if patience is not None:
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) or patience < 1:
            raise CatvaeError(f"config key 'classifier.patience' must be a positive integer or null, got {patience!r}")
        if out["select"] != "best_val":
            raise CatvaeError("config key 'classifier.patience' needs classifier.select: best_val (early stopping "
                              "keeps the best validation epoch)")
        out["patience"] = int(patience)
    return out


def select_epoch(history: pd.DataFrame, mode: str) -> int:
    """The epoch whose weights are scored, from the validation history alone (`epoch`, `val_balanced_acc`,
    `val_loss`): `best_val` = highest validation balanced accuracy, ties to the lower validation loss, then to the
    earlier epoch; `last` = the final epoch. Nothing about the test set is an argument, by design."""
    if history.empty:
        raise CatvaeError("no epochs to select from")
    if mode == "last":
        return int(history["epoch"].iloc[-1])
    if mode != "best_val":
        raise CatvaeError(f"config key 'classifier.select' must be one of {list(SELECT_MODES)}, got {mode!r}")
    ranked = history.sort_values(["val_balanced_acc", "val_loss", "epoch"], ascending=[False, True, True])
    return int(ranked["epoch"].iloc[0])


@dataclass(frozen=True)
class ClassifierFiles(JobFiles):
    """Every file one arm run writes (see `JobFiles`)."""

    metrics: Path
    history: Path
    predictions: Path
    confusion: Path
    confusion_png: Path
    checkpoint: Path
    training_set: Path

    DEFAULT_NAMES = CLASSIFIER_FILES


def load_table(
    table: pd.DataFrame, classes: list[str], image_size: int, channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of a table (`abspath`, `class`, optional `recipe`) as uint8 `[N, C, S, S]` plus int64 labels.

    Each file is read once however often it is duplicated; recipes are applied to the float image before
    quantising. uint8 storage is 4x smaller than float32 (the paper preset holds thousands of 3x224x224
    images) and loses nothing for 8-bit PNG inputs.
    """
    paths = table["abspath"].astype(str).tolist()
    unique = list(dict.fromkeys(paths))
    position = {p: i for i, p in enumerate(unique)}
    floats = load_images(unique, image_size, channels)
    recipes = table["recipe"].fillna("").astype(str).tolist() if "recipe" in table.columns else [""] * len(paths)
    out = np.empty((len(paths), channels, image_size, image_size), dtype=np.uint8)
    for i, (p, recipe) in enumerate(zip(paths, recipes)):
        image = floats[position[p]]
        if recipe:
            image = apply_recipe(image, json.loads(recipe))
        out[i] = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[c] for c in table["class"].astype(str)], dtype=torch.int64)
    return torch.from_numpy(out), labels


def epoch_batches(n: int, batch_size: int, seed: int) -> Iterator[list[torch.Tensor]]:
    """Each epoch's shuffled index batches (CPU int64), one list per epoch, forever.

    The order is exactly what `DataLoader(TensorDataset(...), shuffle=True, generator=Generator().manual_seed(seed))`
    produced when it collated the batches itself: the same loader and sampler run here over the indices alone
    (so every draw from the generator is the same), and the images are gathered on the device instead.
    """
    generator = torch.Generator().manual_seed(int(seed))
    loader = DataLoader(range(n), batch_size=batch_size, shuffle=True, generator=generator)
    while True:
        yield list(loader)


def fit(
    model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
    n_classes: int, options: dict[str, Any], device: torch.device, seed: int, label: str,
    amp_dtype: torch.dtype | None = None,
    class_weights: list[float] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Adam for up to `epochs` epochs; returns the learning-curve table (one row an epoch) and the selected epoch.

    After each epoch the validation pass feeds `select_epoch`; the weights of the epoch it picks are kept and loaded
    back at the end (`best_val`), and training stops early once `patience` epochs have passed without a better one.
    `class_weights` weigh the training loss only; validation losses stay unweighted, comparable across arms.

    The uint8 images are copied to `device` once and each batch is gathered there from the epoch's permutation
    (itself copied once per epoch); the loss and accuracy sums stay on the device until the epoch ends, so a
    step never waits for the host. `amp_dtype` runs the forward pass under autocast (CUDA only, see
    catvae.precision); the loss is computed in float32.
    """
    images, labels = train[0].to(device), train[1].to(device)
    val_on_device = (val[0].to(device), val[1].to(device))
    batches = epoch_batches(len(labels), options["batch_size"], seed)
    optimiser = build_adam(model.parameters(), lr=options["lr"])  # the reference's Keras 'adam' (epsilon 1e-7)
    scaler = grad_scaler(amp_dtype)
    channels_last = use_channels_last(device, amp_dtype)
    criterion = loss_function(n_classes, class_weights).to(device)
    select, patience = options.get("select", "last"), options.get("patience")
    rows: list[dict[str, float]] = []
    kept_state, kept_epoch = None, None
    for epoch in range(1, options["epochs"] + 1):
        start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        chunks = next(batches)
        for idx in to_device(torch.cat(chunks), device).split([len(c) for c in chunks]):
            x = images[idx].float().div_(255.0)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = labels[idx]
            optimiser.zero_grad(set_to_none=True)
            with autocast(device, amp_dtype):
                logits = model(x)
            logits = logits.float()
            loss = criterion(logits, loss_targets(y, n_classes))
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            loss_sum += loss.detach().double() * len(idx)  # float64, as the Python float sum it replaces
            pred = (logits.reshape(-1) > 0).long() if n_classes == 2 else logits.argmax(dim=1)
            correct += (pred == y).sum()
        val_probs, val_loss = predict(model, *val_on_device, n_classes, options["batch_size"], device, amp_dtype)
        val_pred, val_true = val_probs.argmax(axis=1), val[1].numpy()
        val_acc = float((val_pred == val_true).mean())
        val_bacc = float(balanced_accuracy_score(val_true, val_pred))
        seconds = time.perf_counter() - start
        n = len(train[1])
        rows.append({"epoch": epoch, "train_loss": float(loss_sum) / n, "train_acc": int(correct) / n,
                     "val_loss": val_loss, "val_acc": val_acc, "val_balanced_acc": val_bacc, "seconds": seconds})
        log.info("%s epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f balanced %.3f | %.1fs "
                 "(%.1f images/s)", label, epoch, options["epochs"], rows[-1]["train_loss"], rows[-1]["train_acc"],
                 val_loss, val_acc, val_bacc, seconds, n / seconds if seconds > 0 else float("nan"), extra=PROGRESS)
        if select == "best_val":
            best = select_epoch(pd.DataFrame(rows), select)
            if best == epoch:
                kept_state, kept_epoch = copy.deepcopy(model.state_dict()), epoch
            if patience is not None and epoch - best >= patience and epoch < options["epochs"]:
                log.info("%s: no better validation epoch than %d for %d epochs: stopping early", label, best, patience)
                break
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    chosen = select_epoch(history, select)
    if select == "best_val":
        if chosen != kept_epoch:  # cannot happen: the kept weights are those of the epoch select_epoch picks
            raise RuntimeError(f"{label}: selected epoch {chosen} but kept the weights of epoch {kept_epoch}")
        model.load_state_dict(kept_state)
    log.info("%s: scoring the weights of epoch %d of %d (select: %s)", label, chosen, len(history), select)
    return history, chosen


def build_model(options: dict[str, Any], n_classes: int, device: torch.device,
                amp_dtype: torch.dtype | None) -> torch.nn.Module:
    """The CNN on `device`, NHWC where mixed precision runs on CUDA (catvae.precision.use_channels_last)."""
    model = build_cnn(options["image_size"], options["channels"], n_classes).to(device)
    if use_channels_last(device, amp_dtype):
        model = model.to(memory_format=torch.channels_last)
    return model


def portable_table(table: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The training table with `path`/`origin` relative to `folder`, the manifests' convention (movable results)."""
    def rel(p: str) -> str:
        return os.path.relpath(p, folder) if p and os.path.isabs(p) else p

    frame = table.copy()
    frame.insert(1, "path", [rel(p) for p in frame.pop("abspath").astype(str)])
    frame["origin"] = [rel(p) for p in frame["origin"].astype(str)]
    return frame


def run_header(training: TrainingSet, seed: int, protocol: str, config_name: str, device: torch.device,
               options: dict[str, Any], fold: int, replicate: int | None,
               amp_dtype: torch.dtype | None) -> dict[str, Any]:
    """The fields every metrics file opens with: which arm, seed, fold, protocol, classes and device."""
    return {"arm": training.arm, "method": training.method, "target": training.target,
            "target_count": training.target_count, "seed": int(seed), "fold": int(fold),
            "replicate": None if replicate is None else int(replicate), "protocol": protocol,
            "classes": list(training.classes), "config_name": config_name, "device": str(device),
            "device_name": device_name(device), "amp_dtype": dtype_name(amp_dtype), "epochs": options["epochs"]}


def selection_record(history: pd.DataFrame, chosen: int, select: str, patience: int | None) -> dict[str, Any]:
    """What metrics files record about the scored epoch: the rule, the epoch, and its validation figures."""
    at = history.loc[history["epoch"] == chosen].iloc[0]
    return {"select": select, "patience": patience, "selected_epoch": int(chosen), "epochs_run": int(len(history)),
            "selected_val_balanced_accuracy": float(at["val_balanced_acc"]), "selected_val_loss": float(at["val_loss"])}


@dataclass(frozen=True)
class FittedCNN:
    """A trained CNN holding the weights of its selected epoch, with its learning curve and training time."""

    model: torch.nn.Module
    history: pd.DataFrame
    chosen: int
    train_seconds: float


def train_and_select(
    train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor], *, n_classes: int,
    options: dict[str, Any], device: torch.device, seed: int, label: str, amp_dtype: torch.dtype | None,
    class_weights: list[float] | None = None,
) -> FittedCNN:
    """Seed, build the CNN (`build_model`) and `fit` it, keeping the epoch `options['select']` picks on `val`.

    The training half that every classifier run shares (an arm, the paper protocol, TSTR), so the three seed,
    build, train and select the same way (AMP on CUDA included). The seed is set here, right before the weights are
    drawn: everything the caller loaded before draws no random numbers.
    """
    seed_everything(seed)
    model = build_model(options, n_classes, device, amp_dtype)
    start = time.perf_counter()
    history, chosen = fit(model, train, val, n_classes, options, device, seed, label=label, amp_dtype=amp_dtype,
                          class_weights=class_weights)
    return FittedCNN(model, history, chosen, time.perf_counter() - start)


def score_selected(
    fitted: FittedCNN, test: tuple[torch.Tensor, torch.Tensor], classes: list[str], options: dict[str, Any],
    device: torch.device, amp_dtype: torch.dtype | None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Score the selected weights once on `test` (uint8 images, labels): the class probabilities, and every metric of
    `score` plus the `selection_record` of `options['select']` / `options['patience']` (the scoring half every
    classifier run shares)."""
    probs, loss = predict(fitted.model, *test, len(classes), options["batch_size"], device, amp_dtype)
    metrics = score(test[1].numpy(), probs, loss, classes)
    metrics.update(selection_record(fitted.history, fitted.chosen, options["select"], options["patience"]))
    return probs, metrics


def arm_class_weights(method: str, labels: torch.Tensor, n_classes: int) -> list[float] | None:
    """Inverse-class-frequency loss weights for the `weighted` arm (from its own training labels); None otherwise."""
    return inverse_frequency_weights(labels.tolist(), n_classes) if method == WEIGHTED else None


def run_arm(
    split_csv: str,
    outputs: ClassifierFiles | str | os.PathLike,
    *,
    arm: str,
    seed: int,
    classes: list[str],
    synthetic_manifests: dict[str, str],
    options: dict,
    config_name: str,
    fold: int = 0,
    replicate: int | None = None,
    device: str = "auto",
    threads: int = 1,
) -> dict:
    """Train the CNN on one arm's training set, select its epoch on the real validation split, score it once on the
    real test partition, and write the results.

    `outputs` names every file (`ClassifierFiles`; a folder gives the default names): the checkpoint (the selected
    epoch's weights), history, predictions, confusion matrix (CSV, PNG), the training set (every training image with
    its source and augmentation recipe), and the metrics last; each file
    atomically. `fold` and `replicate` (the generator replicate a generator arm drew from) are recorded in the
    metrics. Returns the metrics dict.
    """
    options = check_options(options)
    files = outputs if isinstance(outputs, ClassifierFiles) else ClassifierFiles.in_folder(outputs)
    set_threads(threads)
    dev = resolve_device(device)  # on CUDA also switches on deterministic kernels (catvae.device)
    amp = resolve_amp_dtype(options["amp"], dev, key="classifier.amp")
    split = read_split(split_csv, classes)
    training = build_training_set(split, arm, classes, synthetic_manifests, seed)
    parts = {p: split[split["partition"] == p].reset_index(drop=True) for p in ("val", "test")}
    for name, frame in parts.items():
        if frame.empty:
            raise CatvaeError(f"{split_csv} has no '{name}' partition rows")
    check_no_leakage(training, parts["test"], synthetic_manifests)

    n_classes = len(classes)
    size, channels = options["image_size"], options["channels"]
    table = training.table()
    log.info("arm %s seed %d fold %d: loading %d training images (%s), %d val at %dx%dx%d", arm, seed, fold,
             len(table), json.dumps(training.counts), len(parts["val"]), channels, size, size)
    train_data = load_table(table, classes, size, channels)
    val_data = load_table(parts["val"], classes, size, channels)
    weights = arm_class_weights(training.method, train_data[1], n_classes)

    fitted = train_and_select(train_data, val_data, n_classes=n_classes, options=options, device=dev, seed=seed,
                              label=f"{arm} seed{seed}", amp_dtype=amp, class_weights=weights)
    model, history, chosen = fitted.model, fitted.history, fitted.chosen

    # Only now, with the weights fixed, are the test images read and scored.
    test_data = load_table(parts["test"], classes, size, channels)
    probs, scores = score_selected(fitted, test_data, classes, options, dev, amp)

    metrics = run_header(training, seed, HELD_OUT, config_name, dev, options, fold, replicate, amp)
    metrics.update(scores)
    metrics.update({"counts": training.counts, "n_train": len(table), "parameters": count_parameters(model),
                    "class_weights": weights, "train_seconds": fitted.train_seconds,
                    # epoch throughput: training images per second of epoch wall time (validation pass included)
                    "epoch_images_per_s": len(table) * len(history) / history["seconds"].sum()})

    with atomic_path(files.checkpoint) as tmp:
        torch.save({"model": model.state_dict(), "classes": classes, "options": options, "arm": arm,
                    "seed": seed, "fold": fold, "epoch": chosen, "epochs_run": len(history),
                    "n_classes": n_classes}, tmp)
    write_csv(files.history, history)
    write_csv(files.predictions, predictions_table(parts["test"], probs, classes))
    write_csv(files.training_set, portable_table(table, files.training_set.parent))
    write_confusion(files.confusion, files.confusion_png, metrics["confusion"], classes,
                    title=f"{arm} seed {seed} fold {fold} (held-out test, n={metrics['n_test']})")
    write_json(files.metrics, metrics)
    log.info("arm %s seed %d fold %d: held-out accuracy %.3f, loss %.4f (n_test=%d, epoch %d)", arm, seed, fold,
             metrics["accuracy"], metrics["loss"], metrics["n_test"], chosen)
    return metrics

