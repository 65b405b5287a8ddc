"""Generator training: loss goes down, outputs follow the contract, a crashed run resumes to the same weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from catvae.data.images import save_png
from catvae.errors import CatvaeError
from catvae.generators.checkpoint import load_checkpoint
from catvae.generators.train import epoch_batches, train_generator

CLASSES = ["NoTumor", "Tumor"]
SIZE = 16

# Tiny versions of the config blocks `generators.<model>` (training keys + model keys).
TINY = {
    "vae": {"epochs": 4, "batch_size": 8, "lr": 0.002, "latent_dim": 8, "checkpoint_every": 2},
    "catvae": {"epochs": 4, "batch_size": 8, "lr": 0.002, "latent_dim": 8, "checkpoint_every": 2,
               "attention": "faithful"},
    "cvae": {"epochs": 4, "batch_size": 8, "lr": 0.002, "weight_decay": 1e-5, "latent_dim": 8, "checkpoint_every": 2,
             "class_embedding": 8, "modality_embedding": 4, "hidden": 32,
             "loss": {"mse": 1.0, "l1": 0.5, "perceptual": 0.1, "beta": 1.0, "gamma": 0.5},
             "beta_warmup": {"start": 1, "epochs": 2}, "plateau": {"patience": 1, "factor": 0.5}, "grad_clip": 1.0,
             "selection": "best_val"},
}


def make_split(root: Path, counts: dict[str, int] | None = None, modalities: tuple[str, ...] = ("flair",),
               size: int = SIZE, seed: int = 0) -> Path:
    """Write PNG slices and a split.csv (60% train, 20% val, 20% test per class) under `root`; return the CSV.

    NoTumor: a smooth grey disc ("brain") with noise; Tumor: the same plus a bright blob, so classes differ.
    """
    counts = counts or {"NoTumor": 10, "Tumor": 15}
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    rows = []
    for cls, n in counts.items():
        for i in range(n):
            brain = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.16).astype(float) * 0.5
            if cls == "Tumor":
                cx, cy = rng.uniform(0.35, 0.65, size=2)
                brain += 0.45 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.01)
            image = np.clip(brain + rng.normal(0, 0.03, brain.shape), 0, 1)
            modality = modalities[i % len(modalities)]
            rel = f"slices/{cls}/{cls}_{i:03d}_{modality}.png"
            save_png(root / rel, image)
            part = "train" if i < 0.6 * n else ("val" if i < 0.8 * n else "test")
            rows.append({"subject": f"S{cls}{i:03d}", "modality": modality, "plane": "axial", "slice_index": 40,
                         "class": cls, "tumor_voxels": 10 if cls == "Tumor" else 0, "brain_fraction": 0.4,
                         "path": rel, "partition": part})
    split_csv = root / "split.csv"
    pd.DataFrame(rows).to_csv(split_csv, index=False)
    return split_csv


def train(model: str, split_csv: Path, out_dir: Path, *, group: str | None = None, seed: int = 0,
          modalities: tuple[str, ...] = ("flair",), on_epoch_end=None, **overrides) -> dict:
    """Train a tiny generator with the test options (overrides replace option keys)."""
    return train_generator(
        model, str(split_csv), str(out_dir), group=group or ("all" if model == "cvae" else "Tumor"),
        image_size=SIZE, channels=1, options={**TINY[model], **overrides}, classes=CLASSES,
        modalities=list(modalities), seed=seed, device="cpu", threads=1, on_epoch_end=on_epoch_end,
    )


@pytest.fixture(scope="module")
def split_csv(tmp_path_factory) -> Path:
    return make_split(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("model", ["vae", "catvae", "cvae"])
def test_training_lowers_loss_and_writes_outputs(model, split_csv, tmp_path):
    stats = train(model, split_csv, tmp_path, epochs=4, lr=0.005)
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]
    assert {"epoch", "total", "lr", "seconds"} <= set(history.columns)
    assert history["total"].iloc[-1] < history["total"].iloc[0]

    saved = json.loads((tmp_path / "train_stats.json").read_text())
    assert saved == json.loads(json.dumps(stats))
    for key in ("wall_time_s", "peak_memory_mb", "device", "n_train", "epochs", "parameters", "attention", "seed"):
        assert key in saved
    assert saved["n_train"] == (6 + 9 if model == "cvae" else 9)  # 60% of 10 and of 15
    assert saved["epochs"] == 4 and saved["device"] == "cpu" and saved["parameters"] > 0
    assert saved["peak_memory_mb"] > 0 and saved["wall_time_s"] > 0
    assert saved["attention"] == ("faithful" if model == "catvae" else None)

    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["model_name"] == model and ckpt["epoch"] == 4 and ckpt["classes"] == CLASSES
    assert {"optimizer_state", "scheduler_state", "rng_state", "options", "image_size", "channels"} <= set(ckpt)
    assert not (tmp_path / ".resume").exists()  # removed once the run completed


class Crash(RuntimeError):
    pass


def _crash_at(epoch: int):
    def hook(done: int) -> None:
        if done == epoch:
            raise Crash(f"simulated kill after epoch {done}")
    return hook


@pytest.mark.parametrize("model", ["catvae", "cvae"])  # dropout + attention; BatchNorm + plateau + clipping
def test_resume_equals_uninterrupted_run(model, split_csv, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(model, split_csv, straight, seed=3)

    with pytest.raises(Crash):
        train_generator(
            model, str(split_csv), str(resumed), group="all" if model == "cvae" else "Tumor", image_size=SIZE,
            channels=1, options=TINY[model], classes=CLASSES, modalities=["flair"], seed=3, device="cpu",
            on_epoch_end=_crash_at(3),  # the resume checkpoint of epoch 2 exists, epoch 3's work is lost
        )
    assert not (resumed / "checkpoint.pt").exists()
    assert load_checkpoint(resumed / ".resume" / "resume.pt")["epoch"] == 2

    stats = train(model, split_csv, resumed, seed=3)
    assert stats["resumed_from_epoch"] == 2
    a = load_checkpoint(straight / "checkpoint.pt")
    b = load_checkpoint(resumed / "checkpoint.pt")
    assert a["model_state"].keys() == b["model_state"].keys()
    for key in a["model_state"]:
        assert torch.equal(a["model_state"][key], b["model_state"][key]), key
    ha = pd.read_csv(straight / "history.csv").drop(columns="seconds")
    hb = pd.read_csv(resumed / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(ha, hb)
    assert not (resumed / ".resume").exists()


def test_resume_checkpoint_of_another_config_is_ignored(split_csv, tmp_path):
    resume_dir = tmp_path / "elsewhere"
    with pytest.raises(Crash):
        train_generator("vae", str(split_csv), str(tmp_path / "run"), group="Tumor", image_size=SIZE, channels=1,
                        options=TINY["vae"], classes=CLASSES, modalities=["flair"], seed=0, device="cpu",
                        resume_dir=str(resume_dir), on_epoch_end=_crash_at(2))
    assert (resume_dir / "resume.pt").is_file()
    changed = {**TINY["vae"], "lr": 0.001}
    stats = train_generator("vae", str(split_csv), str(tmp_path / "run"), group="Tumor", image_size=SIZE, channels=1,
                            options=changed, classes=CLASSES, modalities=["flair"], seed=0, device="cpu",
                            resume_dir=str(resume_dir))
    assert stats["resumed_from_epoch"] is None
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4] and math.isclose(history["lr"].iloc[0], 0.001)


def test_same_seed_same_weights_on_cpu(split_csv, tmp_path):
    train("vae", split_csv, tmp_path / "a", epochs=2)
    train("vae", split_csv, tmp_path / "b", epochs=2)
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["model_state"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def small_split(root: Path, column: str, value: str, partition: str) -> Path:
    """A 4 + 5 image split whose rows with `column == value` are moved to `partition`."""
    split_csv = make_split(root, counts={"NoTumor": 4, "Tumor": 5})
    frame = pd.read_csv(split_csv)
    frame.loc[frame[column] == value, "partition"] = partition
    frame.to_csv(split_csv, index=False)
    return split_csv


def test_no_training_images_for_class_names_class_and_file(tmp_path):
    split_csv = small_split(tmp_path, "class", "Tumor", "test")
    with pytest.raises(CatvaeError, match=r"Tumor.*split\.csv"):
        train("vae", split_csv, tmp_path / "out", group="Tumor")


@pytest.mark.parametrize(
    ("override", "pattern"),
    [({"epochs": 0}, r"generators\.vae\.epochs"), ({"lr": "fast"}, r"generators\.vae\.lr"),
     ({"batch_size": 2.5}, r"generators\.vae\.batch_size")],
)
def test_bad_training_option_names_config_key(override, pattern, split_csv, tmp_path):
    with pytest.raises(CatvaeError, match=pattern):
        train("vae", split_csv, tmp_path, **override)


def test_unknown_modality_for_cvae_is_reported(tmp_path):
    split_csv = make_split(tmp_path, counts={"NoTumor": 4, "Tumor": 5}, modalities=("flair", "t1"))
    with pytest.raises(CatvaeError, match=r"t1.*dataset\.modalities"):
        train("cvae", split_csv, tmp_path / "out", modalities=("flair",))


def test_epoch_batches_are_seeded_and_never_leave_a_single_image():
    first = epoch_batches(17, 8, seed=1, epoch=1)
    assert [len(b) for b in first] == [8, 9]
    assert sorted(torch.cat(first).tolist()) == list(range(17))
    assert all(torch.equal(x, y) for x, y in zip(first, epoch_batches(17, 8, seed=1, epoch=1)))
    assert not torch.equal(torch.cat(first), torch.cat(epoch_batches(17, 8, seed=1, epoch=2)))


def test_raising_epochs_continues_a_crashed_run(split_csv, tmp_path):
    """`epochs` is not part of the resume fingerprint: a run killed at epoch 2 of 4 can be extended to 6."""
    with pytest.raises(Crash):
        train("vae", split_csv, tmp_path / "run", on_epoch_end=_crash_at(3))
    stats = train("vae", split_csv, tmp_path / "run", epochs=6)
    assert stats["resumed_from_epoch"] == 2 and stats["epochs"] == 6
    train("vae", split_csv, tmp_path / "straight", epochs=6)
    a = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model_state"]
    b = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cvae_learns_the_sequence_as_modality(tmp_path):
    """Multi-sequence BraTS: with two sequences the conditional VAE trains its modality head, and synthesis
    conditions on the sequences present in the class."""
    from catvae.generators.synthesis import synthesise

    split_csv = make_split(tmp_path, counts={"NoTumor": 8, "Tumor": 10}, modalities=("flair", "t1ce"))
    out = tmp_path / "cvae"
    train("cvae", split_csv, out, modalities=("flair", "t1ce"))
    history = pd.read_csv(out / "history.csv")
    assert (history["ce_modality"] > 0).all()
    payload = load_checkpoint(out / "checkpoint.pt")
    assert list(payload["modalities"]) == ["flair", "t1ce"]
    info = synthesise(str(out / "checkpoint.pt"), str(split_csv), str(tmp_path / "synthetic"), class_name="Tumor",
                      targets=[12], seed=0, device="cpu")
    assert info["n_generated"] == 12 - 6


def test_cvae_selects_the_epoch_with_the_lowest_validation_loss(split_csv, tmp_path):
    """Plateau and selection monitor the loss on the real validation images; checkpoint.pt holds that epoch."""
    stats = train("cvae", split_csv, tmp_path / "best", epochs=6, lr=0.01)
    history = pd.read_csv(tmp_path / "best" / "history.csv")
    assert {"val_total", "val_mse", "val_kl"} <= set(history.columns) and history["val_total"].notna().all()
    best = int(history.loc[history["val_total"].idxmin(), "epoch"])
    assert stats["best_epoch"] == best and stats["selection"] == "best_val"
    assert stats["best_val_loss"] == pytest.approx(history["val_total"].min())
    assert stats["n_val"] == 2 + 3                       # 20% of 10 and of 15
    assert (history["val_beta"] == 1.0).all()            # validation uses the objective after the warm-up
    assert 0 <= stats["active_latent_dims"] <= stats["latent_dim"] == 8
    ckpt = load_checkpoint(tmp_path / "best" / "checkpoint.pt")
    assert ckpt["selected_epoch"] == best and ckpt["epoch"] == 6 and "best" not in ckpt
    # The same run stopped at the best epoch ends with the same weights (validation draws no random numbers).
    train("cvae", split_csv, tmp_path / "short", epochs=best, lr=0.01, selection="last")
    short = load_checkpoint(tmp_path / "short" / "checkpoint.pt")["model_state"]
    assert all(torch.equal(ckpt["model_state"][k], short[k]) for k in short)


def test_selection_last_keeps_the_final_epoch_and_keras_models_use_keras_adam(split_csv, tmp_path):
    stats = train("vae", split_csv, tmp_path, epochs=2)
    assert stats["selection"] == "last" and stats["best_epoch"] is None and stats["n_val"] == 0
    assert "val_total" not in pd.read_csv(tmp_path / "history.csv").columns
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["selected_epoch"] == 2
    assert ckpt["optimizer_state"]["param_groups"][0]["keras_epsilon"] == 1e-7
    assert 0 <= stats["active_latent_dims"] <= 8


def test_best_val_without_validation_images_names_the_config_key(tmp_path):
    split_csv = small_split(tmp_path, "partition", "val", "train")
    with pytest.raises(CatvaeError, match=r"no validation images.*selection: best_val"):
        train("vae", split_csv, tmp_path / "out", selection="best_val")
    with pytest.raises(CatvaeError, match=r"generators\.vae\.selection"):
        train("vae", split_csv, tmp_path / "out", selection="best")
