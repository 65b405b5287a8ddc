"""Synthesise images of one class from a trained generator, once for the largest target.

Why once: the classifier arms for targets 437, 1000 and 2000 take prefixes of the same generation-ordered
manifest, so two arms differ only in how many synthetic images they add, never in which ones. The
train-on-synthetic / test-on-real score (TSTR) takes a prefix of the same manifest too, so when it needs more
images of a class than the arms do (it trains on synthetic images alone), synthesis generates that many.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
import torch

from catvae.config import schema_enum
from catvae.data.images import load_images, save_png
from catvae.device import device_name, resolve_device, seed_everything, set_threads
from catvae.errors import CatvaeError
from catvae.data.split import read_split
from catvae.generators.checkpoint import build_from_checkpoint, load_checkpoint
from catvae.generators.conditioning import class_rows, encode_conditions, modality_cycle
from catvae.generators.latents import LatentSampler, encode_means, sampling_options
from catvae.io import JobFiles, write_csv, write_json
from catvae.precision import to_device
from catvae.registry import ALL_CLASSES, generator
from catvae.vocabulary.arms import BALANCE
from catvae.vocabulary.steps import LARGEST

log = logging.getLogger("catvae.generators.synthesis")

CONTEXT_MODES = schema_enum("generators", "catvae", "context")
MANIFEST_COLUMNS = ["index", "class", "model", "path"]


def targets_for(n_real_train: int, target: int | str, *, majority: int | None = None) -> int:
    """Number of synthetic images that bring a class with `n_real_train` real images up to `target`.

    `target` is a count or the keyword "balance" (= `majority`, the largest class's real training count).
    A target at or below the real count needs no synthetic images (0), never a negative number.
    """
    return max(0, resolve_target(target, majority) - int(n_real_train))


def resolve_target(target: int | str, majority: int | None) -> int:
    """A target as a count: ints pass through, "balance" becomes the majority class's real training count."""
    if isinstance(target, str):
        if target.strip().lower() == BALANCE:
            if majority is None:
                raise CatvaeError("synthesis target 'balance' needs the majority class count")
            return int(majority)
        if target.strip().isdigit():
            return int(target)
        raise CatvaeError(f"config key 'synthesis.targets' has {target!r}: use a non-negative integer or 'balance'")
    if isinstance(target, bool) or int(target) != target or target < 0:
        raise CatvaeError(f"config key 'synthesis.targets' has {target!r}: use a non-negative integer or 'balance'")
    return int(target)


def tstr_count(tstr_images: int | Literal["largest"], targets: Sequence[int | str], majority: int) -> int:
    """Synthetic images per class the TSTR score trains on: `tstr_images`, or "largest" = the largest target
    ('balance' being the majority class's real training count)."""
    if tstr_images == LARGEST:
        return max(resolve_target(t, majority) for t in targets)
    if isinstance(tstr_images, bool) or not isinstance(tstr_images, int) or tstr_images < 1:
        raise CatvaeError(f"config key 'quality.tstr_images' must be a positive integer or null, got {tstr_images!r}")
    return tstr_images


@dataclass(frozen=True)
class SynthesisFiles(JobFiles):
    """Where one class's synthetic set goes (see `JobFiles`): the manifest (paths relative to its folder), info.json,
    and the folder of PNGs (by default the manifest's own folder)."""

    manifest: Path
    info: Path
    images: Path

    DEFAULT_NAMES = {"manifest": "manifest.csv", "info": "info.json", "images": "."}


def synthesise(
    checkpoint: str,
    split_csv: str,
    outputs: SynthesisFiles | str | os.PathLike,
    *,
    class_name: str,
    targets: Sequence[int | str],
    tstr_images: int | Literal["largest"] | None = None,
    context_mode: str = "mean",
    sampling: dict | None = None,
    seed: int,
    device: str = "auto",
    batch_size: int = 256,
    threads: int = 1,
) -> dict:
    """Generate `max(0, max(targets) - n_real_train)` images of `class_name` (or, when `tstr_images` is given, at
    least `tstr_count(tstr_images, ...)` for the TSTR score); write the PNGs, the manifest and info.json named by
    `outputs` (`SynthesisFiles`; a folder holds all three).

    CAT-VAE context (the decoder's cross-attention keys/values), see `ContextSampler`: `zero`, `mean` or `sample`.
    `sampling` is the generator's `sampling` block: `mode: prior` draws z ~ N(0, I) (the paper), `mode: gmm` draws
    z from a Gaussian mixture fitted to the class's training encoder means (see `catvae.generators.latents`).
    The conditional VAE gets the class label, and cycles through the modalities present in the
    class's training images (in the order of the checkpoint's modality list), so image i has modality
    `present[i % len(present)]`. Returns the info.json dict, which records the context and the sampling.

    The steps: how many images (`_SynthesisCounts`), the model and its conditions, the images (`_generate`), then
    info.json and the manifest.
    """
    check_context_mode(context_mode)
    if not targets:
        raise CatvaeError("config key 'synthesis.targets' is empty")
    set_threads(threads)
    dev = resolve_device(device)
    payload = load_checkpoint(checkpoint)
    model_name = payload["model_name"]
    split = read_split(split_csv)
    train_rows = class_rows(split, class_name, "train")
    counts = _SynthesisCounts.of(split, train_rows, class_name, split_csv, targets, tstr_images)

    files = outputs if isinstance(outputs, SynthesisFiles) else SynthesisFiles.in_folder(outputs)
    images_dir = Path(files.images)
    images_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(images_dir, class_name)
    check_class(payload, class_name, checkpoint)
    model = build_from_checkpoint(payload, dev)
    uses_context = bool(getattr(model, "uses_context", False))
    conditional = generator(payload["model_name"]).conditional
    context_used = context_mode if uses_context else None
    sampling = sampling_options(sampling, model_name)
    seed_everything(seed)
    cycle = modality_cycle(payload, train_rows, class_name) if conditional else None

    rows: list[dict] = []
    sampling_info: dict = dict(sampling)          # replaced by what was fitted when images are generated
    if counts.count:
        log.info("generating %d %s images of class %r (context %s, z from %s)", counts.count, model_name, class_name,
                 context_used, sampling["mode"])
        rows, sampling_info = _generate(model, payload, class_name, counts.count, train_rows, split_csv,
                                        context_mode if uses_context else None, sampling, cycle, seed, dev,
                                        batch_size, files)

    info = {
        "model": model_name, "class": class_name, "n_real_train": counts.n_real, "majority_train": counts.majority,
        "targets": [t if isinstance(t, str) else int(t) for t in targets], "largest_target": counts.largest,
        "n_generated": counts.count, "n_for_arms": counts.for_arms, "n_for_tstr": counts.for_tstr,
        "context": context_used, "sampling": sampling_info, "seed": int(seed), "checkpoint": str(checkpoint),
        "modalities": [payload["modalities"][m] for m in cycle] if cycle else None,
        "device": str(dev), "device_name": device_name(dev),
        # the subjects whose images synthesis read (context features, modalities): training subjects only
        "real_subjects": sorted(set(train_rows["subject"].astype(str))) if "subject" in train_rows.columns else None,
    }
    # info.json first, manifest last: the manifest is the file downstream rules wait for.
    write_json(files.info, info)
    write_csv(files.manifest, pd.DataFrame(rows, columns=MANIFEST_COLUMNS))
    return info


@dataclass(frozen=True)
class _SynthesisCounts:
    """How many images one class gets: enough for the largest target's arm and for TSTR, whichever is more."""

    n_real: int          # the class's real training images
    majority: int        # the largest class's real training count ('balance')
    largest: int         # the largest target, resolved
    for_arms: int
    for_tstr: int

    @property
    def count(self) -> int:
        return max(self.for_arms, self.for_tstr)

    @classmethod
    def of(cls, split: pd.DataFrame, train_rows: pd.DataFrame, class_name: str, split_csv: str,
           targets: Sequence[int | str], tstr_images: int | Literal["largest"] | None) -> "_SynthesisCounts":
        n_real = len(train_rows)
        if n_real == 0:
            raise CatvaeError(f"no training images of class {class_name!r} in split file {split_csv}")
        majority = int(split[split["partition"] == "train"]["class"].value_counts().max())
        largest = max(resolve_target(t, majority) for t in targets)
        for_tstr = 0 if tstr_images is None else tstr_count(tstr_images, targets, majority)
        return cls(n_real, majority, largest, targets_for(n_real, largest), for_tstr)


def _generate(
    model: torch.nn.Module, payload: dict, class_name: str, count: int, train_rows: pd.DataFrame, split_csv: str,
    context_mode: str | None, sampling: dict, cycle: list[int] | None, seed: int, dev: torch.device, batch_size: int,
    files: SynthesisFiles,
) -> tuple[list[dict], dict]:
    """Generate `count` images in batches and write them as PNGs; return the manifest rows and the sampling record
    (the prior, or the mixture fitted to the class's encoder means). `context_mode` None: the model reads no
    context; `cycle` None: it takes no conditions."""
    model_name, images_dir = payload["model_name"], Path(files.images)
    real = load_images(list(train_rows["abspath"]), int(payload["image_size"]), int(payload["channels"]))
    sampler = ContextSampler(model, real, context_mode, seed, dev) if context_mode is not None else None
    latents = latent_sampler(model, payload, sampling, real, train_rows, split_csv, seed, dev)
    gen = torch.Generator().manual_seed(int(seed))  # CPU: the same seed gives the same latents on every device
    rows, done = [], 0
    while done < count:
        n = min(batch_size, count - done)
        kwargs = {}
        if sampler is not None:
            kwargs["context"] = sampler.next(n)
        if cycle is not None:
            kwargs["labels"] = torch.full((n,), payload["classes"].index(class_name), dtype=torch.long, device=dev)
            kwargs["modalities"] = torch.as_tensor(
                [cycle[(done + i) % len(cycle)] for i in range(n)], dtype=torch.long, device=dev
            )
        with torch.no_grad():
            images = model.generate(n, generator=gen, latents=latents.next(n), **kwargs)
            images = images.float().clamp(0, 1).cpu().numpy()
        for i, image in enumerate(images):
            index = done + i
            png = images_dir / f"{class_name}_{index:05d}.png"
            save_png(png, image)
            rows.append({"index": index, "class": class_name, "model": model_name,
                         "path": os.path.relpath(png, Path(files.manifest).parent)})
        done += n
        log.info("%s/%s: %d/%d images", model_name, class_name, done, count)
    return rows, latents.info


def check_class(payload: dict, class_name: str, checkpoint: str) -> None:
    """A per-class generator must have been trained on `class_name`; a conditional one must know the class."""
    if class_name not in payload["classes"]:
        raise CatvaeError(f"class {class_name!r} is not among the classes {payload['classes']} of {checkpoint}")
    group = payload.get("group")
    if group not in (None, ALL_CLASSES, class_name):
        raise CatvaeError(f"generator checkpoint {checkpoint} was trained on class {group!r}, not {class_name!r}")


def check_context_mode(mode: str) -> str:
    """Validate `generators.catvae.context`, naming the key on error."""
    if mode not in CONTEXT_MODES:
        raise CatvaeError(f"config key 'generators.catvae.context' must be one of {list(CONTEXT_MODES)}, got {mode!r}")
    return mode


def latent_sampler(model: torch.nn.Module, payload: dict, sampling: dict, real: np.ndarray,
                   train_rows: pd.DataFrame, split_csv: str, seed: int, device: torch.device) -> LatentSampler:
    """Where z comes from for one class: the prior, or a mixture fitted to the class's training encoder means."""
    if sampling["mode"] == "prior":
        return LatentSampler(sampling, None, seed)
    labels = mods = None
    if generator(payload["model_name"]).conditional:
        labels, mods = encode_conditions(train_rows, payload["classes"], payload["modalities"], split_csv)
    return LatentSampler(sampling, encode_means(model, real, labels, mods, device), seed)


class ContextSampler:
    """Cross-attention context for CAT-VAE generation, batch by batch.

    The reference is not consistent here, so all three of its variants are offered and recorded:
    `zero` = all-zero features (what one notebook cell fed the decoder for BraTS images, written into a folder its
    1000/2000-image classifiers read; another cell copies other images into the same folder, so which images those
    classifiers saw cannot be settled: docs/DEPARTURES.md, CAT-VAE row 9);
    `mean` = the mean encoder features of the class's training images (its paper's text; its notebook averaged
    the first 100 training images, this code all of them); `sample` = the features of one training image drawn
    at random (seeded) per synthetic image, encoded per batch so memory stays one batch of features.
    """

    def __init__(self, model: torch.nn.Module, real: np.ndarray, mode: str, seed: int, device: torch.device,
                 encode_batch: int = 64):
        self.model, self.real, self.mode, self.device = model, real, check_context_mode(mode), device
        self.rng = np.random.default_rng(seed)
        self.fixed: torch.Tensor | None = None       # one context for every image (zero, mean)
        if mode == "zero":
            self.fixed = torch.zeros_like(self._features(np.arange(1)))
        elif mode == "mean":
            total, n = None, 0
            for start in range(0, len(real), encode_batch):
                feats = self._features(np.arange(start, min(start + encode_batch, len(real))))
                total = feats.sum(0, keepdim=True) if total is None else total + feats.sum(0, keepdim=True)
                n += len(feats)
            self.fixed = total / n

    def next(self, n: int) -> torch.Tensor:
        """Context for the next `n` synthetic images, shape `[n, ...features]`."""
        if self.fixed is not None:
            return self.fixed.expand(n, *self.fixed.shape[1:])
        return self._features(self.rng.integers(0, len(self.real), size=n))

    @torch.no_grad()
    def _features(self, index: np.ndarray) -> torch.Tensor:
        x = to_device(torch.from_numpy(self.real[index]), self.device)
        feats = self.model.context_features(x)
        if feats is None:
            raise CatvaeError(f"model {self.model.name!r} returned no context features")
        return feats.float()


def _remove_stale(out: Path, class_name: str) -> None:
    # A re-run with a smaller target must not leave older PNGs beside the new manifest.
    pattern = re.compile(rf"^{re.escape(class_name)}_\d{{5,}}\.png$")
    for path in out.iterdir():
        if pattern.match(path.name):
            path.unlink()
