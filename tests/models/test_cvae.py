"""The conditional VAE (catvae/models/cvae.py): the reference's parameter count layer by layer, its heads, its loss,
the KL warm-up."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from catvae.models import build_generator, count_parameters
from models import CVAE_OPTIONS, _build

torch.set_num_threads(1)

REFERENCE_CVAE_COUNT = 1_155_993     # figure reported by the MedMNIST reference (DESIGN.md section 2)
# This port at 1x28x28, 21 classes, 3 modalities, layer by layer (the table in catvae/models/cvae.py).
CVAE_LAYERS = {
    "encoder_convs": 165_024,            # Conv 1->32->64->128 (k4) + BatchNorm
    "class_embedding": 21 * 128,
    "modality_embedding": 3 * 64,
    "encoder_fc": 1344 * 256 + 256,      # [1,152 features, 192 embeddings] -> 256
    "fc_mu": 256 * 128 + 128,
    "fc_logvar": 256 * 128 + 128,
    "decoder_fc": (320 * 256 + 256) + (256 * 1152 + 1152),   # mirror: [z, embeddings] -> 256 -> 128x3x3
    "decoder_convs": 164_641,            # ConvT 128->64->32->1 (k4) + BatchNorm
    "class_head": (128 * 128 + 128 + 256) + (128 * 64 + 64 + 128) + (64 * 21 + 21),   # 128 -> 128 -> 64 -> 21
    "modality_head": (128 * 64 + 64 + 128) + (64 * 3 + 3),                           # 128 -> 64 -> 3
}
BEFORE_HEADS_COUNT = 1_115_545       # single Linear heads, no decoder hidden layer (the port before issue 9)


def test_cvae_parameter_count_at_medmnist_size(capsys):
    model = build_generator("cvae", image_size=28, channels=1, options=CVAE_OPTIONS, n_classes=21, n_modalities=3)
    ours = count_parameters(model)
    per_layer = {name: count_parameters(getattr(model, name)) for name in CVAE_LAYERS}
    with capsys.disabled():
        print(f"\ncvae 1x28x28, 21 classes, 3 modalities: ours {ours:,} trainable (+{model.frozen_parameters:,} frozen "
              f"perceptual); reference reports {REFERENCE_CVAE_COUNT:,}; difference {ours - REFERENCE_CVAE_COUNT:,}")
    assert per_layer == CVAE_LAYERS                      # every layer as the docstring's table says
    assert ours == sum(CVAE_LAYERS.values()) == REFERENCE_CVAE_COUNT
    # The difference from the earlier port is exactly the specified heads plus the decoder's mirrored hidden layer.
    old_heads, old_decoder_fc = (128 * 21 + 21) + (128 * 3 + 3), 320 * 1152 + 1152
    assert ours - BEFORE_HEADS_COUNT == (CVAE_LAYERS["class_head"] + CVAE_LAYERS["modality_head"] - old_heads
                                         + CVAE_LAYERS["decoder_fc"] - old_decoder_fc)
    assert model.frozen_parameters == 4_800
    out = model(torch.rand(2, 1, 28, 28), torch.tensor([0, 20]), torch.tensor([0, 2]))
    assert out["recon"].shape == (2, 1, 28, 28)       # the output_padding mirror lands on 28, no crop
    assert out["class_logits"].shape == (2, 21) and out["modality_logits"].shape == (2, 3)


def test_cvae_heads_are_the_specified_mlps():
    """class 128 -> 128 -> 64 -> 21 and modality 128 -> 64 -> 3; hidden layers Linear, BatchNorm, LeakyReLU, Dropout."""
    model = build_generator("cvae", image_size=28, channels=1, options=CVAE_OPTIONS, n_classes=21, n_modalities=3)
    kinds = [type(m).__name__ for m in model.class_head]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout"] * 2 + ["Linear"]
    assert [m.out_features for m in model.class_head if isinstance(m, torch.nn.Linear)] == [128, 64, 21]
    assert [m.p for m in model.class_head if isinstance(m, torch.nn.Dropout)] == [0.3, 0.2]
    assert [type(m).__name__ for m in model.modality_head] == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout", "Linear"]
    assert [m.out_features for m in model.modality_head if isinstance(m, torch.nn.Linear)] == [64, 3]
    assert model.class_head[0].in_features == model.modality_head[0].in_features == model.latent_dim == 128


def test_cvae_loss_is_per_image_and_balanced_at_every_size():
    """Pixel terms are sums per image, the KL a sum over latent dims: an image twice as wide has 4x the pixel terms
    and the same KL, as in an ELBO (a per-pixel mean would divide the reconstruction by the pixel count)."""
    torch.manual_seed(0)
    model = _build("cvae", n_classes=2).eval()
    x = torch.rand(3, 1, 32, 32)
    out = model(x, torch.tensor([0, 1, 0]))
    terms = model.loss(x, out, torch.tensor([0, 1, 0]), epoch=50)
    torch.testing.assert_close(terms["mse"], ((out["recon"] - x) ** 2).sum() / 3)
    torch.testing.assert_close(terms["l1"], (out["recon"] - x).abs().sum() / 3)
    kl = -0.5 * (1 + out["logvar"] - out["mu"] ** 2 - out["logvar"].exp()).sum(dim=1).mean()
    torch.testing.assert_close(terms["kl"], kl)
    # Doubling the side (same content, upsampled) multiplies the pixel terms by 4, not 1.
    big = F.interpolate(x, scale_factor=2, mode="nearest")
    recon = F.interpolate(out["recon"], scale_factor=2, mode="nearest")
    big_terms = model.loss(big, {**out, "recon": recon}, torch.tensor([0, 1, 0]), epoch=50)
    torch.testing.assert_close(big_terms["mse"], 4 * terms["mse"])
    torch.testing.assert_close(big_terms["kl"], terms["kl"])


def test_cvae_beta_warmup_schedule():
    model = _build("cvae", n_classes=2)          # beta 1.0, start 2, over 10 epochs
    assert [model.beta_at(e) for e in (0, 2, 7, 12, 40)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    x = torch.rand(2, 1, 32, 32)
    out = model(x, torch.tensor([0, 1]))
    assert model.loss(x, out, torch.tensor([0, 1]), epoch=7)["beta"].item() == pytest.approx(0.5)
    assert model.loss(x, out, torch.tensor([0, 1]), epoch=7)["ce_modality"].item() == 0.0
