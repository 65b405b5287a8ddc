"""The CAT-VAE paper's encoder, and the Keras layer semantics the VAE / CAT-VAE port depends on.

The reference is Keras. Three Keras behaviours differ from PyTorch's defaults and change what the
network computes (not its parameter count), so they are reproduced here and reused by the decoders:

* ``padding='same'`` with stride 2 pads *after* the image only (TensorFlow puts the odd pixel of padding
  at the bottom/right); PyTorch's ``padding=1`` pads both sides, which shifts every feature by a pixel.
* ``Conv2DTranspose(padding='same', strides=2)`` keeps the first ``2*H`` rows of the full transposed
  convolution and drops the last; PyTorch's ``padding=1, output_padding=1`` drops the first instead.
* Kernels start Glorot-uniform and biases at zero (PyTorch: Kaiming-uniform kernels, uniform biases).

Flatten/Reshape order (Keras is channels-last) is a fixed permutation of the dense weights, so with
i.i.d. initial weights it changes nothing about the model family or its training; NCHW is kept.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def glorot_uniform_(tensor: Tensor, fan_in: int, fan_out: int) -> Tensor:
    """Keras' default kernel initialiser, with the fans Keras computes for the kernel's Keras shape."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return tensor.uniform_(-limit, limit)


def keras_dense_init_(layer: nn.Linear) -> nn.Linear:
    """Initialise a Linear like ``keras.layers.Dense``: Glorot-uniform kernel, zero bias."""
    glorot_uniform_(layer.weight, layer.in_features, layer.out_features)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def keras_conv_init_(layer: nn.Conv2d | nn.ConvTranspose2d) -> nn.Module:
    """Initialise a (transposed) convolution like Keras' ``Conv2D``: Glorot-uniform kernel, zero bias.

    Keras' fans are ``k*k*in`` and ``k*k*out``; the Glorot limit is symmetric in them, so PyTorch's weight
    layout (out, in, k, k) for Conv2d or (in, out, k, k) for ConvTranspose2d gives the same limit.
    """
    receptive = layer.weight[0, 0].numel()
    glorot_uniform_(layer.weight, layer.weight.shape[1] * receptive, layer.weight.shape[0] * receptive)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding for one axis: (before, after), the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``keras.layers.Conv2D(padding='same')``: output ``ceil(S/stride)``, padding placed as TensorFlow does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        keras_conv_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        top, bottom = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """``keras.layers.Conv2DTranspose(padding='same')``: output ``S*stride``, cropped as TensorFlow does."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        if kernel_size < stride:
            raise ValueError("SameConvTranspose2d needs kernel_size >= stride")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        keras_conv_init_(self)   # Keras kernel shape (k, k, out, in): fans out*k*k and in*k*k
        self._crop_before = (kernel_size - stride) // 2

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        h, w = x.shape[-2] * self.stride[0], x.shape[-1] * self.stride[1]
        full = super().forward(x)
        c = self._crop_before
        return full[..., c : c + h, c : c + w]


class Encoder(nn.Module):
    """Conv 32 s2 -> Conv 64 s2 (3x3, ReLU) -> Flatten -> Dense 256 ReLU -> (mu, logvar).

    Besides (mu, logvar) it returns the 64 x S/4 x S/4 feature maps, which the CAT-VAE decoder attends
    to. At 3x128x128 and latent 100 it has 16,848,264 parameters, as the Keras reference.
    """

    feature_channels = 64

    def __init__(self, *, image_size: int, channels: int, latent_dim: int = 100, hidden: int = 256) -> None:
        super().__init__()
        self.image_size = image_size
        self.channels = channels
        self.feature_size = math.ceil(math.ceil(image_size / 2) / 2)
        self.conv1 = SameConv2d(channels, 32, 3, stride=2)
        self.conv2 = SameConv2d(32, self.feature_channels, 3, stride=2)
        self.fc = keras_dense_init_(nn.Linear(self.feature_channels * self.feature_size**2, hidden))
        self.fc_mu = keras_dense_init_(nn.Linear(hidden, latent_dim))
        self.fc_logvar = keras_dense_init_(nn.Linear(hidden, latent_dim))

    def features(self, x: Tensor) -> Tensor:
        """The convolutional feature maps ``[B, 64, S/4, S/4]`` (the CAT-VAE's key/value context)."""
        return F.relu(self.conv2(F.relu(self.conv1(x))))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        feats = self.features(x)
        h = F.relu(self.fc(feats.flatten(1)))
        return self.fc_mu(h), self.fc_logvar(h), feats
