"""Generator training: loss goes down, outputs follow the contract, a crashed run resumes to the same weights."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers_cuda import forbid_enabled_autocast, requires_cuda

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
    Sequences differ too, as MR sequences do: the disc is 0.5 in the first one and 0.2 in the others.
    """
    counts = counts or {"NoTumor": 10, "Tumor": 15}
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / (size - 1)
    rows = []
    for cls, n in counts.items():
        for i in range(n):
            modality = modalities[i % len(modalities)]
            level = 0.5 if modality == modalities[0] else 0.2
            brain = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.16).astype(float) * level
            if cls == "Tumor":
                cx, cy = rng.uniform(0.35, 0.65, size=2)
                brain += 0.45 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.01)
            image = np.clip(brain + rng.normal(0, 0.03, brain.shape), 0, 1)
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
        model, str(split_csv), out_dir, group=group or ("all" if model == "cvae" else "Tumor"),
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
    train_subjects = {f"S{cls}{i:03d}" for cls, n in (("NoTumor", 10), ("Tumor", 15)) for i in range(n) if i < 0.6 * n
                      and (model == "cvae" or cls == "Tumor")}
    assert saved["train_subjects"] == sorted(train_subjects)  # training subjects only, none of val or test

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
    # Learning, not just a loss that exists: a head that knows nothing scores the chance cross-entropy ln(2) on two
    # balanced sequences (a fixture whose sequences look alike stays at 0.65-0.72). The head gets well below it.
    # The minimum, not the last epoch: once beta has warmed up, the KL pulls mu (the heads' input) to the prior.
    ce = history["ce_modality"]
    assert ce.min() < 0.75 * math.log(2) and ce.min() < ce.iloc[0], ce.tolist()
    payload = load_checkpoint(out / "checkpoint.pt")
    assert list(payload["modalities"]) == ["flair", "t1ce"]
    info = synthesise(str(out / "checkpoint.pt"), str(split_csv), str(tmp_path / "synthetic"), class_name="Tumor",
                      targets=[12], seed=0, device="cpu")
    assert info["n_generated"] == 12 - 6


# --------------------------------------------------------------------------------------------------------------
# GPU readiness, tested on a CPU: which CUDA RNG state a checkpoint holds, precision, host synchronisations
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_cuda_rng(monkeypatch):
    """torch.cuda's RNG functions replaced by recorders; four visible GPUs, each with its own state."""
    calls = {"get": [], "set": []}
    states = {i: torch.full((16,), i, dtype=torch.uint8) for i in range(4)}

    def get_rng_state(device="cuda"):
        device = torch.device(device)
        calls["get"].append(device)
        return states[device.index].clone()

    def get_rng_state_all():
        raise AssertionError("only the device in use may be saved")

    def set_rng_state_all(new_states):
        raise AssertionError("only the device in use may be restored")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "get_rng_state", get_rng_state)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", get_rng_state_all)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device="cuda": calls["set"].append(
        (state.clone(), torch.device(device))))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", set_rng_state_all)
    return calls


def test_checkpoint_saves_the_cuda_rng_state_of_the_device_in_use_only(fake_cuda_rng, tmp_path):
    from catvae.generators.checkpoint import capture_rng_state, restore_rng_state, save_checkpoint

    state = capture_rng_state(torch.device("cuda", 2))
    assert fake_cuda_rng["get"] == [torch.device("cuda", 2)]
    assert torch.equal(state["cuda"], torch.full((16,), 2, dtype=torch.uint8))

    # Through the file (weights_only loading), onto a machine where the job got GPU 0 of one: no IndexError,
    # and the saved state lands on the device in use.
    save_checkpoint(tmp_path / "ckpt.pt", {"model_name": "vae", "model_state": {}, "options": {}, "image_size": 16,
                                           "channels": 1, "classes": CLASSES, "modalities": ["flair"], "epoch": 1,
                                           "rng_state": state})
    loaded = load_checkpoint(tmp_path / "ckpt.pt")["rng_state"]
    restore_rng_state(loaded, torch.device("cuda", 0))
    assert len(fake_cuda_rng["set"]) == 1
    restored, device = fake_cuda_rng["set"][0]
    assert device == torch.device("cuda", 0) and torch.equal(restored, state["cuda"])


