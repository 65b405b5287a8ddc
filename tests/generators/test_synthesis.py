"""Synthesis: counts per target (nested, 'balance', below the real count), context modes, files and manifest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from catvae.data.images import load_images
from catvae.errors import CatvaeError
from catvae.generators.synthesis import resolve_target, synthesise, targets_for, tstr_count
from generators.test_train import make_split, train

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


@pytest.mark.parametrize("target, majority, expected", [
    (0, None, 0), (5, None, 5), (np.int64(7), None, 7), (7.0, None, 7), ("12", None, 12), (" 12 ", None, 12),
    ("balance", 9, 9), (" Balance ", 4, 4), ("BALANCE", 0, 0),
])
def test_resolve_target_accepts_counts_and_balance(target, majority, expected):
    assert resolve_target(target, majority) == expected and isinstance(resolve_target(target, majority), int)


@pytest.mark.parametrize("target, majority", [(True, None), (2.5, None), (-1, None), ("-3", None), ("most", 9)])
def test_resolve_target_refuses_what_is_not_a_count(target, majority):
    message = f"config key 'synthesis.targets' has {target!r}: use a non-negative integer or 'balance'"
    with pytest.raises(CatvaeError, match=f"^{re.escape(message)}$"):
        resolve_target(target, majority)
    with pytest.raises(CatvaeError, match="^synthesis target 'balance' needs the majority class count$"):
        resolve_target("balance", None)


def test_tstr_count_is_the_largest_resolved_target_or_the_given_count():
    assert tstr_count("largest", [10, "balance", 3], majority=25) == 25  # 'balance' = the majority count
    assert tstr_count("largest", [10, "balance", 3], majority=4) == 10
    assert tstr_count("largest", ["7"], majority=4) == 7
    assert tstr_count(1, [10], majority=4) == 1 and tstr_count(40, [10], majority=4) == 40
    for bad in (0, -2, True, 2.0, "12"):
        message = f"config key 'quality.tstr_images' must be a positive integer or null, got {bad!r}"
        with pytest.raises(CatvaeError, match=f"^{re.escape(message)}$"):
            tstr_count(bad, [10], majority=4)


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
    """zero = all-zero features, mean = the class's mean features, sample = one training image's features each;
    every synthetic set records its mode, and `zero` images are the decoder's output for zero features."""
    import torch

    from catvae.generators.checkpoint import build_from_checkpoint, load_checkpoint
    from catvae.generators.synthesis import ContextSampler

    infos = {mode: run(trained, "catvae", tmp_path / mode, targets=[10], context_mode=mode)
             for mode in ("zero", "mean", "sample")}
    assert {mode: info["context"] for mode, info in infos.items()} == {m: m for m in infos}
    assert all(info["sampling"] == {"mode": "prior"} for info in infos.values())

    model = build_from_checkpoint(load_checkpoint(trained["catvae"]), torch.device("cpu"))
    real = load_images(sorted((trained["split"].parent / "slices" / "NoTumor").glob("*.png"))[:6], 16, 1)
    feats = model.context_features(torch.from_numpy(real))
    zero = ContextSampler(model, real, "zero", 0, torch.device("cpu")).next(3)
    assert zero.shape == (3, *feats.shape[1:]) and not zero.any()
    torch.testing.assert_close(ContextSampler(model, real, "mean", 0, torch.device("cpu")).next(2)[1], feats.mean(0))
    drawn = ContextSampler(model, real, "sample", 0, torch.device("cpu")).next(5)
    assert all(any(torch.allclose(d, f) for f in feats) for d in drawn)
    torch.testing.assert_close(drawn, ContextSampler(model, real, "sample", 0, torch.device("cpu")).next(5))

    # `context: zero` generates with zero features: the saved images are decoder(z, 0) for the seeded z.
    expected = model.generate(4, context=torch.zeros(1, *feats.shape[1:]), generator=torch.Generator().manual_seed(0))
    saved = load_images([tmp_path / "zero" / f"NoTumor_{i:05d}.png" for i in range(4)], 16, 1)
    np.testing.assert_allclose(saved, expected.numpy(), atol=1 / 255 + 1e-6)
    again = run(trained, "catvae", tmp_path / "again", targets=[10], context_mode="sample")
    assert again == infos["sample"]
    np.testing.assert_array_equal(load_images(sorted((tmp_path / "again").glob("*.png")), 16, 1),
                                  load_images(sorted((tmp_path / "sample").glob("*.png")), 16, 1))


def test_gmm_sampling_is_recorded_seeded_and_differs_from_the_prior(trained, tmp_path):
    gmm = {"mode": "gmm", "components": 2, "covariance": "diag"}
    first = run(trained, "vae", tmp_path / "gmm", targets=[12], sampling=gmm)
    assert first["sampling"] == {"mode": "gmm", "components": 2, "covariance": "diag", "n_fit": 6,
                                 "converged": True}
    again = run(trained, "vae", tmp_path / "gmm2", targets=[12], sampling=gmm)
    assert again["sampling"] == first["sampling"]
    prior = run(trained, "vae", tmp_path / "prior", targets=[12])
    assert prior["sampling"] == {"mode": "prior"}
    a, b, c = (load_images(sorted((tmp_path / d).glob("*.png")), 16, 1) for d in ("gmm", "gmm2", "prior"))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # More components than training images: capped at one per image; cvae fits on its conditioned means.
    info = run(trained, "cvae", tmp_path / "cvae", class_name="Tumor", targets=[12],
               sampling={"mode": "gmm", "components": 50})
    assert info["sampling"]["components"] == 9 and info["sampling"]["n_fit"] == 9


def test_gmm_sampler_draws_from_the_fitted_mixture():
    from catvae.generators.latents import LatentSampler

    rng = np.random.default_rng(0)
    mu = np.concatenate([rng.normal(-5, 0.1, (200, 2)), rng.normal(5, 0.1, (200, 2))])
    sampler = LatentSampler({"mode": "gmm", "components": 2, "covariance": "full"}, mu, seed=0)
    z = sampler.next(400).numpy()
    assert z.shape == (400, 2) and z.dtype == np.float32
    near = np.minimum(np.abs(z - 5).max(axis=1), np.abs(z + 5).max(axis=1))
    assert (near < 1).all()                                   # every draw near one of the two modes
    assert 150 < (z[:, 0] > 0).sum() < 250                    # both components, about equally often
    assert 25 < (z[:100, 0] > 0).sum() < 75                   # mixed in generation order, not grouped
    assert LatentSampler({"mode": "prior", "components": 1, "covariance": "full"}, None, seed=0).next(3) is None


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
    with pytest.raises(CatvaeError, match=r"generators\.vae\.sampling\.mode"):
        run(trained, "vae", tmp_path, sampling={"mode": "kde"})
    with pytest.raises(CatvaeError, match=r"generators\.vae\.sampling\.components"):
        run(trained, "vae", tmp_path, sampling={"mode": "gmm", "components": 0})
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
