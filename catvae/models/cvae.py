"""The conditional VAE of the second reference (a MedMNIST study), conditioned on class and modality.

Encoder: Conv C->32->64->128 (4x4, stride 2, padding 1, BatchNorm, LeakyReLU 0.2), flattened and
concatenated with a class embedding (128) and a modality embedding (64) -> Linear -> hidden 256
(LeakyReLU 0.2) -> mu, logvar (128). Decoder: [z, same embeddings] -> Linear -> 128 x s x s
(LeakyReLU) -> ConvTranspose 128->64->32->C (4x4, stride 2, padding 1; BatchNorm + LeakyReLU except the
last; sigmoid). Auxiliary Linear heads predict class and modality from mu.

Choices the reference leaves open, and what this port does:

* **Sizes not divisible by 8 (28x28 MedMNIST).** The encoder runs unpadded (28 -> 14 -> 7 -> 3, as
  PyTorch's floor arithmetic gives) and the decoder mirrors it exactly: each transposed convolution
  gets ``output_padding`` 0 or 1 so it lands on the size its encoder twin started from (3 -> 7 -> 14 ->
  28). No padding, cropping or resizing; for sizes divisible by 8 every ``output_padding`` is 0.
* **One modality.** The modality embedding and head are omitted (a constant input carries nothing and
  a head trained on a constant target teaches nothing); ``ce_modality`` is then 0.
* **Perceptual network.** Frozen and untrained by design; it is initialised from a fixed seed (so the
  loss means the same thing in every run whatever the global seed), its parameters have
  ``requires_grad=False`` and ``count_parameters`` (trainable only) excludes them; they are reported
  separately by ``frozen_parameters`` (4,800). Colour images are averaged to one channel first.
* **Loss scale.** MSE, L1 and the perceptual MSE are means over elements; the KL is the mean over batch
  *and* latent dimensions (a per-image sum would outweigh a per-pixel mean by orders of magnitude at
  beta 1, the reference's weights). beta ramps linearly: 0 until ``beta_warmup.start``, reaching
  ``loss.beta`` at ``start + epochs`` (epochs counted from 0).

**Parameter count.** At 1x28x28, 21 classes, 3 modalities this port has 1,115,545 trainable parameters
(+ 4,800 frozen perceptual = 1,120,345); the reference reports 1,155,993, 40,448 more. The listed
layers account for every parameter here (encoder convs+BN 165,024; embeddings 2,880; Linear 1,344->256
344,320; mu/logvar 65,792; decoder Linear 320->1,152 369,792; deconvs+BN 164,641; heads 3,096); the
reference's extra 40,448 must sit in a layer its description does not list (no padding/cropping variant
or decoder hidden layer we tried reproduces it exactly), so we keep the described architecture.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from catvae.errors import CatvaeError
from catvae.models.vae import GenerativeModel, reparameterize

PERCEPTUAL_SEED = 0


class PerceptualFeatures(nn.Module):
    """Frozen, untrained Conv(1,16,3)-ReLU-Conv(16,32,3)-ReLU-AdaptiveAvgPool(7) feature extractor."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(7))
        g = torch.Generator().manual_seed(PERCEPTUAL_SEED)
        for conv in (self.net[0], self.net[2]):
            bound = 1.0 / (conv.in_channels * 9) ** 0.5   # PyTorch's default bound, from a fixed seed
            with torch.no_grad():
                conv.weight.uniform_(-bound, bound, generator=g)
                conv.bias.uniform_(-bound, bound, generator=g)
        self.requires_grad_(False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)
        return self.net(x)


def _check_range(values: Tensor, count: int, what: str) -> None:
    """Codes must lie in [0, count - 1] (on a GPU tensor this reads two values back to the host)."""
    if values.numel() and (values.min() < 0 or values.max() >= count):
        raise CatvaeError(f"cvae: {what} must lie in [0, {count - 1}]; got {values.min().item()}..{values.max().item()}")


def _block(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.LeakyReLU(0.2))