def test_cpu_training_saves_and_restores_no_cuda_state(fake_cuda_rng):
    from catvae.generators.checkpoint import capture_rng_state, restore_rng_state

    state = capture_rng_state(torch.device("cpu"))
    assert state["cuda"] is None and fake_cuda_rng["get"] == []
    restore_rng_state(state, torch.device("cpu"))
    assert fake_cuda_rng["set"] == []
    # A file with a CUDA state resumed on a CPU: the CPU states are restored, the CUDA state is skipped.
    restore_rng_state({**state, "cuda": torch.zeros(16, dtype=torch.uint8)}, torch.device("cpu"))
    assert fake_cuda_rng["set"] == []


def test_older_files_with_one_state_per_gpu_restore_without_crashing(fake_cuda_rng):
    from catvae.generators.checkpoint import capture_rng_state, restore_rng_state

    base = capture_rng_state(torch.device("cpu"))
    per_gpu = [torch.full((16,), 10 + i, dtype=torch.uint8) for i in range(4)]
    restore_rng_state({**base, "cuda": per_gpu}, torch.device("cuda", 1))
    restore_rng_state({**base, "cuda": per_gpu[:1]}, torch.device("cuda", 3))  # fewer states than the index: skipped
    assert [(int(s[0]), d) for s, d in fake_cuda_rng["set"]] == [(11, torch.device("cuda", 1))]


def test_resume_file_of_another_gpu_model_is_not_continued(split_csv, tmp_path, monkeypatch):
    """The device name is in the resume fingerprint: another GPU model would give other numbers."""
    import catvae.generators.train as train_module

    real_name = train_module.device_name
    monkeypatch.setattr(train_module, "device_name", lambda device: "NVIDIA A100-SXM4-40GB")
    with pytest.raises(Crash):
        train("vae", split_csv, tmp_path / "run", on_epoch_end=_crash_at(3))
    monkeypatch.setattr(train_module, "device_name", real_name)
    stats = train("vae", split_csv, tmp_path / "run")
    assert stats["resumed_from_epoch"] is None and stats["device_name"] == "cpu"


def test_train_stats_record_device_and_precision(split_csv, tmp_path):
    stats = train("vae", split_csv, tmp_path, epochs=1)
    assert stats["device"] == "cpu" and stats["device_name"] == "cpu"
    assert stats["amp"] is False and stats["amp_dtype"] is None and stats["channels_last"] is False


def test_amp_on_a_cpu_trains_in_float32_without_autocast(split_csv, tmp_path, monkeypatch):
    forbid_enabled_autocast(monkeypatch)  # the explicit attention may switch autocast off; nothing may switch it on
    with_amp = train("catvae", split_csv, tmp_path / "amp", epochs=2, amp=True, attention="explicit")
    train("catvae", split_csv, tmp_path / "fp32", epochs=2, amp=False, attention="explicit")
    assert with_amp["amp"] is True and with_amp["amp_dtype"] is None and with_amp["channels_last"] is False
    a = load_checkpoint(tmp_path / "amp" / "checkpoint.pt")["model_state"]
    b = load_checkpoint(tmp_path / "fp32" / "checkpoint.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # exactly the float32 run


@pytest.mark.parametrize("model_name", ["vae", "catvae", "cvae"])
def test_a_channels_last_epoch_matches_the_contiguous_one(model_name):
    """The NHWC path (used under AMP on CUDA) runs every model, with the same losses and updates within tolerance."""
    from catvae.generators.train import _train_epoch
    from catvae.models import build_generator

    torch.manual_seed(0)
    images = torch.rand(12, 1, SIZE, SIZE)
    labels = torch.randint(0, 2, (12,)) if model_name == "cvae" else None
    mods = torch.zeros(12, dtype=torch.long) if model_name == "cvae" else None
    options = {**TINY[model_name], "attention": "fused"} if model_name == "catvae" else TINY[model_name]
    results = []
    for channels_last in (False, True):
        torch.manual_seed(1)
        model = build_generator(model_name, image_size=SIZE, channels=1, options=options, n_classes=2)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)  # Adam's first steps amplify float noise to +-lr
        torch.manual_seed(2)
        means = _train_epoch(model, optimizer, torch.amp.GradScaler("cuda", enabled=False), images, labels, mods,
                             epoch=1, seed=0, batch_size=5, grad_clip=1.0, amp_dtype=None, channels_last=channels_last)
        results.append((means, {k: v.detach().clone() for k, v in model.state_dict().items()}))
    (means_a, state_a), (means_b, state_b) = results
    assert means_a.keys() == means_b.keys()
    for key in means_a:
        assert means_b[key] == pytest.approx(means_a[key], rel=1e-4, abs=1e-6), key
    for key in state_a:
        torch.testing.assert_close(state_b[key].contiguous(), state_a[key].contiguous(), rtol=1e-4, atol=1e-5)


