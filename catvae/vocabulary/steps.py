"""A validated config -> the settings each step takes, one mapping read by the rules' `params:` and by `catvae`'s
subcommands alike, so a step run by hand gets what the workflow gives it.

Torch-free (the Snakefile reads it when it plans the DAG). Every function takes the validated config (`validate_config`
has filled the schema's defaults).
"""

from __future__ import annotations

from typing import Any, Mapping

from catvae.config import defaults

#: Generator keys read only at synthesis: changing them must not re-train (the rules' params) or block a resume (the
#: checkpoint's fingerprint leaves them out).
SYNTHESIS_ONLY_KEYS: tuple[str, ...] = ("context", "sampling")
#: The `classifier` keys the CNN training reads (the arms and TSTR alike), in the order the rules pass them.
CLASSIFIER_KEYS: tuple[str, ...] = ("image_size", "channels", "epochs", "batch_size", "lr", "select", "patience", "amp")
#: `quality.tstr_images: null` means the largest synthesis target.
LARGEST = "largest"


def tstr_images(cfg: Mapping[str, Any]) -> int | str:
    """Synthetic images per class the train-on-synthetic / test-on-real score uses (`largest` = the largest target)."""
    return cfg["quality"]["tstr_images"] or LARGEST


def training_options(cfg: Mapping[str, Any], model: str) -> dict:
    """The `generators.<model>` block without the keys only synthesis reads."""
    return {k: v for k, v in cfg["generators"][model].items() if k not in SYNTHESIS_ONLY_KEYS}


def paper_training_options(cfg: Mapping[str, Any], model: str) -> dict:
    """The model's training keys in the reference's protocol: with no validation images (every image trains) it keeps
    its last epoch and no plateau schedule, which need them (docs/DEPARTURES.md)."""
    return {**training_options(cfg, model), "selection": "last", "plateau": None}


def synthesis_option(cfg: Mapping[str, Any], model: str, key: str) -> Any:
    """The synthesis-only `key` of the model's block; where the model has no such key (only the CAT-VAE reads a
    context; a diffusion model has no latent sampling), the CAT-VAE's schema default for `context` and an empty
    `sampling` block (the schema's prior)."""
    fallback = {"context": defaults("generators", "catvae")["context"], "sampling": {}}
    return cfg["generators"].get(model, {}).get(key, fallback[key])


def classifier_options(cfg: Mapping[str, Any]) -> dict:
    """The `classifier` keys the CNN training reads (arms and TSTR alike)."""
    return {k: cfg["classifier"][k] for k in CLASSIFIER_KEYS}
