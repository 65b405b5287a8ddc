"""A denoising diffusion generator: this project's comparator (neither reference has one), built on MONAI.

Why a diffusion model: reviewers of generative augmentation for small, imbalanced medical datasets now ask how a
VAE-family generator compares with one (diffusion samples are usually found more realistic and more useful to the
classifier, at a higher sampling cost). It runs through the same per-class training, synthesis, quality, TSTR and
classifier arms as the VAEs, so the comparison is paired and on the same held-out subjects.

What it is, all from MONAI's generative components rather than hand-written: ``DiffusionModelUNet`` (one small UNet
per class, unconditional, like the VAE and CAT-VAE), trained with the standard noise-prediction (epsilon) MSE loss
of DDPM (Ho et al. 2020) through ``DiffusionInferer`` with a ``DDPMScheduler``; images are generated with a
``DDIMScheduler`` (Song et al. 2021, eta 0: deterministic given the starting noise) over ``ddim_steps`` steps.
Pixels are mapped from [0, 1] to [-1, 1] for the diffusion and back at generation.

What it is not: it has no encoder, so held-out reconstruction (SSIM/PSNR/MSE through a latent code), active latent
dimensions and the mixture sampling of `catvae.generators.latents` are undefined for it (``encodes = False``); the
"latent" it draws is the starting noise x_T, one value per pixel, drawn on the CPU as every generator's z is, so a
seed gives the same images on every device. MONAI is imported when the model is built, so jobs that never build one
do not pay its import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from catvae.errors import CatvaeError
from catvae.models.options import GeneratorOptions, positive_int
from catvae.models.vae import GenerativeModel

#: Why the reconstruction metrics of a diffusion model are missing (quality.json's ``*_note``, the table's cell; the
#: table's caption says the rest: with no encoder, held-out reconstruction is undefined).
NO_ENCODER_NOTE = "n/a: no encoder"


class DiffusionModel(GenerativeModel):
    """One unconditional DDPM (MONAI ``DiffusionModelUNet``) for one class; DDIM sampling with ``ddim_steps`` steps.

    ``unet_channels``: the UNet's width per level (each level after the first halves the image, so the image side
    must be a multiple of ``2 ** (levels - 1)``); ``attention_levels``: self-attention at each level;
    ``res_blocks``: residual blocks per level; ``norm_groups``: GroupNorm groups (must divide every width);
    ``head_channels``: channels per attention head; ``train_timesteps`` and ``schedule``: the noise schedule (a
    MONAI ``NoiseSchedules`` name) shared by the training (DDPM) and sampling (DDIM) schedulers.
    """

    name = "ddpm"
    encodes = False

    def __init__(self, *, image_size: int, channels: int, unet_channels: Sequence[int],
                 attention_levels: Sequence[bool], res_blocks: int, norm_groups: int, head_channels: int,
                 train_timesteps: int, schedule: str, ddim_steps: int) -> None:
        from monai.inferers import DiffusionInferer
        from monai.networks.nets import DiffusionModelUNet
        from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

        super().__init__(image_size=image_size, channels=channels, latent_dim=channels * image_size * image_size)
        widths, levels = [int(c) for c in unet_channels], [bool(a) for a in attention_levels]
        if image_size % 2 ** (len(widths) - 1):
            raise CatvaeError(
                f"config key 'generators.ddpm.unet_channels' has {len(widths)} levels, so 'dataset.image_size' must be "
                f"a multiple of {2 ** (len(widths) - 1)}; got {image_size}"
            )
        if not 1 <= ddim_steps <= train_timesteps:
            raise CatvaeError(
                f"config key 'generators.ddpm.ddim_steps' must be in [1, train_timesteps = {train_timesteps}], "
                f"got {ddim_steps}"
            )
        try:
            self.unet = DiffusionModelUNet(
                spatial_dims=2, in_channels=channels, out_channels=channels, channels=widths,
                attention_levels=levels, num_res_blocks=res_blocks, norm_num_groups=norm_groups,
                # heads only matter where there is attention; MONAI checks every level, so the others get one head
                num_head_channels=[head_channels if a else w for w, a in zip(widths, levels)],
            )
            # The schedulers hold their tables as plain tensors, not buffers: nothing of them is in the state dict.
            self.inferer = DiffusionInferer(DDPMScheduler(num_train_timesteps=train_timesteps, schedule=schedule))
            self.sampler = DDIMScheduler(num_train_timesteps=train_timesteps, schedule=schedule)
        except (ValueError, KeyError) as exc:  # MONAI's own checks: widths vs groups, levels vs widths, schedule
            raise CatvaeError(f"config block 'generators.ddpm': {exc}") from None
        self.sampler.set_timesteps(ddim_steps)
        self.train_timesteps, self.ddim_steps = train_timesteps, ddim_steps

    def forward(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> dict[str, Tensor]:
        """Noise a batch at uniformly drawn timesteps and predict the noise (DDPM's training step)."""
        self.check_images(x)
        x0 = x * 2 - 1
        noise = torch.randn_like(x0)
        steps = torch.randint(0, self.train_timesteps, (len(x0),), device=x0.device)
        prediction = self.inferer(inputs=x0, diffusion_model=self.unet, noise=noise, timesteps=steps)
        return {"noise_pred": prediction, "noise": noise}

    def loss(self, x: Tensor, out: dict[str, Tensor], labels: Tensor | None = None,
             modalities: Tensor | None = None, epoch: int = 0) -> dict[str, Tensor]:
        """The epsilon-prediction MSE (mean over pixels and images), DDPM's simplified objective."""
        return {"total": F.mse_loss(out["noise_pred"].float(), out["noise"].float())}

    def generate(self, n: int, *, context: Tensor | None = None, labels: Tensor | None = None,
                 modalities: Tensor | None = None, generator: torch.Generator | None = None,
                 latents: Tensor | None = None) -> Tensor:
        """Denoise `n` starting noises (``latents``, default drawn from `generator` on the CPU) with DDIM."""
        with self._inference():
            noise = self.latents_for(n, latents, generator).view(n, self.channels, self.image_size, self.image_size)
            images = self.inferer.sample(input_noise=noise, diffusion_model=self.unet, scheduler=self.sampler,
                                         verbose=False)
            return ((images + 1) / 2).clamp(0, 1)

    def reconstruct(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> Tensor:
        raise CatvaeError(f"{self.name} has no encoder: held-out reconstruction and latent means are undefined")

    def encode_mu(self, x: Tensor, labels: Tensor | None = None, modalities: Tensor | None = None) -> Tensor:
        raise CatvaeError(f"{self.name} has no encoder: held-out reconstruction and latent means are undefined")


@dataclass(frozen=True)
class DDPMOptions(GeneratorOptions):
    """The diffusion model's keys, each checked here (MONAI's own errors name no config key)."""

    unet_channels: tuple
    attention_levels: tuple
    res_blocks: int
    norm_groups: int
    head_channels: int
    train_timesteps: int
    ddim_steps: int
    schedule: str

    @classmethod
    def from_block(cls, name: str, block: Mapping[str, Any]) -> "DDPMOptions":
        widths, levels = block["unet_channels"], block["attention_levels"]
        if not isinstance(widths, (list, tuple)) or not widths:
            raise CatvaeError(f"config key 'generators.{name}.unet_channels' must be a non-empty list, got {widths!r}")
        for width in widths:
            positive_int({"unet_channels": width}, "unet_channels", name)
        if not isinstance(levels, (list, tuple)) or len(levels) != len(widths):
            raise CatvaeError(
                f"config key 'generators.{name}.attention_levels' must list one boolean per entry of 'unet_channels' "
                f"({len(widths)}), got {levels!r}"
            )
        return cls(name, unet_channels=tuple(widths), attention_levels=tuple(levels),
                   **{key: positive_int(block, key, name)
                      for key in ("res_blocks", "norm_groups", "head_channels", "train_timesteps", "ddim_steps")},
                   schedule=str(block["schedule"]))

    def build(self, *, image_size: int, channels: int, n_classes: int = 1,
              n_modalities: int = 1) -> DiffusionModel:
        return DiffusionModel(
            image_size=image_size, channels=channels, unet_channels=list(self.unet_channels),
            attention_levels=list(self.attention_levels), res_blocks=self.res_blocks, norm_groups=self.norm_groups,
            head_channels=self.head_channels, train_timesteps=self.train_timesteps, schedule=self.schedule,
            ddim_steps=self.ddim_steps,
        )


DiffusionModel.options_type = DDPMOptions
