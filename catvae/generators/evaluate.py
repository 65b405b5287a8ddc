"""Quality of one generator for one class (quality.json), and the cvae's latent export for the latent-space figure.

Why these inputs: reconstructions are scored on the class's held-out real *test* images (scoring training images
would reward memorisation); FID/KID compare the synthetic images the classifier actually receives with held-out
real images; memorisation compares those same synthetic images with the real *training* images they could copy.

Two CAT-VAE reconstructions, because they answer different questions. ``ssim``/``psnr``/``mse`` decode mu with
the synthetic set's *generation context* (zero, mean or sampled features), so everything specific to the image
must pass the latent bottleneck, as in the VAE and the conditional VAE (``recon_path`` says which inputs the
decoder got): these are the numbers to compare across models. ``*_own_features`` decode mu with the image's *own*
encoder features, as the reference computed its reconstruction metrics: the decoder's attention then reads the
image's 64 x S/4 x S/4 feature maps, a path around the 100-d bottleneck, so they are not comparable with the VAE's.

A model without an encoder (the diffusion comparator) has no reconstruction: its SSIM/PSNR/MSE are ``null`` with a
``*_note`` saying why, never a made-up number. Diversity (mean MS-SSIM over random pairs, `catvae.metrics.diversity`)
is scored for every model on the same synthetic images as FID, beside the same figure for the class's real training
images, the yardstick for mode collapse and near-duplicates.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from catvae.data.images import load_images, read_manifest
from catvae.device import device_name, resolve_device, seed_everything, set_threads
from catvae.errors import CatvaeError
from catvae.data.split import read_split
from catvae.generators.checkpoint import build_from_checkpoint, load_checkpoint
from catvae.generators.conditioning import class_rows, encode_conditions
from catvae.generators.latents import DEFAULT_SAMPLING, batched, sampling_options
from catvae.generators.synthesis import ContextSampler, check_class, latent_sampler
from catvae.models.diffusion import NO_ENCODER_NOTE
from catvae.io import atomic_path, read_json, write_json
from catvae.registry import generator

log = logging.getLogger("catvae.generators.evaluate")

#: quality.json value of the own-features metrics for models whose decoder reads no encoder features.
NO_BYPASS_NOTE = "n/a: the decoder reads no encoder features"


def evaluate_generator(
    checkpoint: str,
    split_csv: str,
    synthetic_manifest: str,
    out_json: str,
    *,
    class_name: str,
    inception_weights: str | None,
    max_fid_images: int,
    near_copy_ssim: float,
    device: str = "auto",
    seed: int,
    config_name: str,
    train_stats: str | None = None,
    synthetic_info: str | None = None,
    fold: int = 0,
    replicate: int = 0,
    threads: int = 1,
    timing_images: int = 256,
    timing_batch: int = 64,
    timing_seconds: float = 1.0,
    diversity_pairs: int = 500,
) -> dict:
    """Score the generator in `checkpoint` on `class_name`; write `out_json` (quality.json) and return it.

    FID/KID use at most `max_fid_images` per side: the first rows of the synthetic manifest (generation order,
    so the same images as the smallest arms) and a seeded subsample of the real test images. Training time and
    peak memory come from `train_stats` (default: `train_stats.json` beside the checkpoint), the generation context
    from `synthetic_info` (default: `info.json` beside the manifest); the workflow names both as rule inputs.
    Inference time is measured here by generating at least `timing_images` images in batches of `timing_batch` after
    a warm-up, for at least `timing_seconds` (a GPU makes 256 small images in milliseconds, too short for a stable
    figure). `fold` and `replicate` are recorded in the result. Diversity: mean MS-SSIM over `diversity_pairs`
    random pairs of those synthetic images, and of the class's real training images.

    The steps, in order: the class's real images (`_ClassImages`), the reconstruction of the test images
    (`_reconstruction`), the synthetic images' fidelity, memorisation and diversity (`_synthetic_quality`), the
    generation time (`_inference_ms`), and the record (`_quality_record`).
    """
    set_threads(threads)
    dev = resolve_device(device)
    payload = load_checkpoint(checkpoint)
    check_class(payload, class_name, checkpoint)
    stats = _train_stats(train_stats or Path(checkpoint).parent / "train_stats.json")
    split = read_split(split_csv)
    seed_everything(seed)
    model = build_from_checkpoint(payload, dev)
    info = _synthesis_info(Path(synthetic_info or Path(synthetic_manifest).parent / "info.json"))
    context_mode = info.get("context") or "mean"
    sampling = info.get("sampling") or {"mode": "prior"}
    real = _ClassImages.load(split, split_csv, class_name, int(payload["image_size"]), int(payload["channels"]))
    rec, own, recon_path = _reconstruction(model, payload, class_name, real, split_csv, context_mode, seed, dev)
    synthetic = _synthetic_quality(
        payload, class_name, real, synthetic_manifest, inception_weights=inception_weights,
        max_fid_images=max_fid_images, near_copy_ssim=near_copy_ssim, diversity_pairs=diversity_pairs, seed=seed,
        dev=dev,
    )
    ms_per_image = _inference_ms(model, payload, class_name, real, split_csv, seed, dev, context_mode, sampling,
                                 timing_images, timing_batch, timing_seconds)
    quality = _quality_record(
        model, payload, class_name, rec, own, recon_path, synthetic, stats, ms_per_image, dev, context_mode, sampling,
        config_name=config_name, seed=seed, fold=fold, replicate=replicate, checkpoint=checkpoint,
    )
    write_json(out_json, quality)
    return quality


# --------------------------------------------------------------------------------------------------------------
# The pieces of evaluate_generator, in the order it calls them
# --------------------------------------------------------------------------------------------------------------


def _synthesis_info(path: Path) -> dict:
    """info.json of the synthetic set (its context and sampling)."""
    if not path.is_file():
        raise CatvaeError(f"synthesis info not found: {path} (it records how the synthetic set was made: "
                          "context, sampling)")
    return read_json(path)


@dataclass(frozen=True)
class _ClassImages:
    """The class's real test images (scored) and training images (context, memorisation, diversity yardstick)."""

    test_rows: pd.DataFrame
    train_rows: pd.DataFrame
    test: np.ndarray
    train: np.ndarray

    @classmethod
    def load(cls, split: pd.DataFrame, split_csv: str, class_name: str, size: int, channels: int) -> "_ClassImages":
        test_rows = class_rows(split, class_name, "test")
        if test_rows.empty:
            raise CatvaeError(f"no test images of class {class_name!r} in split file {split_csv}: nothing to score on")
        train_rows = class_rows(split, class_name, "train")
        if train_rows.empty:
            raise CatvaeError(f"no training images of class {class_name!r} in split file {split_csv}")
        return cls(test_rows, train_rows, load_images(list(test_rows["abspath"]), size, channels),
                   load_images(list(train_rows["abspath"]), size, channels))


