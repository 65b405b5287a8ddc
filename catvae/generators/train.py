"""Train one generator (VAE / CAT-VAE / diffusion per class, conditional VAE over all classes) with checkpoint + resume.

Why resume matters: the paper preset trains for 500 epochs; a job killed by a cluster's time limit must
continue where it stopped and end with exactly the weights an uninterrupted run would have produced.
That is achieved by (1) shuffling each epoch with its own generator seeded `seed + epoch`, and
(2) saving every other RNG state (torch, NumPy, Python, CUDA), the optimiser, scheduler and AMP scaler
(and, with `selection: best_val`, the best epoch so far and its weights) into the resume checkpoint, which
lives outside Snakemake's declared outputs (Snakemake deletes those before re-running a job).

Validation: with `selection: best_val` or a `plateau` block (the conditional VAE's reference: ReduceLROnPlateau
and best-model selection), the loss is also computed each epoch on the real *validation* images of split.csv
(eval mode, z = mu, no random numbers drawn), at the end of any beta warm-up, so that every epoch is compared on
the final objective rather than on a training loss that rises by design while beta warms up. The scheduler
steps on it, and `checkpoint.pt` then holds the weights of the epoch with the lowest validation loss.

Optimiser (`catvae.optim.build_adam`, fused on a CPU): the Keras-ported VAE and CAT-VAE train with Keras' Adam
(`catvae.optim.KerasAdam`, epsilon 1e-7 applied as Keras does); the conditional VAE, whose reference is PyTorch,
with `torch.optim.Adam`, as does the diffusion comparator (MONAI's tutorials train theirs with it).
"""

from __future__ import annotations

