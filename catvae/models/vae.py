"""The generator interface shared by every model, and the paper's VAE and CAT-VAE.

``GenerativeModel`` is what training, synthesis and the quality metrics code against: ``forward`` for
training (sampled z), ``loss`` for the objective, and the inference helpers (``reconstruct``,
``generate``, ``encode_mu``, ``context_features``), which always run in eval mode without gradients and
restore the model's previous mode, so calling them mid-training is safe.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from catvae.errors import CatvaeError
from catvae.models.attention import check_attention_mode
from catvae.models.decoders import ConvDecoder
from catvae.models.encoder import Encoder
from catvae.models.options import GeneratorOptions, positive_int


def kl_per_image(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions, one value per image."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """z = mu + sigma * eps, differentiable in mu and logvar."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


class GenerativeModel(nn.Module):
    """Base class: image geometry, latent size, input checks and the eval-mode inference wrapper."""

    name: str = ""
    #: The class that reads the model's `generators.<name>` block and builds it (`catvae.models.options`).
    options_type: ClassVar[type[GeneratorOptions]]
    uses_context: bool = False  # the decoder attends to encoder features: generation needs a context
    encodes: bool = True  # has an encoder (encode_mu, reconstruct); a diffusion model has none

    def __init__(self, *, image_size: int, channels: int, latent_dim: int) -> None:
        super().__init__()
        self.image_size, self.channels, self.latent_dim = image_size, channels, latent_dim

    # -- shared helpers --------------------------------------------------------------------------
    @contextmanager
    def _inference(self) -> Iterator[None]:
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def check_images(self, x: Tensor) -> None:
        """Raise CatvaeError unless x is [B, channels, image_size, image_size]."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise CatvaeError(
                f"{self.name}: images must be [B, {expected[0]}, {expected[1]}, {expected[2]}] "
                f"(dataset.channels, dataset.image_size); got {list(x.shape)}"
            )

    def draw_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I) drawn on the CPU, then moved to the model's device.

        Why the CPU: CPU and CUDA generators produce different streams from the same seed, so drawing on the
        model's device would make a seed give other images on a GPU than on a CPU. `generator` must therefore
        be a CPU `torch.Generator` (None draws from torch's global CPU generator).
        """
        if n < 1:
            raise CatvaeError(f"{self.name}: number of images to generate must be >= 1, got {n}")
        if generator is not None and generator.device.type != "cpu":
            raise CatvaeError(
                f"{self.name}: latents are drawn on the CPU so a seed gives the same images on every device; "
                f"pass a CPU torch.Generator, not one on {generator.device}"
            )
        z = torch.randn(n, self.latent_dim, generator=generator, device="cpu")
        return z.to(self.device)

    def latents_for(self, n: int, latents: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """The z to decode: `latents` when given (e.g. drawn from a density fitted ex post), else N(0, I)."""
        if latents is None:
            return self.draw_latents(n, generator)
        if tuple(latents.shape) != (n, self.latent_dim):
            raise CatvaeError(f"{self.name}: latents must be [{n}, {self.latent_dim}]; got {list(latents.shape)}")
        return latents.to(self.device, torch.float32)

    # -- interface (documented here, implemented by subclasses) ----------------------------------
    def forward(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def loss(self, x: Tensor, out: dict[str, Tensor], labels: Tensor | None = None,
             modalities: Tensor | None = None, epoch: int = 0) -> dict[str, Tensor]:
        raise NotImplementedError

    def reconstruct(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def generate(self, n: int, *, context: Tensor | None = None, labels: Tensor | None = None,
                 modalities: Tensor | None = None, generator: torch.Generator | None = None,
                 latents: Tensor | None = None) -> Tensor:
        """Decode `n` images from `latents` (default: z ~ N(0, I) drawn from `generator`)."""
        raise NotImplementedError

    def encode_mu(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> Tensor:
        raise NotImplementedError

    def context_features(self, x: Tensor) -> Tensor | None:
        """Encoder feature maps used as decoder context (CAT-VAE only); None for other models."""
        return None


def _rows(context: Tensor | None, start: int, count: int) -> Tensor | None:
    """The context of images ``start .. start+count``: a shared ``[1, ...]`` context as it is."""
    return context if context is None or context.shape[0] == 1 else context[start: start + count]


class VAE(GenerativeModel):
    """The paper's VAE: ``Encoder`` + ``ConvDecoder``; loss = BCE summed over pixels + KL, mean over batch."""

    name = "vae"
    #: Images decoded at once by ``generate`` on a CPU (see there).
    CPU_DECODE_CHUNK = 32

    def __init__(self, *, image_size: int, channels: int, latent_dim: int = 100) -> None:
        super().__init__(image_size=image_size, channels=channels, latent_dim=latent_dim)
        self.encoder = Encoder(image_size=image_size, channels=channels, latent_dim=latent_dim)
        self.decoder = self._make_decoder()

    def _make_decoder(self) -> ConvDecoder:
        return ConvDecoder(image_size=self.image_size, channels=self.channels, latent_dim=self.latent_dim)

    def _decode(self, z: Tensor, context: Tensor | None, channels_last: bool = False) -> Tensor:
        return self.decoder(z, channels_last=channels_last)

    def forward(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> dict[str, Tensor]:
        self.check_images(x)
        mu, logvar, feats = self.encoder(x)
        z = reparameterize(mu, logvar) if self.training else mu      # eval: deterministic (validation) losses
        logits = self._decode(z, feats)
        return {"recon": torch.sigmoid(logits), "logits": logits, "mu": mu, "logvar": logvar}

    def loss(self, x: Tensor, out: dict[str, Tensor], labels: Tensor | None = None,
             modalities: Tensor | None = None, epoch: int = 0) -> dict[str, Tensor]:
        batch = x.shape[0]
        bce = F.binary_cross_entropy_with_logits(out["logits"], x, reduction="sum") / batch
        kl = kl_per_image(out["mu"], out["logvar"]).mean()
        return {"total": bce + kl, "bce": bce, "kl": kl}

    def reconstruct(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None, *,
                    context: Tensor | None = None) -> Tensor:
        """decoder(mu). The CAT-VAE decoder also attends to features: the image's *own* encoder features (the
        reference's reconstruction, a path around the latent bottleneck) unless `context` is given, e.g. the
        generation context, so that everything image-specific must pass through mu."""
        self.check_images(x)
        with self._inference():
            mu, _, feats = self.encoder(x)
            memory = feats if context is None else self._expand_context(context, x.shape[0])
            return torch.sigmoid(self._decode(mu, memory))

    def encode_mu(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> Tensor:
        self.check_images(x)
        with self._inference():
            return self.encoder(x)[0]

    def generate(self, n: int, *, context: Tensor | None = None, labels: Tensor | None = None,
                 modalities: Tensor | None = None, generator: torch.Generator | None = None,
                 latents: Tensor | None = None) -> Tensor:
        """Decode `n` images; on a CPU `CPU_DECODE_CHUNK` at a time, with NHWC convolutions.

        Why: at the paper preset a 256-image decode streams up to 140 MB of activations per layer through
        memory, while 32 images' stay in a 32 MB cache (measured on this project's 2-core EPYC, under load:
        0.5x the VAE's and 0.8x the CAT-VAE's time per image of one 256-image decode); and oneDNN's NHWC
        transposed convolutions beat NCHW for the VAE. No layer mixes images, so every image's numbers are
        those of one whole-batch decode (bit for bit in this project's measurements at both presets;
        ``tests/models/test_vae.py`` checks them), and z is still drawn for all `n` at once.
        """
        z = self.latents_for(n, latents, generator)
        on_cpu = z.device.type == "cpu"
        chunk = self.CPU_DECODE_CHUNK if on_cpu else n
        with self._inference():
            context = self._expand_context(context, n)
            parts = [torch.sigmoid(self._decode(z[i: i + chunk], _rows(context, i, chunk), channels_last=on_cpu))
                     for i in range(0, n, chunk)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _expand_context(self, context: Tensor | None, n: int) -> Tensor | None:
        return None


class CatVAE(VAE):
    """The CAT-VAE: the VAE whose decoder cross-attends to encoder feature maps.

    Training uses the features of the input image itself as key/value; generation takes a context
    ``[1 or n, 64, S/4, S/4]`` (the paper: the mean of the class's training features). ``attention``
    records which attention implementation ran (see ``catvae.models.attention``).
    """

    name = "catvae"
    uses_context = True

    def __init__(self, *, image_size: int, channels: int, latent_dim: int = 100, attention: str = "faithful") -> None:
        self._attention_mode = check_attention_mode(attention)
        super().__init__(image_size=image_size, channels=channels, latent_dim=latent_dim)

    @property
    def attention(self) -> str:
        """The attention mode in use, one of ``catvae.models.attention.ATTENTION_MODES``."""
        return self.decoder.cross_attention.mode

    @attention.setter
    def attention(self, mode: str) -> None:
        self.decoder.cross_attention.mode = mode

    def _make_decoder(self) -> ConvDecoder:
        return ConvDecoder(image_size=self.image_size, channels=self.channels, latent_dim=self.latent_dim,
                           attention=self._attention_mode)

    def _decode(self, z: Tensor, context: Tensor | None, channels_last: bool = False) -> Tensor:
        return self.decoder(z, context, channels_last=channels_last)

    def context_features(self, x: Tensor) -> Tensor:
        self.check_images(x)
        with self._inference():
            return self.encoder.features(x)

    def _expand_context(self, context: Tensor | None, n: int) -> Tensor:
        size = self.encoder.feature_size
        expected = (self.encoder.feature_channels, size, size)
        if context is None:
            raise CatvaeError("catvae.generate needs a context: encoder feature maps [1 or n, 64, S/4, S/4]")
        if context.dim() != 4 or tuple(context.shape[1:]) != expected or context.shape[0] not in (1, n):
            raise CatvaeError(f"catvae context must be [1 or {n}, {expected[0]}, {size}, {size}]; got {list(context.shape)}")
        # A shared context stays [1, ...]: the attention projects its keys/values once for all n images.
        return context.to(self.device)


@dataclass(frozen=True)
class VAEOptions(GeneratorOptions):
    """The VAE's model keys: `latent_dim`."""

    latent_dim: int

    @classmethod
    def from_block(cls, name: str, block: Mapping[str, Any]) -> "VAEOptions":
        return cls(name, latent_dim=positive_int(block, "latent_dim", name))

    def build(self, *, image_size: int, channels: int, n_classes: int = 1, n_modalities: int = 1) -> VAE:
        return VAE(image_size=image_size, channels=channels, latent_dim=self.latent_dim)


@dataclass(frozen=True)
class CatVAEOptions(GeneratorOptions):
    """The CAT-VAE's model keys: `latent_dim` and `attention` (one of ``ATTENTION_MODES``)."""

    latent_dim: int
    attention: str

    @classmethod
    def from_block(cls, name: str, block: Mapping[str, Any]) -> "CatVAEOptions":
        mode = check_attention_mode(block["attention"])
        return cls(name, latent_dim=positive_int(block, "latent_dim", name), attention=mode)

    def build(self, *, image_size: int, channels: int, n_classes: int = 1, n_modalities: int = 1) -> CatVAE:
        return CatVAE(image_size=image_size, channels=channels, latent_dim=self.latent_dim, attention=self.attention)


VAE.options_type = VAEOptions
CatVAE.options_type = CatVAEOptions
