"""Build a generator from its config block, and count parameters the way the reference tables do."""

from __future__ import annotations

from typing import Any

from torch import nn

from catvae.config import defaults
from catvae.errors import CatvaeError
from catvae.models.attention import check_attention_mode
from catvae.models.cvae import ConditionalVAE
from catvae.models.diffusion import DiffusionModel
from catvae.models.vae import VAE, CatVAE, GenerativeModel
from catvae.registry import generator


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (``requires_grad``), the figure Keras' ``summary()`` and the references report."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _positive_int(options: dict[str, Any], key: str, name: str) -> int:
    value = options[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CatvaeError(f"config key 'generators.{name}.{key}' must be a positive integer, got {value!r}")
    return value


def build_generator(name: str, *, image_size: int, channels: int, options: dict[str, Any],
                    n_classes: int = 1, n_modalities: int = 1) -> GenerativeModel:
    """Make the ``vae``, ``catvae``, ``cvae`` or ``ddpm`` model for images ``channels x image_size x image_size``.

    ``options`` is that model's block of the config (``generators.<name>``), merged over the schema's defaults
    (the only place defaults are written); keys other than the ones read here (epochs, lr, ...) belong to training.
    vae/catvae read ``latent_dim`` and, for catvae, ``attention`` (one of ``ATTENTION_MODES``); cvae reads ``latent_dim``, ``class_embedding``,
    ``modality_embedding``, ``hidden``, ``loss`` {mse, l1, perceptual, beta, gamma} and ``beta_warmup`` {start, epochs};
    ddpm reads ``unet_channels``, ``attention_levels``, ``res_blocks``, ``norm_groups``, ``head_channels``,
    ``train_timesteps``, ``schedule`` and ``ddim_steps``.
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
    options = {**defaults("generators", name), **dict(options or {})}
    model_type = spec.model_type()
    if model_type is VAE:
        return VAE(image_size=image_size, channels=channels, latent_dim=_positive_int(options, "latent_dim", name))
    if model_type is CatVAE:
        mode = check_attention_mode(options["attention"])
        latent = _positive_int(options, "latent_dim", name)
        return CatVAE(image_size=image_size, channels=channels, latent_dim=latent, attention=mode)
    if model_type is DiffusionModel:
        return _diffusion(name, image_size, channels, options)
    if n_classes < 1 or n_modalities < 1:
        raise CatvaeError(f"cvae needs at least one class and one modality, got {n_classes} and {n_modalities}")
    if not isinstance(options["loss"], dict) or not isinstance(options["beta_warmup"], dict):
        raise CatvaeError("config keys 'generators.cvae.loss' and 'generators.cvae.beta_warmup' must be mappings")
    loss = {**defaults("generators", name, "loss"), **options["loss"]}
    warmup = {**defaults("generators", name, "beta_warmup"), **options["beta_warmup"]}
    weights = {k: float(loss[k]) for k in ("mse", "l1", "perceptual", "beta", "gamma") if k in loss}
    for key, value in weights.items():
        if value < 0:
            raise CatvaeError(f"config key 'generators.cvae.loss.{key}' must be >= 0, got {value}")
    schedule = {k: int(warmup[k]) for k in ("start", "epochs") if k in warmup}
    if any(v < 0 for v in schedule.values()):
        raise CatvaeError(f"config key 'generators.cvae.beta_warmup' values must be >= 0, got {schedule}")
    return ConditionalVAE(
        image_size=image_size, channels=channels, n_classes=n_classes, n_modalities=n_modalities,
        latent_dim=_positive_int(options, "latent_dim", name),
        class_embedding=_positive_int(options, "class_embedding", name),
        modality_embedding=_positive_int(options, "modality_embedding", name),
        hidden=_positive_int(options, "hidden", name),
        loss_weights=weights, beta_warmup=schedule,
    )


def _diffusion(name: str, image_size: int, channels: int, options: dict[str, Any]) -> DiffusionModel:
    """The ddpm block's UNet and schedules, each key checked here (MONAI's own errors name no config key)."""
    widths, levels = options["unet_channels"], options["attention_levels"]
    if not isinstance(widths, (list, tuple)) or not widths:
        raise CatvaeError(f"config key 'generators.{name}.unet_channels' must be a non-empty list, got {widths!r}")
    for width in widths:
        _positive_int({"unet_channels": width}, "unet_channels", name)
    if not isinstance(levels, (list, tuple)) or len(levels) != len(widths):
        raise CatvaeError(
            f"config key 'generators.{name}.attention_levels' must list one boolean per entry of 'unet_channels' "
            f"({len(widths)}), got {levels!r}"
        )
    return DiffusionModel(
        image_size=image_size, channels=channels, unet_channels=widths, attention_levels=levels,
        **{key: _positive_int(options, key, name)
           for key in ("res_blocks", "norm_groups", "head_channels", "train_timesteps", "ddim_steps")},
        schedule=str(options["schedule"]),
    )