def test_cvae_codes_are_validated_once_per_data_set_not_per_step(split_csv, tmp_path, monkeypatch):
    import catvae.models.cvae as cvae_module

    checked = []
    real_check = cvae_module._check_range
    monkeypatch.setattr(cvae_module, "_check_range", lambda values, count, what: checked.append(
        (what, values.device.type, len(values))) or real_check(values, count, what))
    train("cvae", split_csv, tmp_path, epochs=2)
    # 15 training images, 2 batches an epoch, forward + loss: per-step checks would be 16 calls; the 5 validation
    # images are checked once too, not at every epoch's validation pass.
    assert checked == [("labels", "cpu", 15), ("modalities", "cpu", 15), ("labels", "cpu", 5), ("modalities", "cpu", 5)]


def test_cvae_condition_checks(tmp_path):
    from catvae.models import build_generator

    model = build_generator("cvae", image_size=SIZE, channels=1, options=TINY["cvae"], n_classes=2, n_modalities=2)
    with pytest.raises(CatvaeError, match=r"labels must lie in \[0, 1\]; got 0\.\.2"):
        model.check_conditions(torch.tensor([0, 2, 1]), torch.tensor([0, 0, 1]))
    with pytest.raises(CatvaeError, match=r"modalities must lie in \[0, 1\]"):
        model.check_conditions(torch.tensor([0, 1]), torch.tensor([0, -1]))
    with pytest.raises(CatvaeError, match="needs modalities"):
        model.check_conditions(torch.tensor([0, 1]))
    x = torch.rand(2, 1, SIZE, SIZE)
    with model.conditions_checked():
        with model.conditions_checked():
            model(x, labels=torch.tensor([0, 1]), modalities=torch.tensor([1, 0]))
        assert not model._check_ranges
    assert model._check_ranges  # checked again after the block
    with pytest.raises(CatvaeError, match="labels must lie"):
        model(x, labels=torch.tensor([0, 5]), modalities=torch.tensor([1, 0]))
    out = model(x, labels=torch.tensor([0, 1]), modalities=torch.tensor([1, 0]))
    terms = model.loss(x, out, labels=torch.tensor([0, 1]), modalities=torch.tensor([1, 0]), epoch=2)
    assert terms["beta"].dtype == torch.float32 and terms["beta"].item() == pytest.approx(model.beta_at(2))


def test_each_epoch_copies_its_permutation_to_the_device_once(split_csv, tmp_path, monkeypatch):
    import catvae.generators.train as train_module

    copies = []
    real = train_module.to_device
    monkeypatch.setattr(train_module, "to_device", lambda t, d: copies.append(len(t)) or real(t, d))
    train("vae", split_csv, tmp_path, epochs=3, batch_size=4)  # 9 images: 2 batches an epoch, one copy
    assert copies == [9, 9, 9]


@requires_cuda
def test_resume_equals_uninterrupted_run_on_cuda(split_csv, tmp_path):
    """On a GPU the deterministic settings make a resumed VAE run equal an uninterrupted one (bitwise)."""
    def run(out, **kwargs):
        return train_generator("vae", str(split_csv), str(out), group="Tumor", image_size=SIZE, channels=1,
                               options=TINY["vae"], classes=CLASSES, modalities=["flair"], seed=3, device="cuda",
                               **kwargs)

    run(tmp_path / "straight")
    with pytest.raises(Crash):
        run(tmp_path / "resumed", on_epoch_end=_crash_at(3))
    stats = run(tmp_path / "resumed")
    assert stats["resumed_from_epoch"] == 2 and stats["device_name"] == torch.cuda.get_device_name()
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["model_state"]
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(tmp_path / "straight" / "checkpoint.pt")["rng_state"]["cuda"].dtype == torch.uint8


def test_outputs_named_one_by_one_and_replicate_seeds(split_csv, tmp_path):
    from catvae.generators.train import GeneratorFiles
    from catvae.vocabulary.layout import replicate_seed

    files = GeneratorFiles(tmp_path / "w.pt", tmp_path / "logs" / "h.csv", tmp_path / "s.json")
    stats = train("vae", split_csv, files, epochs=1)
    assert files.checkpoint.is_file() and files.history.is_file() and files.stats.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "s.json", "w.pt"]
    assert stats["seed"] == 0
    assert [replicate_seed(5, r) for r in range(3)] == [5, 6, 7]
    with pytest.raises(CatvaeError):
        replicate_seed(5, -1)


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
