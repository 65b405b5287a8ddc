"""The Keras layer semantics of the encoder (catvae/models/encoder.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from catvae.models.encoder import SameConv2d, SameConvTranspose2d

torch.set_num_threads(1)


def test_same_transposed_conv_is_the_adjoint_of_same_conv():
    """TF defines Conv2DTranspose(padding='same') as the gradient of Conv2D(padding='same')."""
    torch.manual_seed(0)
    conv, deconv = SameConv2d(3, 5, 3, stride=2), SameConvTranspose2d(5, 3, 3, stride=2)
    with torch.no_grad():
        deconv.weight.copy_(conv.weight)
        conv.bias.zero_(), deconv.bias.zero_()
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)
    assert conv(x).shape == y.shape and deconv(y).shape == x.shape
    torch.testing.assert_close((conv(x) * y).sum(), (x * deconv(y)).sum(), rtol=1e-4, atol=1e-4)
    # and 'same' padding goes after the image: the top-left output sees no padding
    torch.testing.assert_close(conv(x)[..., 0, 0], F.conv2d(x[..., :3, :3], conv.weight)[..., 0, 0])
