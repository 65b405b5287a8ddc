"""Training one classifier arm and scoring it once on the held-out real test set (and, if asked, the
reference's mixed-pool 80/20 protocol, in a separate, clearly labelled file).

Fixed epochs and no checkpoint selection, as in the paper: the validation partition is only watched
(learning curves), never used to choose a model, so nothing is tuned on data the test could depend on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, TensorDataset

from catvae.classifier.arms import TrainingSet, build_training_set, validate_split
from catvae.classifier.augment import apply_recipe
from catvae.classifier.cnn import build_cnn, loss_function, loss_targets
from catvae.classifier.evaluate import (
    check_no_leakage,
    predict,
    predictions_table,
    score,
    write_confusion,
)
from catvae.data.images import load_images, read_manifest
from catvae.device import resolve_device, seed_everything, set_threads
from catvae.errors import CatvaeError
from catvae.io import atomic_path, write_csv, write_json
from catvae.models import count_parameters
from catvae.optim import KerasAdam

log = logging.getLogger("catvae.classifier.train")

OPTION_KEYS = ("image_size", "channels", "epochs", "batch_size", "lr")
HELD_OUT = "held-out"
PAPER_PROTOCOL = "paper-mixed-80/20"
PAPER_NOTE = (
    "Reference protocol, NOT a held-out estimate: the real training images and the arm's synthetic/augmented "
    "extras were pooled and split 80/20 at random, so synthetic images are scored as if they were patients "
    "and slices of one subject can fall on both sides."
)


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
    return out


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


def fit(
    model: torch.nn.Module, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
    n_classes: int, options: dict[str, Any], device: torch.device, seed: int, label: str,
) -> pd.DataFrame:
    """Adam for a fixed number of epochs; returns the learning-curve table (one row an epoch)."""
    loader = DataLoader(
        TensorDataset(*train), batch_size=options["batch_size"], shuffle=True,
        generator=torch.Generator().manual_seed(int(seed)),
    )
    optimiser = KerasAdam(model.parameters(), lr=options["lr"])     # the reference's Keras 'adam' (epsilon 1e-7)
    criterion = loss_function(n_classes)
    rows = []
    for epoch in range(1, options["epochs"] + 1):
        start = time.perf_counter()
        model.train()
        total_loss, correct = 0.0, 0
        for xb, yb in loader:
            x = xb.to(device).float().div_(255.0)
            y = yb.to(device)
            optimiser.zero_grad(set_to_none=True)
            logits = model(x)
            loss = criterion(logits, loss_targets(y, n_classes))
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * len(x)
            pred = (logits.reshape(-1) > 0).long() if n_classes == 2 else logits.argmax(dim=1)
            correct += int((pred == y).sum())
        val_probs, val_loss = predict(model, *val, n_classes, options["batch_size"], device)
        val_acc = float((val_probs.argmax(axis=1) == val[1].numpy()).mean())
        seconds = time.perf_counter() - start
        n = len(train[1])
        rows.append({"epoch": epoch, "train_loss": total_loss / n, "train_acc": correct / n,
                     "val_loss": val_loss, "val_acc": val_acc, "seconds": seconds})
        log.info("%s epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1fs (%.1f images/s)",
                 label, epoch, options["epochs"], rows[-1]["train_loss"], rows[-1]["train_acc"],
                 val_loss, val_acc, seconds, n / seconds if seconds > 0 else float("nan"))
    return pd.DataFrame(rows, columns=["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"])


def _portable(table: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The training table with `path`/`origin` relative to `folder`, the manifests' convention (movable results)."""
    def rel(p: str) -> str:
        return os.path.relpath(p, folder) if p and os.path.isabs(p) else p

    frame = table.copy()
    frame.insert(1, "path", [rel(p) for p in frame.pop("abspath").astype(str)])
    frame["origin"] = [rel(p) for p in frame["origin"].astype(str)]
    return frame


def _composition(sources: pd.Series, classes_col: pd.Series, classes: list[str]) -> dict[str, dict[str, int]]:
    real = sources == "real"
    return {
        c: {"total": int((classes_col == c).sum()), "real": int(((classes_col == c) & real).sum()),
            "synthetic": int(((classes_col == c) & ~real).sum())}
        for c in classes
    }


def _header(training: TrainingSet, seed: int, protocol: str, config_name: str, device: torch.device,
            options: dict[str, Any]) -> dict[str, Any]:
    return {"arm": training.arm, "method": training.method, "target": training.target,
            "target_count": training.target_count, "seed": int(seed), "protocol": protocol,
            "classes": list(training.classes), "config_name": config_name, "device": str(device),
            "epochs": options["epochs"]}