def _reconstruction(
    model: torch.nn.Module, payload: dict, class_name: str, real: _ClassImages, split_csv: str, context_mode: str,
    seed: int, dev: torch.device,
) -> tuple[dict, dict | None, str]:
    """Reconstruction metrics of the held-out test images through the latent code, the CAT-VAE's own-features
    metrics (None for other models), and which inputs the decoder got (`recon_path`)."""
    from catvae.metrics.reconstruction import reconstruction_metrics

    conditional = generator(payload["model_name"]).conditional
    labels, mods = (
        encode_conditions(real.test_rows, payload["classes"], payload["modalities"], split_csv) if conditional
        else (None, None)
    )
    own = None
    if not model.encodes:
        log.info("%s/%s: %s", payload["model_name"], class_name, NO_ENCODER_NOTE)
        return {"ssim": None, "psnr": None, "mse": None, "n": None}, own, "n/a (no encoder)"
    if getattr(model, "uses_context", False):
        own = reconstruction_metrics(
            real.test, batched(lambda x, y, m: model.reconstruct(x), real.test, None, None, dev))
        contexts = ContextSampler(model, real.train, context_mode, seed, dev)
        recon = batched(lambda x, y, m: model.reconstruct(x, context=contexts.next(len(x))), real.test, None,
                        None, dev)
        recon_path = f"z + {context_mode} context"
    else:
        recon = batched(lambda x, y, m: model.reconstruct(x, labels=y, modalities=m), real.test, labels, mods, dev)
        recon_path = "z + labels" if conditional else "z"
    rec = reconstruction_metrics(real.test, recon)
    log.info("%s/%s reconstruction of %d test images from %s: SSIM %.4f PSNR %.2f MSE %.5f%s",
             payload["model_name"], class_name, rec["n"], recon_path, rec["ssim"], rec["psnr"], rec["mse"],
             f" (own features: SSIM {own['ssim']:.4f})" if own else "")
    return rec, own, recon_path


