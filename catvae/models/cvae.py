"""The conditional VAE of the second reference (a MedMNIST study), conditioned on class and modality.

Encoder: Conv C->32->64->128 (4x4, stride 2, padding 1, BatchNorm, LeakyReLU 0.2), flattened and
concatenated with a class embedding (128) and a modality embedding (64) -> Linear -> hidden 256
(LeakyReLU 0.2) -> mu, logvar (128). Decoder, mirroring the encoder as the reference says: [z, same
embeddings] -> Linear -> hidden 256 (LeakyReLU) -> Linear -> 128 x s x s (LeakyReLU) -> ConvTranspose
128->64->32->C (4x4, stride 2, padding 1; BatchNorm + LeakyReLU except the last; sigmoid). Auxiliary heads
predict class and modality from mu, as the reference specifies them: class ``-> 128 -> 64 -> n_classes``,
modality ``-> 64 -> n_modalities``, every hidden layer Linear + BatchNorm + LeakyReLU + Dropout (0.3 after
the first hidden layer, 0.2 after the second; the modality head's one hidden layer takes 0.3).

How the reference's text is read where it is ambiguous or silent:

* **Input width of the heads.** The text writes the heads as ``64 -> 128 -> 64 -> 21`` and ``64 -> 64 -> 3``
  although they read mu, which is 128 wide; the same report says it moved from latent 64 to latent 128, so the
  64 is read as the (old) latent width and the heads take ``latent_dim`` inputs (128).
* **"The decoder mirrors this process".** The encoder's flattened features pass a 256-wide hidden layer before
  mu/logvar, so the decoder's [z, embeddings] pass a ``hidden``-wide layer before the projection to
  128 x s x s. Both readings together reproduce the reference's parameter count exactly (below).
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
* **LeakyReLU slope 0.2, no BatchNorm on the Linear layers** (the reference gives neither; the exact count
  below rules out BatchNorm on the encoder/decoder Linear layers).
* **Loss weights are this project's choice.** The reference names the terms (a_MSE MSE + a_L1 L1 +
  a_P perceptual + beta KL + gamma (CE_class + CE_modality)) but gives no values; the defaults
  ``mse 1, l1 0.5, perceptual 0.1, beta 1, gamma 0.5`` are ours.
* **Loss reductions (ours; the reference does not say).** Every term is a per-image quantity, averaged
  over the batch: MSE and L1 are *summed* over the image's pixels (and channels), the KL is summed over
  latent dimensions, the perceptual MSE (a mean over the 32x7x7 feature elements, whose count does not
  depend on the image size) is multiplied by the image's pixel count, and each cross-entropy is per image.
  So beta weighs the KL against the reconstruction as an ELBO does, and the weights mean the same at
  28x28 and at 128x128. Averaging the pixel terms over pixels but the KL over latent dimensions, as this
  port did before, weighs the KL (pixels / latent dims) times more than an ELBO (32x at 64x64, 128x at
  128x128) and collapsed the model towards one mean image.
* **beta** ramps linearly: 0 until ``beta_warmup.start``, reaching ``loss.beta`` at ``start + epochs``
  (epochs counted from 0); ``warmup_end`` is that epoch, at which training selects on validation loss.
* **Eval-mode forward uses z = mu**, so validation losses are deterministic and draw no random numbers.

**Parameter count** at 1x28x28, 21 classes, 3 modalities, latent 128 (``tests/models/test_cvae.py`` asserts each
line): encoder convs + BN 165,024; embeddings 2,880 (21x128 + 3x64); Linear 1,344->256 344,320; mu/logvar
2 x 32,896 = 65,792; decoder Linear 320->256 82,176 and 256->1,152 296,064; deconvs + BN 164,641; class head
128->128 (+BN) 16,768, 128->64 (+BN) 8,384, 64->21 1,365; modality head 128->64 (+BN) 8,384, 64->3 195.
Total trainable **1,155,993**, the reference's figure; the frozen perceptual network adds 4,800 (not counted,
as it is not trained). Before the heads and the decoder's hidden layer were built as specified, this port had
1,115,545.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from catvae.config import defaults
from catvae.errors import CatvaeError
from catvae.models.options import GeneratorOptions, positive_int
from catvae.models.vae import GenerativeModel, kl_per_image, reparameterize

PERCEPTUAL_SEED = 0
#: Loss weights when the config gives none: this project's choice (the reference gives no values).
DEFAULT_LOSS_WEIGHTS = {"mse": 1.0, "l1": 0.5, "perceptual": 0.1, "beta": 1.0, "gamma": 0.5}


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


#: Dropout after the first and the second hidden layer of an auxiliary head (the reference's "dropout (0.3, 0.2)").
HEAD_DROPOUT = (0.3, 0.2)


def _check_range(values: Tensor, count: int, what: str) -> None:
    """Codes must lie in [0, count - 1] (on a GPU tensor this reads two values back to the host)."""
    if values.numel() and (values.min() < 0 or values.max() >= count):
        raise CatvaeError(f"cvae: {what} must lie in [0, {count - 1}]; got {values.min().item()}..{values.max().item()}")


def _block(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.LeakyReLU(0.2))


def auxiliary_head(in_features: int, hidden: tuple[int, ...], out_features: int) -> nn.Sequential:
    """An MLP head: per hidden layer Linear + BatchNorm1d + LeakyReLU(0.2) + Dropout (HEAD_DROPOUT in order)."""
    layers: list[nn.Module] = []
    width = in_features
    for i, units in enumerate(hidden):
        layers += [nn.Linear(width, units), nn.BatchNorm1d(units), nn.LeakyReLU(0.2), nn.Dropout(HEAD_DROPOUT[i])]
        width = units
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


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
        # Defaults are this project's choice: the reference names the loss terms but gives no weights.
        self.weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
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
        self.decoder_fc = nn.Sequential(                # mirrors encoder_fc: [z, cond] -> hidden -> features
            nn.Linear(latent_dim + cond, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, flat), nn.LeakyReLU(0.2))
        ups = []
        for i, (a, b) in enumerate(zip(chans[::-1], chans[::-1][1:])):
            src, dst = sizes[3 - i], sizes[2 - i]
            conv = nn.ConvTranspose2d(a, b, 4, 2, 1, output_padding=dst - 2 * src)
            ups.append(conv if i == 2 else _block(conv, b))
        self.decoder_convs = nn.Sequential(*ups)
        # The reference's "64 ->" input width is read as the latent width (see the module docstring).
        self.class_head = auxiliary_head(latent_dim, (128, 64), n_classes)
        self.modality_head = auxiliary_head(latent_dim, (64,), n_modalities) if n_modalities > 1 else None
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
        z = reparameterize(mu, logvar) if self.training else mu      # eval: deterministic validation losses
        logits = self._decode_logits(z, cond)
        out = {"recon": torch.sigmoid(logits), "mu": mu, "logvar": logvar, "class_logits": self.class_head(mu)}
        if self.modality_head is not None:
            out["modality_logits"] = self.modality_head(mu)
        return out

    @property
    def warmup_end(self) -> int:
        """The first (0-based) epoch whose beta is ``loss.beta``: validation losses are computed at it."""
        return int(self.warmup["start"]) + int(self.warmup["epochs"])

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
        """Per-image terms averaged over the batch (see "Loss reductions" in the module docstring).

        MSE, L1: sums over the image's pixels; perceptual: mean over feature elements x pixel count;
        KL: sum over latent dimensions; cross-entropies: per image. The weights are this project's choice.
        """
        _, labels, modalities = self._condition(labels, modalities, x.shape[0])
        recon, w = out["recon"], self.weights
        batch, pixels = x.shape[0], x[0].numel()
        mse = F.mse_loss(recon, x, reduction="sum") / batch
        l1 = F.l1_loss(recon, x, reduction="sum") / batch
        with torch.no_grad():
            target_feats = self.perceptual(x)
        perceptual = F.mse_loss(self.perceptual(recon), target_feats) * pixels
        kl = kl_per_image(out["mu"], out["logvar"]).mean()
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
                 modalities: Tensor | None = None, generator: torch.Generator | None = None,
                 latents: Tensor | None = None) -> Tensor:
        z = self.latents_for(n, latents, generator)
        with self._inference():
            cond, _, _ = self._condition(labels, modalities, n)
            return torch.sigmoid(self._decode_logits(z, cond))


@dataclass(frozen=True)
class CVAEOptions(GeneratorOptions):
    """The conditional VAE's model keys: `latent_dim`, `class_embedding`, `modality_embedding`, `hidden`, `loss`
    {mse, l1, perceptual, beta, gamma} and `beta_warmup` {start, epochs}."""

    latent_dim: int
    class_embedding: int
    modality_embedding: int
    hidden: int
    loss_weights: dict
    beta_warmup: dict

    @classmethod
    def from_block(cls, name: str, block: Mapping[str, Any]) -> "CVAEOptions":
        if not isinstance(block["loss"], dict) or not isinstance(block["beta_warmup"], dict):
            raise CatvaeError("config keys 'generators.cvae.loss' and 'generators.cvae.beta_warmup' must be mappings")
        loss = {**defaults("generators", name, "loss"), **block["loss"]}
        warmup = {**defaults("generators", name, "beta_warmup"), **block["beta_warmup"]}
        weights = {k: float(loss[k]) for k in ("mse", "l1", "perceptual", "beta", "gamma") if k in loss}
        for key, value in weights.items():
            if value < 0:
                raise CatvaeError(f"config key 'generators.cvae.loss.{key}' must be >= 0, got {value}")
        schedule = {k: int(warmup[k]) for k in ("start", "epochs") if k in warmup}
        if any(v < 0 for v in schedule.values()):
            raise CatvaeError(f"config key 'generators.cvae.beta_warmup' values must be >= 0, got {schedule}")
        return cls(name, **{key: positive_int(block, key, name)
                            for key in ("latent_dim", "class_embedding", "modality_embedding", "hidden")},
                   loss_weights=weights, beta_warmup=schedule)

    def build(self, *, image_size: int, channels: int, n_classes: int = 1,
              n_modalities: int = 1) -> ConditionalVAE:
        if n_classes < 1 or n_modalities < 1:
            raise CatvaeError(f"cvae needs at least one class and one modality, got {n_classes} and {n_modalities}")
        return ConditionalVAE(
            image_size=image_size, channels=channels, n_classes=n_classes, n_modalities=n_modalities,
            latent_dim=self.latent_dim, class_embedding=self.class_embedding,
            modality_embedding=self.modality_embedding, hidden=self.hidden,
            loss_weights=dict(self.loss_weights), beta_warmup=dict(self.beta_warmup),
        )


ConditionalVAE.options_type = CVAEOptions
