"""Classification metrics that suit imbalanced test sets, all from scikit-learn.

Plain accuracy rewards a classifier that always says the majority class (the demo's real-only baseline scores
0.86 with a minority recall of 0), so a run also reports:

- balanced accuracy: the mean of the per-class recalls (classes absent from ``true`` are left out, as
  scikit-learn does);
- macro-F1: the unweighted mean of the per-class F1 over *every* class (a class never predicted scores 0);
- AUROC: threshold-free ranking quality. Binary: on the probability of the positive class, which is the
  second class of the class list (scikit-learn's convention for labels 0/1); three or more classes: the
  unweighted (macro) mean of the one-vs-rest AUROCs. It is undefined when a class has no example (or every
  example) in ``true``; then it is ``None`` and ``auroc_note`` says why.

Per-class precision / recall / F1 / support, accuracy and the confusion matrix complete the record.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from catvae.errors import CatvaeError


def auroc(true: np.ndarray, probs: np.ndarray) -> tuple[float | None, str | None]:
    """AUROC of integer labels `true` against class probabilities `probs` `[N, K]`, or ``(None, note)``.

    Checked before scikit-learn is called, so an undefined AUROC is a note rather than a warning and a NaN.
    """
    true = np.asarray(true)
    probs = np.asarray(probs, dtype=float)
    n_classes = probs.shape[1]
    counts = np.bincount(true, minlength=n_classes)
    if (counts == 0).any() or (counts == len(true)).any():
        missing = [k for k in range(n_classes) if counts[k] == 0]
        return None, (f"n/a: class index(es) {missing} absent from the true labels (n={len(true)}), "
                      "so AUROC is undefined")
    if n_classes == 2:
        return float(roc_auc_score(true, probs[:, 1])), None
    return float(roc_auc_score(true, probs, multi_class="ovr", average="macro", labels=list(range(n_classes)))), None


def classification_metrics(true: Sequence[int] | np.ndarray, probs: np.ndarray, classes: Sequence[str],
                           pred: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
    """Every metric of one set of predictions, as plain JSON-ready values.

    `true` and `pred` are class indices into `classes`; `pred` defaults to the argmax of `probs` `[N, K]`.
    Returns ``per_class`` (precision, recall, f1, support per class name), ``accuracy``,
    ``balanced_accuracy``, ``macro_f1``, ``auroc``, ``auroc_note``, ``confusion`` (rows true, columns
    predicted) and ``n_test``.
    """
    true = np.asarray(true, dtype=int)
    probs = np.asarray(probs, dtype=float)
    classes = list(classes)
    if probs.ndim != 2 or probs.shape != (len(true), len(classes)):
        raise CatvaeError(f"predictions: probabilities of shape {probs.shape} do not match "
                          f"{len(true)} labels x {len(classes)} classes {classes}")
    if len(true) == 0:
        raise CatvaeError("predictions: no test examples to score")
    pred = probs.argmax(axis=1) if pred is None else np.asarray(pred, dtype=int)
    labels = list(range(len(classes)))
    for name, values in (("true", true), ("pred", pred)):
        if values.min() < 0 or values.max() >= len(classes):
            raise CatvaeError(f"predictions: {name} labels outside 0..{len(classes) - 1}")
    precision, recall, f1, support = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    value, note = auroc(true, probs)
    return {
        "per_class": {
            c: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                "support": int(support[i])}
            for i, c in enumerate(classes)
        },
        "accuracy": float(accuracy_score(true, pred)),
        "balanced_accuracy": _balanced_accuracy(true, pred),
        "macro_f1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
        "auroc": value,
        "auroc_note": note,
        "confusion": confusion_matrix(true, pred, labels=labels).tolist(),
        "n_test": int(len(true)),
    }


def _balanced_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's balanced accuracy, without its warning when `pred` has a class `true` lacks."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(true, pred))
