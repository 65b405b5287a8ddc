"""Classification metrics equal scikit-learn's on the same predictions; an undefined AUROC is null with a note."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support,
    roc_auc_score,
)

from catvae.classifier.evaluate import score
from catvae.errors import CatvaeError
from catvae.metrics.classification import classification_metrics


def _predictions(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), true] += 1.0  # better than chance, not perfect
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return true, probs


@pytest.mark.parametrize("k", [2, 3, 4])
def test_metrics_equal_scikit_learn(k):
    true, probs = _predictions(60, k, seed=k)
    classes = [f"c{i}" for i in range(k)]
    got = score(true, probs, loss=0.25, classes=classes)
    pred = probs.argmax(axis=1)
    labels = list(range(k))
    assert got["accuracy"] == accuracy_score(true, pred)
    assert got["balanced_accuracy"] == balanced_accuracy_score(true, pred)
    assert got["macro_f1"] == f1_score(true, pred, labels=labels, average="macro", zero_division=0)
    expected_auc = (roc_auc_score(true, probs[:, 1]) if k == 2
                    else roc_auc_score(true, probs, multi_class="ovr", average="macro", labels=labels))
    assert got["auroc"] == expected_auc and got["auroc_note"] is None
    precision, recall, f1, support = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    for i, c in enumerate(classes):
        assert got["per_class"][c] == {"precision": precision[i], "recall": recall[i], "f1": f1[i],
                                       "support": support[i]}
    assert got["confusion"] == confusion_matrix(true, pred, labels=labels).tolist()
    assert got["loss"] == 0.25 and got["n_test"] == 60


def test_binary_auroc_uses_the_positive_class_probability():
    true = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    # positives (class 1) score 0.4, 0.8; negatives 0.1, 0.7: 3 of 4 pairs ranked right
    assert classification_metrics(true, probs, ["NoTumor", "Tumor"])["auroc"] == pytest.approx(0.75)


def test_auroc_with_one_class_in_the_labels_is_null_with_a_note():
    true = np.array([1, 1, 1])
    probs = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    got = classification_metrics(true, probs, ["NoTumor", "Tumor"])
    assert got["auroc"] is None and "undefined" in got["auroc_note"] and "[0]" in got["auroc_note"]
    # balanced accuracy leaves out the absent class, as scikit-learn does; macro-F1 counts it as 0
    assert got["balanced_accuracy"] == pytest.approx(2 / 3)
    assert got["macro_f1"] == pytest.approx(0.4)
    three = classification_metrics(np.array([0, 1, 1]), np.full((3, 3), 1 / 3), ["a", "b", "c"])
    assert three["auroc"] is None and "[2]" in three["auroc_note"]


def test_bad_shapes_are_refused():
    with pytest.raises(CatvaeError, match="do not match"):
        classification_metrics(np.array([0, 1]), np.ones((3, 2)) / 2, ["a", "b"])
    with pytest.raises(CatvaeError, match="outside"):
        classification_metrics(np.array([0, 2]), np.ones((2, 2)) / 2, ["a", "b"])