def _synthetic_quality(
    payload: dict, class_name: str, real: _ClassImages, synthetic_manifest: str, *, inception_weights: str | None,
    max_fid_images: int, near_copy_ssim: float, diversity_pairs: int, seed: int, dev: torch.device,
) -> dict[str, dict]:
    """The synthetic images' FID/KID against the held-out real images, memorisation of the real training images,
    and diversity beside the real training images': {"fid", "memorisation", "diversity", "diversity_real"}."""
    from catvae.metrics.diversity import pair_diversity
    from catvae.metrics.fidelity import fid_kid
    from catvae.metrics.memorisation import memorisation

    synth = read_manifest(synthetic_manifest, required=("index", "class", "model", "path"))
    synth = synth[synth["class"] == class_name].head(max_fid_images)
    fake = load_images(list(synth["abspath"]), int(payload["image_size"]), int(payload["channels"]))
    fid = fid_kid(real.test, fake, weights_path=inception_weights, max_images=max_fid_images, device=str(dev),
                  seed=seed)
    memo = memorisation(fake, real.train, near_copy_ssim=near_copy_ssim)
    if not len(fake):
        memo["note"] = "n/a: no synthetic images (largest target at or below the real training count)"
    diversity = pair_diversity(fake, n_pairs=diversity_pairs, seed=seed, name=f"synthetic {class_name} images")
    diversity_real = pair_diversity(real.train, n_pairs=diversity_pairs, seed=seed,
                                    name=f"real training {class_name} images")
    log.info("%s/%s diversity (MS-SSIM of random pairs, lower = more diverse): synthetic %s, real training %s",
             payload["model_name"], class_name, diversity["ms_ssim"], diversity_real["ms_ssim"])
    return {"fid": fid, "memorisation": memo, "diversity": diversity, "diversity_real": diversity_real}


def _inference_ms(
    model: torch.nn.Module, payload: dict, class_name: str, real: _ClassImages, split_csv: str, seed: int,
    dev: torch.device, context_mode: str, sampling: dict, timing_images: int, timing_batch: int,
    timing_seconds: float,
) -> float:
    """Inference time per generated image, with the same conditions synthesis uses."""
    from catvae.metrics.resources import time_generation

    generate, checked = _generation_fn(
        model, payload, class_name, real.train, real.train_rows, split_csv, seed, dev,
        generator(payload["model_name"]).conditional, context_mode, sampling, timing_batch,
    )
    with checked():  # the cvae's labels were validated once, outside the timed loop
        return time_generation(generate, timing_images, timing_batch, dev, min_seconds=timing_seconds)


def _quality_record(
    model: torch.nn.Module, payload: dict, class_name: str, rec: dict, own: dict | None, recon_path: str,
    synthetic: dict[str, dict], stats: dict, ms_per_image: float, dev: torch.device, context_mode: str,
    sampling: dict, *, config_name: str, seed: int, fold: int, replicate: int, checkpoint: str,
) -> dict:
    """quality.json (docs/ARCHITECTURE.md): the scores, the training's cost and device, and what was scored."""
    uses_context = bool(getattr(model, "uses_context", False))
    fid, diversity, diversity_real = synthetic["fid"], synthetic["diversity"], synthetic["diversity_real"]
    return {
        "model": payload["model_name"],
        "class": class_name,
        "ssim": rec["ssim"],
        "psnr": rec["psnr"],
        "mse": rec["mse"],
        "n_recon": rec["n"],
        "recon_path": recon_path,
        "ssim_own_features": own["ssim"] if own else None,
        "psnr_own_features": own["psnr"] if own else None,
        "mse_own_features": own["mse"] if own else None,
        "own_features_note": None if own else NO_BYPASS_NOTE,
        **({} if model.encodes else {f"{key}_note": NO_ENCODER_NOTE for key in ("ssim", "psnr", "mse")}),
        "fid": fid["fid"],
        "kid": fid["kid"],
        "kid_std": fid["kid_std"],
        "n_fid_real": fid["n_real"],
        "n_fid_fake": fid["n_fake"],
        "fid_note": fid["note"],
        "kid_note": fid["note"],
        "train_time_s": stats.get("wall_time_s"),
        "inference_ms_per_image": ms_per_image,
        "inference_device": str(dev),
        "inference_device_name": device_name(dev),
        "peak_memory_mb": stats.get("peak_memory_mb"),
        "device": stats.get("device"),
        "device_name": stats.get("device_name"),
        "amp_dtype": stats.get("amp_dtype"),
        "parameters": stats.get("parameters"),
        "memorisation": synthetic["memorisation"],
        "diversity_ms_ssim": diversity["ms_ssim"],
        "diversity_ms_ssim_real": diversity_real["ms_ssim"],
        "diversity_ms_ssim_note": diversity.get("note"),
        "diversity_ms_ssim_real_note": diversity_real.get("note"),
        "diversity": {"synthetic": diversity, "real_train": diversity_real},
        "attention": payload["options"].get("attention") if uses_context else None,
        "context": context_mode if uses_context else None,
        "sampling": sampling,
        "config_name": config_name,
        "seed": int(seed),
        "fold": int(fold),
        "replicate": int(replicate),
        "checkpoint": str(checkpoint),
    }


