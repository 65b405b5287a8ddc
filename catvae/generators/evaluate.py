"""Quality of one generator for one class (quality.json), and the cvae's latent export for the latent-space figure.

Why these inputs: reconstructions are scored on the class's held-out real *test* images (scoring training images
would reward memorisation); FID/KID compare the synthetic images the classifier actually receives with held-out
real images; memorisation compares those same synthetic images with the real *training* images they could copy.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from catvae.data.images import load_images, read_manifest
from catvae.device import device_name, resolve_device, seed_everything, set_threads
from catvae.errors import CatvaeError
from catvae.generators.checkpoint import build_from_checkpoint, load_checkpoint
from catvae.generators.synthesis import ContextSampler, check_class
from catvae.generators.train import class_rows, encode_conditions, read_split
from catvae.io import atomic_path, read_json, write_json
from catvae.precision import to_device
from catvae.registry import generator

log = logging.getLogger("catvae.generators.evaluate")

#: Batch for encoding / reconstructing real images.
EVAL_BATCH = 64


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
) -> dict:
    """Score the generator in `checkpoint` on `class_name`; write `out_json` (quality.json) and return it.

    FID/KID use at most `max_fid_images` per side: the first rows of the synthetic manifest (generation order,
    so the same images as the smallest arms) and a seeded subsample of the real test images. Training time and
    peak memory come from `train_stats` (default: `train_stats.json` beside the checkpoint), the generation context
    from `synthetic_info` (default: `info.json` beside the manifest); the workflow names both as rule inputs.
    Inference time is measured here by generating at least `timing_images` images in batches of `timing_batch` after
    a warm-up, for at least `timing_seconds` (a GPU makes 256 small images in milliseconds, too short for a stable
    figure). `fold` and `replicate` are recorded in the result.
    """
    from catvae.metrics.fidelity import fid_kid
    from catvae.metrics.memorisation import memorisation
    from catvae.metrics.reconstruction import reconstruction_metrics
    from catvae.metrics.resources import time_generation

    set_threads(threads)
    dev = resolve_device(device)
    payload = load_checkpoint(checkpoint)
    check_class(payload, class_name, checkpoint)
    stats = _train_stats(train_stats or Path(checkpoint).parent / "train_stats.json")
    split = read_split(split_csv)
    size, channels = int(payload["image_size"]), int(payload["channels"])
    seed_everything(seed)
    model = build_from_checkpoint(payload, dev)
    conditional = generator(payload["model_name"]).conditional
    uses_context = bool(getattr(model, "uses_context", False))

    test_rows = class_rows(split, class_name, "test")
    if test_rows.empty:
        raise CatvaeError(f"no test images of class {class_name!r} in split file {split_csv}: nothing to score on")
    train_rows = class_rows(split, class_name, "train")
    if train_rows.empty:
        raise CatvaeError(f"no training images of class {class_name!r} in split file {split_csv}")
    real_test = load_images(list(test_rows["abspath"]), size, channels)
    real_train = load_images(list(train_rows["abspath"]), size, channels)

    # Reconstruction of held-out images.
    labels, mods = (
        encode_conditions(test_rows, payload["classes"], payload["modalities"], split_csv) if conditional else (None, None)
    )
    recon = _batched(lambda x, y, m: model.reconstruct(x, labels=y, modalities=m), real_test, labels, mods, dev)
    rec = reconstruction_metrics(real_test, recon)
    log.info("%s/%s reconstruction of %d test images: SSIM %.4f PSNR %.2f MSE %.5f",
             payload["model_name"], class_name, rec["n"], rec["ssim"], rec["psnr"], rec["mse"])

    # Synthetic images: FID/KID against held-out real, memorisation against training images.
    synth = read_manifest(synthetic_manifest, required=("index", "class", "model", "path"))
    synth = synth[synth["class"] == class_name].head(max_fid_images)
    fake = load_images(list(synth["abspath"]), size, channels)
    fid = fid_kid(real_test, fake, weights_path=inception_weights, max_images=max_fid_images, device=str(dev), seed=seed)
    memo = memorisation(fake, real_train, near_copy_ssim=near_copy_ssim)
    if not len(fake):
        memo["note"] = "n/a: no synthetic images (largest target at or below the real training count)"

    # Inference time per generated image, with the same conditions synthesis uses.
    generate, checked = _generation_fn(
        model, payload, class_name, real_train, train_rows, seed, dev, conditional, uses_context, timing_batch
    )
    with checked():  # the cvae's labels were validated once, outside the timed loop
        ms_per_image = time_generation(generate, timing_images, timing_batch, dev, min_seconds=timing_seconds)

    synth_info = Path(synthetic_info or Path(synthetic_manifest).parent / "info.json")
    if synthetic_info is not None and not synth_info.is_file():
        raise CatvaeError(f"synthesis info not found: {synth_info}")
    context = read_json(synth_info).get("context") if synth_info.is_file() else None
    quality = {
        "model": payload["model_name"],
        "class": class_name,
        "ssim": rec["ssim"],
        "psnr": rec["psnr"],
        "mse": rec["mse"],
        "n_recon": rec["n"],
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
        "memorisation": memo,
        "attention": payload["options"].get("attention") if uses_context else None,
        "context": context if uses_context else None,
        "config_name": config_name,
        "seed": int(seed),
        "fold": int(fold),
        "replicate": int(replicate),
        "checkpoint": str(checkpoint),
    }
    write_json(out_json, quality)
    return quality


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
    mu = _batched(
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


@torch.no_grad()
def _batched(
    fn: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor],
    images: np.ndarray,
    labels: np.ndarray | None,
    mods: np.ndarray | None,
    device: torch.device,
) -> np.ndarray:
    """Apply a model function batch by batch; conditions are sliced alongside the images."""
    outputs = []
    for start in range(0, len(images), EVAL_BATCH):
        end = start + EVAL_BATCH
        x = to_device(torch.from_numpy(images[start:end]), device)
        y = to_device(torch.from_numpy(labels[start:end]), device) if labels is not None else None
        m = to_device(torch.from_numpy(mods[start:end]), device) if mods is not None else None
        outputs.append(fn(x, y, m).float().cpu().numpy())
    return np.concatenate(outputs)


def _generation_fn(
    model: torch.nn.Module, payload: dict, class_name: str, real_train: np.ndarray, train_rows: pd.DataFrame,
    seed: int, dev: torch.device, conditional: bool, uses_context: bool, max_batch: int,
) -> tuple[Callable[[int], torch.Tensor], Callable[[], AbstractContextManager]]:
    """`n -> images` with the conditions synthesis uses (mean context; class label and first present modality).

    Everything that is not generation happens here, before timing: the context, and for the cvae the label and
    modality codes for the largest batch, built on the device and validated once. The second value is the
    context manager to time in (the cvae's `conditions_checked`, which skips the per-call range check and its
    host synchronisations; a no-op for the other models). Latents come from a CPU generator, as in synthesis.
    """
    sampler = ContextSampler(model, real_train, "mean", seed, dev) if uses_context else None
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
        return model.generate(n, generator=gen, **kwargs)

    return generate, (model.conditions_checked if conditional else nullcontext)


def _train_stats(path: str | Path) -> dict:
    """train_stats.json written by training (time, peak memory, device)."""
    path = Path(path)
    if not path.is_file():
        raise CatvaeError(f"training statistics not found: {path}")
    return read_json(path)
