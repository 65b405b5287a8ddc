"""Synthesis: counts per target (nested, 'balance', below the real count), context modes, files and manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from catvae.data.images import load_images
from catvae.errors import CatvaeError
from catvae.generators.synthesis import resolve_target, synthesise, targets_for
from test_generator_training import make_split, train

N_TRAIN = {"NoTumor": 6, "Tumor": 9}  # make_split's default counts, 60% train


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A split, and 1-epoch generators: vae and catvae of NoTumor, cvae over both classes."""
    root = tmp_path_factory.mktemp("synth")
    split_csv = make_split(root)
    ckpts = {"split": split_csv}
    for model in ("vae", "catvae", "cvae"):
        group = "all" if model == "cvae" else "NoTumor"
        train(model, split_csv, root / model / group, group=group, epochs=1)
        ckpts[model] = root / model / group / "checkpoint.pt"
    return ckpts


def run(trained, model, out, *, class_name="NoTumor", targets=(10,), **kwargs) -> dict:
    return synthesise(str(trained[model]), str(trained["split"]), out, class_name=class_name,
                      targets=list(targets), seed=kwargs.pop("seed", 0), device="cpu", **kwargs)


def test_targets_for():
    assert targets_for(6, 10) == 4
    assert targets_for(12, 10) == 0
    assert targets_for(10, 10) == 0
    assert targets_for(6, "balance", majority=9) == 3
    assert targets_for(9, "balance", majority=9) == 0
    assert resolve_target("437", None) == 437
    with pytest.raises(CatvaeError, match="synthesis.targets"):
        resolve_target(-1, None)
    with pytest.raises(CatvaeError, match="synthesis.targets"):
        resolve_target("most", 9)


def test_count_is_largest_target_minus_real_and_files_match_manifest(trained, tmp_path):
    info = run(trained, "vae", tmp_path, targets=[8, 13, 10], batch_size=3)
    assert info["n_real_train"] == N_TRAIN["NoTumor"] and info["largest_target"] == 13
    assert info["n_generated"] == 13 - 6 and info["context"] is None and info["model"] == "vae"
    manifest = pd.read_csv(tmp_path / "manifest.csv")
    assert list(manifest.columns) == ["index", "class", "model", "path"]
    assert list(manifest["index"]) == list(range(7))
    assert set(manifest["class"]) == {"NoTumor"} and set(manifest["model"]) == {"vae"}
    assert list(manifest["path"]) == [f"NoTumor_{i:05d}.png" for i in range(7)]
    images = load_images([tmp_path / p for p in manifest["path"]], 16, 1)
    assert images.shape == (7, 1, 16, 16) and 0 <= images.min() and images.max() <= 1
    assert json.loads((tmp_path / "info.json").read_text()) == info


def test_smaller_target_is_a_prefix_and_generation_is_seeded(trained, tmp_path):
    run(trained, "vae", tmp_path / "a", targets=[9, 12], batch_size=4)
    run(trained, "vae", tmp_path / "b", targets=[12], batch_size=4)
    a = sorted((tmp_path / "a").glob("*.png"))
    b = sorted((tmp_path / "b").glob("*.png"))
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b))


def test_balance_brings_minority_to_majority_count(trained, tmp_path):
    info = run(trained, "vae", tmp_path, targets=["balance"])
    assert info["largest_target"] == N_TRAIN["Tumor"] and info["n_generated"] == 9 - 6


def test_target_below_real_count_gives_a_valid_empty_manifest(trained, tmp_path):
    (tmp_path / "NoTumor_00042.png").write_bytes(b"stale")  # from an earlier, larger run
    info = run(trained, "vae", tmp_path, targets=[4])
    assert info["n_generated"] == 0
    manifest = pd.read_csv(tmp_path / "manifest.csv")
    assert manifest.empty and list(manifest.columns) == ["index", "class", "model", "path"]
    assert not list(tmp_path.glob("*.png"))


def test_catvae_context_modes(trained, tmp_path):
    mean = run(trained, "catvae", tmp_path / "mean", targets=[10], context_mode="mean")
    sample = run(trained, "catvae", tmp_path / "sample", targets=[10], context_mode="sample")
    assert mean["context"] == "mean" and sample["context"] == "sample"
    paths = [f"NoTumor_{i:05d}.png" for i in range(4)]
    a = load_images([tmp_path / "mean" / p for p in paths], 16, 1)
    b = load_images([tmp_path / "sample" / p for p in paths], 16, 1)
    assert not np.array_equal(a, b)  # same z (same seed), different keys/values
    again = run(trained, "catvae", tmp_path / "again", targets=[10], context_mode="sample")
    c = load_images([tmp_path / "again" / p for p in paths], 16, 1)
    assert again == sample
    np.testing.assert_array_equal(b, c)


