"""VAE and CAT-VAE decoders of the Keras reference.

Dense(latent -> S/8 * S/8 * 64) ReLU, reshaped to 64 x S/8 x S/8; for the CAT-VAE one cross-attention
block whose queries are those S/8*S/8 tokens and whose keys/values are the encoder's S/4*S/4 feature
tokens; then Conv2DTranspose 64, 32, C (3x3, stride 2, 'same'; ReLU, ReLU, sigmoid).
At 3x128x128, latent 100: 1,711,043 parameters (VAE), 1,877,059 (CAT-VAE).

The decoder returns *logits*; the model applies the sigmoid, and the loss uses the logits so that the
binary cross-entropy is computed stably (same value as BCE on the sigmoid output).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from catvae.errors import CatvaeError
from catvae.models.attention import CrossAttentionBlock
from catvae.models.encoder import SameConvTranspose2d, keras_dense_init_


class ConvDecoder(nn.Module):
    """The reference decoder; with ``attention`` set it is the CAT-VAE decoder."""

    base_channels = 64

    def __init__(self, *, image_size: int, channels: int, latent_dim: int = 100,
                 attention: str | None = None) -> None:
        super().__init__()
        self.start = image_size // 8
        self.fc = keras_dense_init_(nn.Linear(latent_dim, self.base_channels * self.start**2))
        self.cross_attention = (
            CrossAttentionBlock(d_model=self.base_channels, mode=attention) if attention is not None else None
        )
        self.deconv1 = SameConvTranspose2d(self.base_channels, 64, 3, stride=2)
        self.deconv2 = SameConvTranspose2d(64, 32, 3, stride=2)
        self.deconv3 = SameConvTranspose2d(32, channels, 3, stride=2)

    def forward(self, z: Tensor, context: Tensor | None = None, *, channels_last: bool = False) -> Tensor:
        """z [B, latent] (+ context [B or 1, 64, S/4, S/4] for the CAT-VAE; 1 = shared) -> logits [B, C, S, S].

        ``channels_last`` runs the transposed convolutions NHWC and returns contiguous (NCHW) logits: the
        generation path on a CPU, where oneDNN's NHWC kernels are faster and gave the same numbers bit for
        bit (both presets, 1 and 2 threads); the attention's tokens are already NHWC, so the CAT-VAE needs no
        transpose. Training keeps the NCHW path exactly: through another layout its backward pass rounds
        differently (measured), and trained weights must not change with this.
        """
        b = z.shape[0]
        x = F.relu(self.fc(z)).view(b, self.base_channels, self.start, self.start)
        if self.cross_attention is not None:
            if context is None:
                raise CatvaeError("the CAT-VAE decoder needs encoder feature maps as context")
            tokens = x.flatten(2).transpose(1, 2)                      # [B, (S/8)^2, 64]
            memory = context.flatten(2).transpose(1, 2)                # [B or 1, (S/4)^2, 64]
            out = self.cross_attention(tokens, memory)                 # [B, (S/8)^2, 64]: NHWC
            x = (out.view(b, self.start, self.start, -1).permute(0, 3, 1, 2) if channels_last
                 else out.transpose(1, 2).reshape_as(x))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.deconv1(x))
        x = F.relu(self.deconv2(x))
        logits = self.deconv3(x)
        return logits.contiguous() if channels_last else logits
