"""The reference CNN classifier, ported layer for layer from the authors' Keras notebooks (the paper's text does
not describe it).

Keras `Conv2D` defaults to 'valid' padding, so the feature map shrinks by 2 per conv and halves (floor) per
pool; matching that is what makes the parameter count (11,169,347 at 3x224x224 with 3 classes) agree exactly.
Keras also starts every `Conv2D` and `Dense` kernel Glorot-uniform with zero biases (PyTorch: Kaiming-uniform
kernels, uniform biases), so the layers are re-initialised that way here; the reference trains it with Keras'
Adam (`catvae.optim.KerasAdam`, epsilon 1e-7).

Not reproduced: the reference's first layer is `Rescaling(1./255)` on 0-255 images; the training code divides
by 255 before the model instead (same function, no parameters).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from catvae.errors import CatvaeError
from catvae.models.encoder import keras_conv_init_, keras_dense_init_


def output_units(n_classes: int) -> int:
    """Two classes use one sigmoid unit (as the reference did); more use one softmax unit per class."""
    if n_classes < 2:
        raise CatvaeError(f"the classifier needs at least 2 classes, got {n_classes}")
    return 1 if n_classes == 2 else n_classes


def _feature_side(image_size: int) -> int:
    side = image_size
    for _ in range(3):
        side = (side - 2) // 2  # 3x3 'valid' conv, then 2x2 max-pool (floor)
    return side


def build_cnn(image_size: int, channels: int, n_classes: int) -> nn.Module:
    """Conv 32/64/128 (3x3, ReLU, valid) each + 2x2 max-pool, Flatten, Dense 128 + ReLU, Dropout 0.5, output.

    The output layer returns *logits*: the sigmoid / softmax lives in the loss (`BCEWithLogitsLoss`,
    `CrossEntropyLoss`) and in prediction, which is numerically safer and has the same parameters.
    """
    if channels < 1:
        raise CatvaeError(f"config key 'classifier.channels' must be >= 1, got {channels}")
    side = _feature_side(int(image_size))
    if side < 1:
        raise CatvaeError(f"config key 'classifier.image_size' is too small for three conv+pool stages: {image_size}")
    model = nn.Sequential(
        nn.Conv2d(channels, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * side * side, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, output_units(n_classes)),
    )
    for layer in model:                       # Keras defaults: Glorot-uniform kernels, zero biases
        if isinstance(layer, nn.Conv2d):
            keras_conv_init_(layer)
        elif isinstance(layer, nn.Linear):
            keras_dense_init_(layer)
    return model


def logits_to_probs(logits: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Logits -> `[N, n_classes]` class probabilities (a single sigmoid unit becomes two columns)."""
    if n_classes == 2:
        p = torch.sigmoid(logits.reshape(-1))
        return torch.stack([1.0 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def loss_function(n_classes: int, class_weights: Sequence[float] | None = None) -> nn.Module:
    """Binary cross-entropy for the one-unit binary head, cross-entropy otherwise (mean over the batch).

    `class_weights` (one per class, e.g. from `inverse_frequency_weights`) weigh each class's loss terms. The
    one-unit head has a single logit, so its weights become `pos_weight = w[1] / w[0]`: the same ratio between the
    classes, on the scale of the negative class (a constant factor, which Adam's updates are invariant to).
    """
    if class_weights is None:
        return nn.BCEWithLogitsLoss() if n_classes == 2 else nn.CrossEntropyLoss()
    weights = torch.as_tensor([float(w) for w in class_weights], dtype=torch.float32)
    if weights.shape != (n_classes,) or not bool((weights > 0).all()):
        raise CatvaeError(f"class weights must be {n_classes} positive numbers, got {list(class_weights)}")
    if n_classes == 2:
        return nn.BCEWithLogitsLoss(pos_weight=(weights[1] / weights[0]).reshape(1))
    return nn.CrossEntropyLoss(weight=weights)


def inverse_frequency_weights(labels: Sequence[int], n_classes: int) -> list[float]:
    """`n / (n_classes * n_c)` per class c (scikit-learn's "balanced" weights): every class weighs the same in total."""
    from sklearn.utils.class_weight import compute_class_weight

    present = set(int(v) for v in labels)
    missing = [c for c in range(n_classes) if c not in present]
    if missing:
        raise CatvaeError(f"class-weighted loss: no training images of class index(es) {missing}")
    weights = compute_class_weight("balanced", classes=np.arange(n_classes), y=np.asarray(labels, dtype=int))
    return [float(w) for w in weights]


def loss_targets(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Integer labels in the form the loss wants: float `[N, 1]` for BCE, long `[N]` for CE."""
    return labels.float().reshape(-1, 1) if n_classes == 2 else labels.long()