import logging
import math
import os
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from catvae.config import defaults, schema_enum
from catvae.data.images import load_images
from catvae.data.split import read_split
from catvae.device import device_name, resolve_device, seed_everything, set_threads
from catvae.errors import CatvaeError
from catvae.generators.checkpoint import (
    capture_rng_state,
    config_fingerprint,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from catvae.generators.conditioning import encode_conditions, training_rows
from catvae.generators.latents import ACTIVE_THRESHOLD, active_dims, encode_means
from catvae.io import JobFiles, write_csv, write_json
from catvae.logs import PROGRESS
from catvae.optim import build_adam
from catvae.precision import amp_dtype as resolve_amp_dtype
from catvae.precision import autocast, dtype_name, grad_scaler, to_device, use_channels_last
from catvae.registry import generator
from catvae.vocabulary.layout import GENERATOR_FILES

log = logging.getLogger("catvae.generators.train")

SELECTIONS = schema_enum("generators", "vae", "selection")
RESUME_FILE = "resume.pt"


@dataclass(frozen=True)
class GeneratorFiles(JobFiles):
    """The files one generator training job writes (see `JobFiles`)."""

    checkpoint: Path
    history: Path
    stats: Path

    DEFAULT_NAMES = GENERATOR_FILES


# --------------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------------


def train_generator(
    model_name: str,
    split_csv: str,
    outputs: GeneratorFiles | str | os.PathLike,
    *,
    group: str,
    image_size: int,
    channels: int,
    options: dict,
    classes: list[str],
    modalities: list[str],
    seed: int,
    device: str = "auto",
    threads: int = 1,
    resume_dir: str | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict:
    """Train `model_name` on the training images of `group`; write the checkpoint, history and train_stats files
    named by `outputs` (`GeneratorFiles`; a folder gives checkpoint.pt, history.csv, train_stats.json).

    `options` is the config block `generators.<model_name>` (training keys `epochs`, `batch_size`, `lr`,
    `weight_decay`, `checkpoint_every`, `amp`, `plateau: {patience, factor}`, `grad_clip`, `selection`
    ('last' | 'best_val'), plus the model's own keys, passed whole to `build_generator`). Every `checkpoint_every`
    epochs a resume checkpoint is written to `resume_dir` (default `.resume/` beside the checkpoint); a later call
    with the same configuration continues from it and
    deletes it once the run is complete. `on_epoch_end(epoch)` runs after each epoch's resume checkpoint
    (1-based epoch); an exception there stops training as a crash would. Returns the train_stats dict.

    The steps, in order (the order of the random draws is part of the resume contract): load the images
    (`_load_training_data`), seed and build the model and its optimiser (`_build_optimisation`), continue from a
    resume checkpoint if one fits (`_resume`), train the remaining epochs (`_run_epochs`), then keep the selected
    epoch's weights and write the outputs (`_finish`).
    """
    conditional = generator(model_name).conditional
    hp = _training_options(model_name, options)
    set_threads(threads)
    dev = resolve_device(device)
    amp_dtype = resolve_amp_dtype(hp["amp"], dev, key=f"generators.{model_name}.amp")
    files = outputs if isinstance(outputs, GeneratorFiles) else GeneratorFiles.in_folder(outputs)
    resume_path = Path(resume_dir) if resume_dir else Path(files.checkpoint).parent / ".resume"
    resume_path = resume_path / RESUME_FILE

    data = _load_training_data(split_csv, model_name, group, classes, modalities, image_size, channels, conditional,
                               validate=hp["selection"] == "best_val" or hp["plateau"] is not None)
    job = _Job(
        model_name=model_name, group=group, image_size=image_size, channels=channels, options=options,
        classes=list(classes), modalities=list(modalities), seed=seed, hp=hp, device=dev, amp_dtype=amp_dtype,
        channels_last=use_channels_last(dev, amp_dtype), conditional=conditional,
        fingerprint=config_fingerprint(
            model_name=model_name, group=group, image_size=image_size, channels=channels, options=options,
            classes=list(classes), modalities=list(modalities), seed=seed,
            rows=data.rows[["path", "class", "modality"]].to_dict("list"),
            # Another GPU model or precision gives other numbers: its resume file must not be continued here.
            device_name=device_name(dev), amp_dtype=dtype_name(amp_dtype),
        ),
    )
    opt = _build_optimisation(job, data)
    progress = _resume(resume_path, job, opt)
    tensors = _device_tensors(job, opt.model, data)
    log.info(
        "training %s/%s on %d images (%dx%d, %d channel(s)) for %d epochs on %s (%s)%s",
        model_name, group, len(data.rows), image_size, image_size, channels, hp["epochs"], dev, device_name(dev),
        f", AMP {dtype_name(amp_dtype)}" if amp_dtype else "",
    )
    run = _run_epochs(job, opt, progress, tensors, resume_path, on_epoch_end)
    stats = _finish(job, opt, progress, run, data, files)
    _remove_resume(resume_path)
    log.info("finished %s/%s in %.1f s (peak %.0f MB)", model_name, group, run.wall_time, run.peak_mb)
    return stats


# --------------------------------------------------------------------------------------------------------------
# The pieces of a training run, in the order train_generator calls them
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What one training run is: fixed before the first epoch, recorded in every checkpoint."""

    model_name: str
    group: str
    image_size: int
    channels: int
    options: dict
    classes: list[str]
    modalities: list[str]
    seed: int
    hp: dict[str, Any]               # the validated training keys (`_training_options`)
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    conditional: bool
    fingerprint: str

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.conditional else 1

    @property
    def n_modalities(self) -> int:
        return len(self.modalities) if self.conditional else 1


@dataclass(frozen=True)
class _TrainingData:
    """The generator's training rows and images on the host, the cvae's codes, and the validation set (or None)."""

    rows: pd.DataFrame
    images: np.ndarray
    labels: np.ndarray | None
    mods: np.ndarray | None
    val: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None] | None


@dataclass
class _Optimisation:
    """The model and what updates it (all saved in the resume checkpoint)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None
    scaler: torch.amp.GradScaler


@dataclass
class _Progress:
    """What the run has done so far: empty at the start, or restored from a resume checkpoint."""

    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, Any] | None = None      # {"epoch", "val_loss", "model_state"} of the lowest validation loss
    start_epoch: int = 0
    elapsed_before: float = 0.0
    peak_before: float = 0.0
    resumed_from: int | None = None


@dataclass(frozen=True)
class _EpochsRun:
    """The whole run's cost (earlier attempts included), once the last epoch has run."""

    wall_time: float
    peak_mb: float
    peak_scope: str | None


def _load_training_data(
    split_csv: str, model_name: str, group: str, classes: Sequence[str], modalities: Sequence[str], image_size: int,
    channels: int, conditional: bool, *, validate: bool,
) -> _TrainingData:
    """Read the split and load the group's training images (and, with `validate`, its validation images)."""
    split = read_split(split_csv)
    rows = training_rows(split, split_csv, model_name, group, classes)
    images = load_images(list(rows["abspath"]), image_size, channels)
    labels, mods = encode_conditions(rows, classes, modalities, split_csv) if conditional else (None, None)
    val = _validation_set(split, split_csv, model_name, group, classes, modalities, image_size, channels,
                          conditional) if validate else None
    return _TrainingData(rows, images, labels, mods, val)


def _build_optimisation(job: _Job, data: _TrainingData) -> _Optimisation:
    """Seed, then build the model, its optimiser, the plateau scheduler and the AMP scaler."""
    from catvae.models import build_generator

    hp = job.hp
    seed_everything(job.seed)
    model = build_generator(
        job.model_name, image_size=job.image_size, channels=job.channels, options=dict(job.options),
        n_classes=job.n_classes, n_modalities=job.n_modalities,
    ).to(job.device)
    if job.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if job.conditional:  # once per data set, on the host; each step's codes are slices of these
        model.check_conditions(torch.from_numpy(data.labels), torch.from_numpy(data.mods))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_adam(trainable, lr=hp["lr"], weight_decay=hp["weight_decay"],
                           keras=generator(job.model_name).keras)
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", patience=hp["plateau"]["patience"], factor=hp["plateau"]["factor"]
        )
        if hp["plateau"]
        else None
    )
    return _Optimisation(model, optimizer, scheduler, grad_scaler(job.amp_dtype))


