"""Scoring a trained classifier: the leakage guard, predictions, metrics, and the confusion-matrix files.

The held-out protocol is only meaningful if the test set is real images of subjects the classifier never
saw, so that is checked in code (raising, so it cannot be optimised away) before anything is scored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from catvae.classifier.arms import TrainingSet  # noqa: E402
from catvae.classifier.cnn import logits_to_probs, loss_function, loss_targets  # noqa: E402
from catvae.data.images import read_manifest  # noqa: E402
from catvae.errors import CatvaeError  # noqa: E402
from catvae.io import atomic_path, write_csv  # noqa: E402
from catvae.metrics.classification import classification_metrics  # noqa: E402
from catvae.precision import autocast, to_device, use_channels_last  # noqa: E402


def check_no_leakage(training: TrainingSet, test: pd.DataFrame, synthetic_manifests: dict[str, str]) -> None:
    """Raise if a training subject, a training image, or any synthetic image is in the test set.

    Subjects are compared because slices of one brain are near-duplicates; paths are compared against the
    training table (which includes the sources of duplicated / augmented images) and against every
    synthetic manifest given, whether or not this arm drew from it.
    """
    train_table = training.table()
    shared_ids = set(train_table["subject"].astype(str)) & set(test["subject"].astype(str))
    shared = sorted(s for s in shared_ids if s and s != "nan")  # "" (synthetic) and "nan" (unknown) are no subject
    if shared:
        raise CatvaeError(f"leakage: test subject(s) {shared[:5]} (of {len(shared)}) also appear in the training set")
    test_paths = set(test["abspath"].astype(str))
    reused = sorted(test_paths & set(train_table["abspath"].astype(str)))
    if reused:
        raise CatvaeError(f"leakage: test image(s) {reused[:3]} (of {len(reused)}) are in the training set")
    for cls, manifest in sorted(synthetic_manifests.items()):
        if not Path(manifest).is_file():
            continue  # a class that needed no synthetic images may have no manifest at all
        synthetic = set(read_manifest(manifest)["abspath"].astype(str))
        fake = sorted(test_paths & synthetic)
        if fake:
            raise CatvaeError(f"leakage: test image(s) {fake[:3]} are listed in synthetic manifest {manifest}")


@torch.no_grad()
def predict(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, n_classes: int, batch_size: int,
    device: torch.device, amp_dtype: torch.dtype | None = None,
) -> tuple[np.ndarray, float]:
    """Class probabilities `[N, n_classes]` and the mean loss, in eval mode (no dropout).

    `images` are uint8 `[N, C, S, S]` (kept compact in memory), on the host or already on `device`, scaled to
    [0, 1] per batch on the device. Probabilities and the loss sum stay on the device until the end (one read
    back, not one per batch); the loss sum is float64, as the Python float sum it replaces. `amp_dtype` runs the
    model under autocast on CUDA (catvae.precision); probabilities and loss are computed in float32.
    """
    model.eval()
    criterion = loss_function(n_classes)
    channels_last = use_channels_last(device, amp_dtype)
    probs, total = [], torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, len(images), batch_size):
        x = to_device(images[start : start + batch_size], device).float().div_(255.0)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = to_device(labels[start : start + batch_size], device)
        with autocast(device, amp_dtype):
            logits = model(x)
        logits = logits.float()
        total += criterion(logits, loss_targets(y, n_classes)).double() * len(x)
        probs.append(logits_to_probs(logits, n_classes))
    return torch.cat(probs).cpu().numpy(), float(total) / max(1, len(images))


def score(true: np.ndarray, probs: np.ndarray, loss: float, classes: list[str]) -> dict[str, Any]:
    """Every metric of :func:`catvae.metrics.classification.classification_metrics` (scikit-learn) plus the loss.

    Per-class precision / recall / F1 / support, accuracy, balanced accuracy, macro-F1, AUROC (``None`` with
    ``auroc_note`` when undefined), the confusion matrix and ``n_test``.
    """
    result = classification_metrics(true, probs, classes)
    result["loss"] = float(loss)
    return result


def write_confusion(csv_path: str | os.PathLike, png_path: str | os.PathLike, confusion: list[list[int]],
                    classes: list[str], title: str) -> None:
    """`confusion.csv` (rows true, columns predicted, named by class) and a labelled `confusion.png`."""
    frame = pd.DataFrame(confusion, index=classes, columns=classes)
    frame.index.name = "true\\predicted"
    write_csv(csv_path, frame.reset_index())
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(classes), 1.2 + 1.2 * len(classes)))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=classes).plot(ax=ax, colorbar=False, cmap="Blues")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def predictions_table(test: pd.DataFrame, probs: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """`path, subject, true, pred, prob_<class>...` with `path` as written in split.csv."""
    frame = pd.DataFrame(
        {
            "path": test["path"].to_numpy(),
            "subject": test["subject"].to_numpy(),
            "true": test["class"].to_numpy(),
            "pred": [classes[i] for i in probs.argmax(axis=1)],
        }
    )
    for i, c in enumerate(classes):
        frame[f"prob_{c}"] = probs[:, i]
    return frame