class ConditionalVAE(GenerativeModel):
    """Class- (and modality-) conditional VAE with auxiliary heads and a composite loss."""

    name = "cvae"

    def __init__(self, *, image_size: int, channels: int, n_classes: int, n_modalities: int = 1,
                 latent_dim: int = 128, class_embedding: int = 128, modality_embedding: int = 64, hidden: int = 256,
                 loss_weights: dict[str, float] | None = None, beta_warmup: dict[str, int] | None = None) -> None:
        super().__init__(image_size=image_size, channels=channels, latent_dim=latent_dim)
        if image_size < 8:
            raise CatvaeError(f"config key 'dataset.image_size' must be >= 8 for cvae, got {image_size}")
        self.n_classes, self.n_modalities = n_classes, n_modalities
        self.weights = {"mse": 1.0, "l1": 0.5, "perceptual": 0.1, "beta": 1.0, "gamma": 0.5, **(loss_weights or {})}
        self.warmup = {"start": 20, "epochs": 100, **(beta_warmup or {})}

        sizes = [image_size]
        for _ in range(3):
            sizes.append(sizes[-1] // 2)                 # k4 s2 p1: floor(S/2)
        self.start = sizes[-1]
        chans = [channels, 32, 64, 128]
        self.encoder_convs = nn.Sequential(*(_block(nn.Conv2d(a, b, 4, 2, 1), b) for a, b in zip(chans, chans[1:])))
        self.class_embedding = nn.Embedding(n_classes, class_embedding)
        self.modality_embedding = nn.Embedding(n_modalities, modality_embedding) if n_modalities > 1 else None
        cond = class_embedding + (modality_embedding if n_modalities > 1 else 0)
        flat = 128 * self.start**2
        self.encoder_fc = nn.Sequential(nn.Linear(flat + cond, hidden), nn.LeakyReLU(0.2))
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        self.decoder_fc = nn.Sequential(nn.Linear(latent_dim + cond, flat), nn.LeakyReLU(0.2))
        ups = []
        for i, (a, b) in enumerate(zip(chans[::-1], chans[::-1][1:])):
            src, dst = sizes[3 - i], sizes[2 - i]
            conv = nn.ConvTranspose2d(a, b, 4, 2, 1, output_padding=dst - 2 * src)
            ups.append(conv if i == 2 else _block(conv, b))
        self.decoder_convs = nn.Sequential(*ups)
        self.class_head = nn.Linear(latent_dim, n_classes)
        self.modality_head = nn.Linear(latent_dim, n_modalities) if n_modalities > 1 else None
        self.perceptual = PerceptualFeatures()

    @property
    def frozen_parameters(self) -> int:
        """Parameters of the frozen perceptual network (excluded from ``count_parameters``)."""
        return sum(p.numel() for p in self.perceptual.parameters())

    def train(self, mode: bool = True) -> "ConditionalVAE":
        super().train(mode)
        self.perceptual.eval()                          # frozen: never in training mode
        return self

    # -- conditioning ----------------------------------------------------------------------------
    #: Range-check label/modality codes on every call. On a GPU each check costs host synchronisations, so
    #: training validates its whole data set once (`check_conditions`) and runs its steps inside
    #: `conditions_checked()`, where this is False.
    _check_ranges = True

    def _check_codes(self, values: Tensor | None, n: int, count: int, what: str) -> Tensor:
        if values is None:
            if count == 1:
                return torch.zeros(n, dtype=torch.long, device=self.device)
            raise CatvaeError(f"cvae needs {what} (a LongTensor of {n} indices)")
        values = torch.as_tensor(values, device=self.device).long().reshape(-1)
        if values.numel() != n:
            raise CatvaeError(f"cvae: got {values.numel()} {what} for {n} images")
        if self._check_ranges:
            _check_range(values, count, what)
        return values

    def check_conditions(self, labels: Tensor, modalities: Tensor | None = None) -> None:
        """Validate a whole data set's codes at once, on the host (no GPU synchronisation per batch).

        Raises CatvaeError as a forward call with these codes would. Pair it with `conditions_checked()` for
        the steps that use slices of these codes.
        """
        labels = torch.as_tensor(labels).cpu().long().reshape(-1)
        _check_range(labels, self.n_classes, "labels")
        if modalities is None:
            if self.n_modalities > 1:
                raise CatvaeError(f"cvae needs modalities (a LongTensor of {len(labels)} indices)")
            return
        modalities = torch.as_tensor(modalities).cpu().long().reshape(-1)
        if modalities.numel() != labels.numel():
            raise CatvaeError(f"cvae: got {modalities.numel()} modalities for {labels.numel()} labels")
        _check_range(modalities, self.n_modalities, "modalities")

    @contextmanager
    def conditions_checked(self) -> Iterator[None]:
        """Skip the per-call range check of labels/modalities inside the block (counts are still checked).

        Only for codes already validated by `check_conditions`: an out-of-range code would then fail inside the
        embedding (on a GPU as a device-side assert) instead of with a CatvaeError.
        """
        previous = self.__dict__.get("_check_ranges")
        self._check_ranges = False
        try:
            yield
        finally:
            if previous is None:
                self.__dict__.pop("_check_ranges", None)  # back to the class default (checked)
            else:
                self._check_ranges = previous

    def _condition(self, labels: Tensor | None, modalities: Tensor | None, n: int) -> tuple[Tensor, Tensor, Tensor]:
        labels = self._check_codes(labels, n, self.n_classes, "labels")
        modalities = self._check_codes(modalities, n, self.n_modalities, "modalities")
        parts = [self.class_embedding(labels)]
        if self.modality_embedding is not None:
            parts.append(self.modality_embedding(modalities))
        return torch.cat(parts, dim=1), labels, modalities

    # -- networks --------------------------------------------------------------------------------
    def _encode(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder_fc(torch.cat([self.encoder_convs(x).flatten(1), cond], dim=1))
        return self.fc_mu(h), self.fc_logvar(h)

    def _decode_logits(self, z: Tensor, cond: Tensor) -> Tensor:
        h = self.decoder_fc(torch.cat([z, cond], dim=1)).view(z.shape[0], 128, self.start, self.start)
        return self.decoder_convs(h)

    def forward(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> dict[str, Tensor]:
        self.check_images(x)
        cond, _, _ = self._condition(labels, modalities, x.shape[0])
        mu, logvar = self._encode(x, cond)
        logits = self._decode_logits(reparameterize(mu, logvar), cond)
        out = {"recon": torch.sigmoid(logits), "mu": mu, "logvar": logvar, "class_logits": self.class_head(mu)}
        if self.modality_head is not None:
            out["modality_logits"] = self.modality_head(mu)
        return out

    def beta_at(self, epoch: int) -> float:
        """beta for a (0-based) epoch: 0 before ``start``, linear to ``loss.beta`` over ``epochs`` epochs."""
        start, length = self.warmup["start"], self.warmup["epochs"]
        if length <= 0:
            frac = 1.0 if epoch >= start else 0.0
        else:
            frac = min(1.0, max(0.0, (epoch - start) / length))
        return float(self.weights["beta"]) * frac

    def loss(self, x: Tensor, out: dict[str, Tensor], labels: Tensor | None = None,
             modalities: Tensor | None = None, epoch: int = 0) -> dict[str, Tensor]:
        _, labels, modalities = self._condition(labels, modalities, x.shape[0])
        recon, w = out["recon"], self.weights
        mse = F.mse_loss(recon, x)
        l1 = F.l1_loss(recon, x)
        with torch.no_grad():
            target_feats = self.perceptual(x)
        perceptual = F.mse_loss(self.perceptual(recon), target_feats)
        kl = -0.5 * torch.mean(1 + out["logvar"] - out["mu"].pow(2) - out["logvar"].exp())
        ce_class = F.cross_entropy(out["class_logits"], labels)
        ce_modality = (F.cross_entropy(out["modality_logits"], modalities) if "modality_logits" in out
                       else torch.zeros((), device=x.device))
        beta = self.beta_at(epoch)  # a Python float: a tensor built from it would be a blocking host copy on a GPU
        total = (w["mse"] * mse + w["l1"] * l1 + w["perceptual"] * perceptual + beta * kl
                 + w["gamma"] * (ce_class + ce_modality))
        return {"total": total, "mse": mse, "l1": l1, "perceptual": perceptual, "kl": kl,
                "ce_class": ce_class, "ce_modality": ce_modality, "beta": torch.full_like(kl, beta)}

    # -- inference -------------------------------------------------------------------------------
    def reconstruct(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> Tensor:
        self.check_images(x)
        with self._inference():
            cond, _, _ = self._condition(labels, modalities, x.shape[0])
            mu, _ = self._encode(x, cond)
            return torch.sigmoid(self._decode_logits(mu, cond))

    def encode_mu(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> Tensor:
        self.check_images(x)
        with self._inference():
            cond, _, _ = self._condition(labels, modalities, x.shape[0])
            return self._encode(x, cond)[0]

    def generate(self, n: int, *, context: Tensor | None = None, labels: Tensor | None = None,
                 modalities: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        z = self.draw_latents(n, generator)
        with self._inference():
            cond, _, _ = self._condition(labels, modalities, n)
            return torch.sigmoid(self._decode_logits(z, cond))