def _resume(resume_path: Path, job: _Job, opt: _Optimisation) -> _Progress:
    """Continue from the resume checkpoint if it belongs to this run (weights, optimiser, scheduler, scaler, RNG
    states, history, best epoch so far); a fresh `_Progress` otherwise."""
    resume = _load_resume(resume_path, job.fingerprint, job.hp["epochs"])
    if resume is None:
        return _Progress()
    opt.model.load_state_dict(resume["model_state"])
    opt.optimizer.load_state_dict(resume["optimizer_state"])
    if opt.scheduler is not None and resume.get("scheduler_state") is not None:
        opt.scheduler.load_state_dict(resume["scheduler_state"])
    if resume.get("scaler_state"):
        opt.scaler.load_state_dict(resume["scaler_state"])
    restore_rng_state(resume["rng_state"], job.device)
    progress = _Progress(
        history=list(resume["history"]), best=resume.get("best"), start_epoch=int(resume["epoch"]),
        elapsed_before=float(resume.get("elapsed_s", 0.0)), peak_before=float(resume.get("peak_memory_mb") or 0.0),
        resumed_from=int(resume["epoch"]),
    )
    log.info("resuming %s/%s from epoch %d (%s)", job.model_name, job.group, progress.start_epoch, resume_path)
    return progress


def _device_tensors(job: _Job, model: torch.nn.Module, data: _TrainingData) -> dict[str, Any]:
    """The training images and codes, and the validation set, on the device (the validation codes checked once)."""
    dev = job.device
    val = data.val
    if val is not None:
        if job.conditional:  # validated once, like the training codes; each epoch's pass then skips the range checks
            model.check_conditions(val[1], val[2])
        val = tuple(t.to(dev) if t is not None else None for t in val)
    return {
        "images": torch.from_numpy(data.images).to(dev),
        "labels": torch.from_numpy(data.labels).to(dev) if job.conditional else None,
        "mods": torch.from_numpy(data.mods).to(dev) if job.conditional else None,
        "val": val,
    }


def _codes_checked(job: _Job, model: torch.nn.Module) -> Callable[[], AbstractContextManager]:
    """The cvae's `conditions_checked` (its codes were validated once: skip the per-step range checks)."""
    return model.conditions_checked if job.conditional else nullcontext