def run_arm(
    split_csv: str,
    out_dir: str,
    *,
    arm: str,
    seed: int,
    classes: list[str],
    synthetic_manifests: dict[str, str],
    options: dict,
    config_name: str,
    paper_protocol: bool = False,
    device: str = "auto",
    threads: int = 1,
) -> dict:
    """Train the CNN on one arm's training set, score it once on the real test partition, write the results.

    Writes `checkpoint.pt`, `history.csv`, `predictions.csv`, `confusion.csv`, `confusion.png`,
    `training_set.csv` (every training image with its source and augmentation recipe), optionally
    `metrics_paper_protocol.json`, and `metrics.json` last; each file atomically. Returns the metrics dict.
    """
    options = check_options(options)
    set_threads(threads)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    split = validate_split(read_manifest(split_csv, required=("subject", "class", "path", "partition")), classes,
                           source=str(split_csv))
    training = build_training_set(split, arm, classes, synthetic_manifests, seed)
    parts = {p: split[split["partition"] == p].reset_index(drop=True) for p in ("val", "test")}
    for name, frame in parts.items():
        if frame.empty:
            raise CatvaeError(f"{split_csv} has no '{name}' partition rows")
    check_no_leakage(training, parts["test"], synthetic_manifests)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_classes = len(classes)
    size, channels = options["image_size"], options["channels"]
    table = training.table()
    log.info("arm %s seed %d: loading %d training images (%s), %d val, %d test at %dx%dx%d", arm, seed, len(table),
             json.dumps(training.counts), len(parts["val"]), len(parts["test"]), channels, size, size)
    train_data = load_table(table, classes, size, channels)
    val_data = load_table(parts["val"], classes, size, channels)
    test_data = load_table(parts["test"], classes, size, channels)

    seed_everything(seed)
    model = build_cnn(size, channels, n_classes).to(dev)
    start = time.perf_counter()
    history = fit(model, train_data, val_data, n_classes, options, dev, seed, label=f"{arm} seed{seed}")
    train_seconds = time.perf_counter() - start
    probs, test_loss = predict(model, *test_data, n_classes, options["batch_size"], dev)

    metrics = _header(training, seed, HELD_OUT, config_name, dev, options)
    metrics.update(score(test_data[1].numpy(), probs, test_loss, classes))
    metrics.update({"counts": training.counts, "n_train": len(table), "parameters": count_parameters(model),
                    "train_seconds": train_seconds,
                    # epoch throughput: training images per second of epoch wall time (validation pass included)
                    "epoch_images_per_s": len(table) * options["epochs"] / history["seconds"].sum()})

    with atomic_path(out / "checkpoint.pt") as tmp:
        torch.save({"model": model.state_dict(), "classes": classes, "options": options, "arm": arm,
                    "seed": seed, "epoch": options["epochs"], "n_classes": n_classes}, tmp)
    write_csv(out / "history.csv", history)
    write_csv(out / "predictions.csv", predictions_table(parts["test"], probs, classes))
    write_csv(out / "training_set.csv", _portable(table, out))
    write_confusion(out / "confusion.csv", out / "confusion.png", metrics["confusion"], classes,
                    title=f"{arm} seed {seed} (held-out test, n={metrics['n_test']})")
    if paper_protocol:
        paper = _paper_protocol(training, table, train_data, classes, options, dev, seed, config_name)
        write_json(out / "metrics_paper_protocol.json", paper)
        metrics["paper_protocol_accuracy"] = paper["accuracy"]
    write_json(out / "metrics.json", metrics)
    log.info("arm %s seed %d: held-out accuracy %.3f, loss %.4f (n_test=%d)", arm, seed, metrics["accuracy"],
             metrics["loss"], metrics["n_test"])
    return metrics


def _paper_protocol(training: TrainingSet, table: pd.DataFrame, data: tuple[torch.Tensor, torch.Tensor],
                    classes: list[str], options: dict[str, Any], dev: torch.device, seed: int,
                    config_name: str) -> dict[str, Any]:
    """The reference's protocol: a seeded random 80/20 split of the mixed real + extra pool, validated on the 20."""
    index = np.arange(len(table))
    if len(index) < 5:
        raise CatvaeError(f"paper protocol needs at least 5 pooled training images, got {len(index)}")
    fit_idx, score_idx = train_test_split(index, test_size=0.2, random_state=int(seed), shuffle=True)
    fit_idx, score_idx = np.sort(fit_idx), np.sort(score_idx)
    images, labels = data
    seed_everything(seed)
    model = build_cnn(options["image_size"], options["channels"], len(classes)).to(dev)
    score_data = (images[score_idx], labels[score_idx])
    fit(model, (images[fit_idx], labels[fit_idx]), score_data, len(classes), options, dev, seed,
        label=f"{training.arm} seed{seed} [paper protocol]")
    probs, loss = predict(model, *score_data, len(classes), options["batch_size"], dev)
    result = _header(training, seed, PAPER_PROTOCOL, config_name, dev, options)
    result.update(score(score_data[1].numpy(), probs, loss, classes))
    fitted = table.iloc[fit_idx]
    result.update({"counts": _composition(fitted["source"], fitted["class"], classes), "n_train": len(fit_idx),
                   "n_test_synthetic": int((table.iloc[score_idx]["source"] != "real").sum()),
                   "note": PAPER_NOTE})
    log.info("arm %s seed %d [paper protocol]: accuracy %.3f on %d pooled images (%d of them not real)",
             training.arm, seed, result["accuracy"], result["n_test"], result["n_test_synthetic"])
    return result
