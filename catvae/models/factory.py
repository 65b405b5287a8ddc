"""Build a generator from its config block (through its model's options class), and count parameters the way the
reference tables do."""

from __future__ import annotations

from typing import Any

from torch import nn

from catvae.errors import CatvaeError
from catvae.models.vae import GenerativeModel
from catvae.registry import generator


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (``requires_grad``), the figure Keras' ``summary()`` and the references report."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_generator(name: str, *, image_size: int, channels: int, options: dict[str, Any],
                    n_classes: int = 1, n_modalities: int = 1) -> GenerativeModel:
    """Make generator `name`'s model (a `catvae.registry` entry) for images ``channels x image_size x image_size``.

    ``options`` is that model's block of the config (``generators.<name>``); the model class's options class
    (``options_type``, e.g. ``catvae.models.vae.CatVAEOptions``) reads it over the schema's defaults and builds the
    model. Keys other than the ones it reads (epochs, lr, ...) belong to training.
    """
    spec = generator(name)
    if not isinstance(image_size, int) or image_size < 8:
        raise CatvaeError(f"config key 'dataset.image_size' must be an integer >= 8, got {image_size!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise CatvaeError(f"config key 'dataset.channels' must be a positive integer, got {channels!r}")
    if image_size % spec.size_multiple:
        raise CatvaeError(
            f"config key 'dataset.image_size' must be divisible by {spec.size_multiple} for {name}, got {image_size}"
        )
    options_type = spec.model_type().options_type
    return options_type.read(name, options).build(
        image_size=image_size, channels=channels, n_classes=n_classes, n_modalities=n_modalities
    )