def _checkpoint_payload(job: _Job, opt: _Optimisation, progress: _Progress, epoch: int, elapsed: float, peak: float,
                        final: bool = False) -> dict[str, Any]:
    """Everything a checkpoint holds: the run's description, every state, the history and the cost so far."""
    return {
        "model_name": job.model_name, "group": job.group, "image_size": job.image_size, "channels": job.channels,
        "options": dict(job.options), "classes": list(job.classes), "modalities": list(job.modalities),
        "n_classes": job.n_classes, "n_modalities": job.n_modalities, "seed": job.seed, "epoch": epoch,
        "model_state": opt.model.state_dict(), "optimizer_state": opt.optimizer.state_dict(),
        "scheduler_state": opt.scheduler.state_dict() if opt.scheduler is not None else None,
        "scaler_state": opt.scaler.state_dict() if opt.scaler.is_enabled() else None,
        "rng_state": capture_rng_state(job.device), "history": list(progress.history),
        "fingerprint": job.fingerprint, "elapsed_s": elapsed, "peak_memory_mb": peak, "device": str(job.device),
        "selection": job.hp["selection"],
        **({} if final else {"best": progress.best}),  # the final checkpoint's model_state *is* the selected one
    }


def _run_epochs(job: _Job, opt: _Optimisation, progress: _Progress, tensors: dict[str, Any], resume_path: Path,
                on_epoch_end: Callable[[int], None] | None) -> _EpochsRun:
    """Train epochs `progress.start_epoch + 1` .. `epochs`: one training pass, the validation pass, the scheduler
    step and the best-epoch bookkeeping each, a resume checkpoint every `checkpoint_every` epochs."""
    from catvae.metrics.resources import PeakMemory

    hp, model, optimizer = job.hp, opt.model, opt.optimizer
    images, labels, mods, val = tensors["images"], tensors["labels"], tensors["mods"], tensors["val"]
    # Validation losses use the objective at the end of any beta warm-up (cvae), the same for every epoch.
    val_loss_epoch = int(getattr(model, "warmup_end", 0))
    started = time.perf_counter()
    peak_mb, peak_scope = progress.peak_before, None
    codes_checked = _codes_checked(job, model)  # skip per-step range checks
    for epoch in range(progress.start_epoch + 1, hp["epochs"] + 1):
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        # One measurement block per epoch: its peak is known as soon as the epoch ends, so a resume checkpoint
        # carries the peak so far and a resumed run still reports the whole run's peak.
        with PeakMemory(job.device) as peak, codes_checked():
            means = _train_epoch(
                model, optimizer, opt.scaler, images, labels, mods,
                epoch=epoch, seed=job.seed, batch_size=hp["batch_size"], grad_clip=hp["grad_clip"],
                amp_dtype=job.amp_dtype, channels_last=job.channels_last,
            )
        peak_mb, peak_scope = max(peak_mb, float(peak.peak_mb)), peak.scope
        with codes_checked():
            val_means = _validate(model, *val, batch_size=hp["batch_size"],
                                  loss_epoch=max(epoch - 1, val_loss_epoch)) if val is not None else {}
        monitored = val_means.get("total", means["total"])
        if opt.scheduler is not None:
            opt.scheduler.step(monitored)
        if hp["selection"] == "best_val" and (progress.best is None or monitored < progress.best["val_loss"]):
            progress.best = {"epoch": epoch, "val_loss": monitored,
                             "model_state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        seconds = time.perf_counter() - t0
        progress.history.append({"epoch": epoch, **means, **{f"val_{k}": v for k, v in val_means.items()},
                                 "lr": lr, "seconds": seconds})
        log.info(
            "%s/%s epoch %d/%d: %s%s lr %.3g (%.1f s)", job.model_name, job.group, epoch, hp["epochs"],
            " ".join(f"{k} {v:.4g}" for k, v in means.items()),
            f" | val total {val_means['total']:.4g}" if val_means else "", lr, seconds, extra=PROGRESS,
        )
        if epoch % hp["checkpoint_every"] == 0 and epoch < hp["epochs"]:
            elapsed = progress.elapsed_before + time.perf_counter() - started
            save_checkpoint(resume_path, _checkpoint_payload(job, opt, progress, epoch, elapsed, peak_mb))
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return _EpochsRun(progress.elapsed_before + time.perf_counter() - started, peak_mb, peak_scope)


def _finish(job: _Job, opt: _Optimisation, progress: _Progress, run: _EpochsRun, data: _TrainingData,
            files: GeneratorFiles) -> dict[str, Any]:
    """Load the selected epoch's weights, count the active latent dimensions, write the checkpoint, the history and
    train_stats.json; return the stats."""
    from catvae.models import count_parameters

    hp, model, best = job.hp, opt.model, progress.best
    selected = hp["epochs"]
    if best is not None:
        model.load_state_dict(best["model_state"])
        selected = int(best["epoch"])
        log.info("selected epoch %d of %d (lowest validation loss %.6g)", selected, hp["epochs"], best["val_loss"])
    n_active = None  # a model without an encoder (diffusion) has no latent means to count
    if model.encodes:
        with _codes_checked(job, model)():  # the training codes were validated once, before the first epoch
            n_active = active_dims(encode_means(model, data.images, data.labels, data.mods, job.device))
    final = _checkpoint_payload(job, opt, progress, hp["epochs"], run.wall_time, run.peak_mb, final=True)
    final["selected_epoch"] = selected
    save_checkpoint(files.checkpoint, final)
    write_csv(files.history, pd.DataFrame(progress.history))
    rows, history, dev = data.rows, progress.history, job.device
    stats = {
        "model": job.model_name, "group": job.group, "wall_time_s": run.wall_time, "peak_memory_mb": run.peak_mb,
        "peak_memory_scope": run.peak_scope,
        "device": str(dev), "n_train": len(rows), "epochs": hp["epochs"], "parameters": count_parameters(model),
        "attention": job.options.get("attention") if model.uses_context else None,
        "amp": hp["amp"], "amp_dtype": dtype_name(job.amp_dtype), "channels_last": job.channels_last,
        "device_name": device_name(dev), "seed": job.seed,
        "image_size": job.image_size, "channels": job.channels, "batch_size": hp["batch_size"],
        "resumed_from_epoch": progress.resumed_from, "final_loss": history[-1]["total"] if history else None,
        # which subjects the generator learned from, so a reader (and a test) can check no test subject did
        "train_subjects": sorted(set(rows["subject"].astype(str))) if "subject" in rows.columns else None,
        "selection": hp["selection"], "best_epoch": selected if best is not None else None,
        "best_val_loss": best["val_loss"] if best is not None else None,
        "n_val": len(data.val[0]) if data.val is not None else 0,
        "active_latent_dims": n_active, "active_threshold": ACTIVE_THRESHOLD,
        "latent_dim": int(getattr(model, "latent_dim", 0)),
    }
    write_json(files.stats, stats)
    return stats


def _validation_set(
    split: pd.DataFrame, split_csv: str, model_name: str, group: str, classes: Sequence[str],
    modalities: Sequence[str], image_size: int, channels: int, conditional: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The real validation images of the generator's group (and their conditions), for selection and plateau."""
    try:
        rows = training_rows(split, split_csv, model_name, group, classes, partition="val")
    except CatvaeError as exc:
        raise CatvaeError(
            f"{exc}: config keys 'generators.{model_name}.selection: best_val' and '.plateau' need validation images "
            "(dataset.split.val > 0)"
        ) from None
    images = torch.from_numpy(load_images(list(rows["abspath"]), image_size, channels))
    if not conditional:
        return images, None, None
    labels, mods = encode_conditions(rows, classes, modalities, split_csv)
    return images, torch.from_numpy(labels), torch.from_numpy(mods)


@torch.no_grad()
def _validate(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None, mods: torch.Tensor | None,
              *, batch_size: int, loss_epoch: int) -> dict[str, float]:
    """Each loss term's mean over the validation images, in eval mode (z = mu: deterministic, no RNG drawn)."""
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        y = labels[start:start + batch_size] if labels is not None else None
        m = mods[start:start + batch_size] if mods is not None else None
        terms = model.loss(x, model(x, labels=y, modalities=m), labels=y, modalities=m, epoch=loss_epoch)
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value.float() * len(x)
    model.train()
    return {key: float(value) / len(images) for key, value in sums.items()}


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """Shuffled index batches of one epoch, from a generator seeded `seed + epoch` (resumable without state).

    A trailing batch of one image is merged into the previous one: BatchNorm (cvae) cannot train on one image.
    """
    gen = torch.Generator().manual_seed(int(seed) + int(epoch))
    chunks = list(torch.randperm(n, generator=gen).split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    mods: torch.Tensor | None,
    *,
    epoch: int,
    seed: int,
    batch_size: int,
    grad_clip: float | None,
    amp_dtype: torch.dtype | None,
    channels_last: bool = False,
) -> dict[str, float]:
    """One pass over the data; returns each loss term's mean over images (batch-size weighted).

    Nothing in the loop reads a value back to the host (apart from the float16 loss scaler's overflow check,
    which GradScaler makes every step): the epoch's permutation is copied to the device once, the loss sums stay
    on the device until the epoch ends, and the cvae's codes were validated once before the first epoch.
    """
    model.train()
    sums: dict[str, torch.Tensor] = {}
    batches = epoch_batches(len(images), batch_size, seed, epoch)
    order = to_device(torch.cat(batches), images.device).split([len(b) for b in batches])
    for idx in order:
        x = images[idx]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[idx] if labels is not None else None
        m = mods[idx] if mods is not None else None
        optimizer.zero_grad(set_to_none=True)
        with autocast(images.device, amp_dtype):
            out = model(x, labels=y, modalities=m)
        if amp_dtype:
            # Losses run in float32 outside autocast: BCE is not autocast-safe and sums over pixels overflow fp16.
            out = {k: v.float() for k, v in out.items()}
        terms = model.loss(x, out, labels=y, modalities=m, epoch=epoch - 1)
        total = terms["total"]
        scaler.scale(total).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + value.detach().float() * len(idx)
    means = {key: float(value) / len(images) for key, value in sums.items()}
    if not math.isfinite(means["total"]):
        raise CatvaeError(
            f"training loss became {means['total']} in epoch {epoch}; lower config key 'lr' ({optimizer.defaults['lr']})"
        )
    return means


def _training_options(model_name: str, options: dict) -> dict[str, Any]:
    """Validate the training keys of `generators.<model>` (merged over the schema's defaults); a bad value raises
    CatvaeError naming the key."""
    prefix = f"generators.{model_name}"
    options = {**defaults("generators", model_name), **options}

    def positive(key: str, value: Any, kind: type) -> Any:
        try:
            cast = kind(value)
        except (TypeError, ValueError):
            raise CatvaeError(f"config key '{prefix}.{key}' must be a positive number, got {value!r}") from None
        if not cast > 0 or (kind is int and cast != value):
            raise CatvaeError(f"config key '{prefix}.{key}' must be a positive {kind.__name__}, got {value!r}")
        return cast

    epochs = positive("epochs", options["epochs"], int)
    plateau = options.get("plateau")
    if plateau:
        plateau = {**defaults("generators", model_name, "plateau"), **plateau}
        plateau = {"patience": int(plateau["patience"]), "factor": float(plateau["factor"])}
        if not 0 < plateau["factor"] < 1:
            raise CatvaeError(f"config key '{prefix}.plateau.factor' must be in (0, 1), got {plateau['factor']}")
    grad_clip = options.get("grad_clip")
    selection = options.get("selection", "last")
    if selection not in SELECTIONS:
        raise CatvaeError(f"config key '{prefix}.selection' must be one of {list(SELECTIONS)}, got {selection!r}")
    return {
        "selection": selection,
        "epochs": epochs,
        "batch_size": positive("batch_size", options["batch_size"], int),
        "lr": positive("lr", options["lr"], float),
        "weight_decay": float(options["weight_decay"] or 0.0),
        "checkpoint_every": positive("checkpoint_every", options["checkpoint_every"], int),
        "amp": bool(options["amp"]),
        "plateau": plateau or None,
        "grad_clip": positive("grad_clip", grad_clip, float) if grad_clip else None,
    }


def _load_resume(path: Path, fingerprint: str, epochs: int) -> dict[str, Any] | None:
    """The resume checkpoint if it belongs to this exact configuration, else None (with the reason logged)."""
    if not path.is_file():
        return None
    try:
        payload = load_checkpoint(path)
    except CatvaeError as exc:
        log.warning("ignoring unreadable resume checkpoint: %s", exc)
        return None
    if payload.get("fingerprint") != fingerprint:
        log.warning("ignoring resume checkpoint %s: it was written for a different configuration", path)
        return None
    if int(payload["epoch"]) > epochs:
        log.warning("ignoring resume checkpoint %s: epoch %s is past the %d configured", path, payload["epoch"], epochs)
        return None
    return payload


def _remove_resume(path: Path) -> None:
    # The run is complete, so the resume file (optimiser state included, as large as the model x3) is waste.
    if path.is_file():
        path.unlink()
    try:
        path.parent.rmdir()
    except OSError:
        pass  # not empty or already gone: leave it