def export_latents(checkpoint: str, split_csv: str, out_npz: str, device: str = "auto", threads: int = 1) -> dict:
    """Encode every real image of the split (all partitions) to its latent mean; write `out_npz`.

    Arrays: `mu` [N, latent], `labels` and `modalities` (indices), `class_names` and `modality_names` (the index
    tables), `partition` and `path` (per image). Returns a summary dict (n, latent_dim).
    """
    set_threads(threads)
    dev = resolve_device(device)
    payload = load_checkpoint(checkpoint)
    model = build_from_checkpoint(payload, dev)
    split = read_split(split_csv)
    rows = split[split["class"].isin(payload["classes"])].reset_index(drop=True)
    if rows.empty:
        raise CatvaeError(f"no images of classes {payload['classes']} in split file {split_csv}")
    conditional = generator(payload["model_name"]).conditional
    if conditional:
        labels, mods = encode_conditions(rows, payload["classes"], payload["modalities"], split_csv)
    else:
        labels = np.array([payload["classes"].index(c) for c in rows["class"]], dtype=np.int64)
        mods = np.zeros(len(rows), dtype=np.int64)
    images = load_images(list(rows["abspath"]), int(payload["image_size"]), int(payload["channels"]))
    mu = batched(
        lambda x, y, m: model.encode_mu(x, labels=y, modalities=m), images,
        labels if conditional else None, mods if conditional else None, dev,
    )
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle, mu=mu.astype(np.float32), labels=labels, modalities=mods,
                class_names=np.array(payload["classes"]), modality_names=np.array(payload["modalities"]),
                partition=rows["partition"].to_numpy(dtype=str), path=rows["path"].to_numpy(dtype=str),
            )
    log.info("exported %d latent means (dim %d) to %s", len(mu), mu.shape[1], out_npz)
    return {"n": int(len(mu)), "latent_dim": int(mu.shape[1])}


def _generation_fn(
    model: torch.nn.Module, payload: dict, class_name: str, real_train: np.ndarray, train_rows: pd.DataFrame,
    split_csv: str, seed: int, dev: torch.device, conditional: bool, context_mode: str, sampling: dict,
    max_batch: int,
) -> tuple[Callable[[int], torch.Tensor], Callable[[], AbstractContextManager]]:
    """`n -> images` with the conditions synthesis used (its context and sampling; class label, first modality).

    Everything that is not generation happens here, before timing: the context, the latent sampler, and for the
    cvae the label and modality codes for the largest batch, built on the device and validated once. The second
    value is the context manager to time in (the cvae's `conditions_checked`, which skips the per-call range check
    and its host synchronisations; a no-op for the other models). Latents come from a CPU generator (or the
    mixture's NumPy generator), as in synthesis.
    """
    sampler = ContextSampler(model, real_train, context_mode, seed, dev) if model.uses_context else None
    options = sampling_options({k: v for k, v in sampling.items() if k in DEFAULT_SAMPLING}, payload["model_name"])
    latents = latent_sampler(model, payload, options, real_train, train_rows, split_csv, seed, dev)
    gen = torch.Generator().manual_seed(int(seed))
    conditions = {}
    if conditional:
        label = payload["classes"].index(class_name)
        present = [i for i, m in enumerate(payload["modalities"]) if m in set(train_rows["modality"])] or [0]
        conditions = {
            "labels": torch.full((max_batch,), label, dtype=torch.long),
            "modalities": torch.full((max_batch,), present[0], dtype=torch.long),
        }
        model.check_conditions(conditions["labels"], conditions["modalities"])
        conditions = {key: value.to(dev) for key, value in conditions.items()}

    @torch.no_grad()
    def generate(n: int) -> torch.Tensor:
        kwargs = {key: value[:n] for key, value in conditions.items()}
        if sampler is not None:
            kwargs["context"] = sampler.next(n)
        return model.generate(n, generator=gen, latents=latents.next(n), **kwargs)

    return generate, (model.conditions_checked if conditional else nullcontext)


def _train_stats(path: str | Path) -> dict:
    """train_stats.json written by training (time, peak memory, device)."""
    path = Path(path)
    if not path.is_file():
        raise CatvaeError(f"training statistics not found: {path}")
    return read_json(path)