def test_cvae_generates_each_class_with_its_label(trained, tmp_path, monkeypatch):
    from catvae.models.cvae import ConditionalVAE

    seen: list[list[int]] = []
    original = ConditionalVAE.generate

    def spy(self, n, **kwargs):
        seen.append(kwargs["labels"].tolist())
        return original(self, n, **kwargs)

    monkeypatch.setattr(ConditionalVAE, "generate", spy)
    classes = ["NoTumor", "Tumor"]  # the checkpoint's class order (make_split's)
    info = run(trained, "cvae", tmp_path / "no", class_name="NoTumor", targets=[8])
    assert info["n_generated"] == 2 and info["modalities"] == ["flair"] and info["model"] == "cvae"
    assert seen == [[classes.index("NoTumor")] * 2]  # the decoder was conditioned on the class's own label
    seen.clear()
    info = run(trained, "cvae", tmp_path / "yes", class_name="Tumor", targets=[12])
    assert info["n_generated"] == 3 and seen == [[classes.index("Tumor")] * 3]
    for folder, cls, n in (("no", "NoTumor", 2), ("yes", "Tumor", 3)):
        manifest = pd.read_csv(tmp_path / folder / "manifest.csv")
        assert manifest["class"].tolist() == [cls] * n
        assert manifest["path"].tolist() == [f"{cls}_{i:05d}.png" for i in range(n)]
    # same seed, so the same latents: the label alone makes the images differ
    no = load_images([tmp_path / "no" / f"NoTumor_{i:05d}.png" for i in range(2)], 16, 1)
    yes = load_images([tmp_path / "yes" / f"Tumor_{i:05d}.png" for i in range(2)], 16, 1)
    assert not np.array_equal(no, yes)


def test_bad_requests_raise(trained, tmp_path):
    with pytest.raises(CatvaeError, match="generators.catvae.context"):
        run(trained, "catvae", tmp_path, context_mode="median")
    with pytest.raises(CatvaeError, match="trained on class 'NoTumor'"):
        run(trained, "vae", tmp_path, class_name="Tumor")
    with pytest.raises(CatvaeError, match="not found"):
        synthesise(str(tmp_path / "missing.pt"), str(trained["split"]), str(tmp_path), class_name="NoTumor",
                   targets=[10], seed=0, device="cpu")


def test_latents_come_from_a_cpu_generator(trained, tmp_path, monkeypatch):
    """CPU and CUDA generators give different streams for one seed: synthesis draws on the CPU on every device."""
    import catvae.generators.synthesis as synthesis_module

    seen = []
    real_build = synthesis_module.build_from_checkpoint

    def build(payload, device):
        model = real_build(payload, device)
        real_generate = model.generate

        def generate(n, *, generator=None, **kwargs):
            seen.append((n, generator.device, generator.initial_seed()))
            return real_generate(n, generator=generator, **kwargs)

        model.generate = generate
        return model

    monkeypatch.setattr(synthesis_module, "build_from_checkpoint", build)
    info = run(trained, "cvae", tmp_path, targets=[12], batch_size=4, seed=5)
    assert seen == [(4, torch.device("cpu"), 5), (2, torch.device("cpu"), 5)]  # one generator, batch after batch
    assert info["device"] == "cpu" and info["device_name"] == "cpu"


def test_tstr_needs_can_raise_the_count_and_the_arms_still_read_a_prefix(trained, tmp_path):
    """TSTR trains on synthetic images alone, so it may need more than the arms' prefix; arms still read a prefix
    of the one generation-ordered manifest (the pixels of the last batch depend on its size, as before)."""
    arms_only = run(trained, "vae", tmp_path / "arms", targets=[9], batch_size=4)
    both = run(trained, "vae", tmp_path / "both", targets=[9], tstr_images=7, batch_size=4)
    largest = run(trained, "vae", tmp_path / "largest", targets=[9, 8], tstr_images="largest", batch_size=4)
    assert arms_only["n_generated"] == 3 and arms_only["n_for_tstr"] == 0
    assert (both["n_generated"], both["n_for_arms"], both["n_for_tstr"]) == (7, 3, 7)
    assert (largest["n_generated"], largest["n_for_tstr"]) == (9, 9)
    a = pd.read_csv(tmp_path / "arms" / "manifest.csv")
    b = pd.read_csv(tmp_path / "both" / "manifest.csv")
    assert b["path"].head(3).tolist() == a["path"].tolist() and b["index"].tolist() == list(range(7))
    with pytest.raises(CatvaeError, match="quality.tstr_images"):
        run(trained, "vae", tmp_path / "bad", targets=[9], tstr_images=0)


def test_files_can_be_named_one_by_one(trained, tmp_path):
    from catvae.generators.synthesis import SynthesisFiles

    files = SynthesisFiles(tmp_path / "out" / "m.csv", tmp_path / "out" / "i.json", tmp_path / "out" / "images")
    info = run(trained, "vae", files, targets=[9])
    manifest = pd.read_csv(files.manifest)
    assert manifest["path"].tolist() == [f"images/NoTumor_{i:05d}.png" for i in range(3)]
    assert all((tmp_path / "out" / p).is_file() for p in manifest["path"])
    assert json.loads(files.info.read_text()) == info
    assert info["real_subjects"] and all(s.startswith("SNoTumor") for s in info["real_subjects"])
