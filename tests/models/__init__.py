"""Tests of catvae/models/ (one file per module, named after it), and the small models they build."""

from __future__ import annotations

import torch

from catvae.models import build_generator

CVAE_OPTIONS = {"latent_dim": 128, "class_embedding": 128, "modality_embedding": 64, "hidden": 256,
                "loss": {"mse": 1.0, "l1": 0.5, "perceptual": 0.1, "beta": 1.0, "gamma": 0.5},
                "beta_warmup": {"start": 2, "epochs": 10}, "epochs": 5, "lr": 5e-4}


def _build(name: str, size: int = 32, channels: int = 1, **kw):
    options = CVAE_OPTIONS if name == "cvae" else {"latent_dim": 16, "attention": kw.pop("attention", "faithful")}
    return build_generator(name, image_size=size, channels=channels, options=options, **kw)


def _conditions(name: str, n: int, n_classes: int = 2, n_modalities: int = 1) -> dict:
    if name != "cvae":
        return {}
    return {"labels": torch.arange(n) % n_classes, "modalities": torch.arange(n) % n_modalities}


def _decode_in_one_batch(model, z: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    """What generate() computed before it decoded in chunks: one NCHW decode of the whole batch."""
    with torch.no_grad():
        return torch.sigmoid(model.eval().decoder(z, *([] if context is None else [context])))


def _blobs(n: int, size: int = 32) -> torch.Tensor:
    """Bright Gaussian blobs at varied places on a dark field: learnable structure, unlike pure noise."""
    grid = torch.arange(size, dtype=torch.float32)
    centres = torch.linspace(8, size - 8, n)
    yy, xx = grid.view(1, -1, 1), grid.view(1, 1, -1)
    return torch.exp(-((yy - centres.view(-1, 1, 1)) ** 2 + (xx - centres.flip(0).view(-1, 1, 1)) ** 2) / 30).unsqueeze(1)
