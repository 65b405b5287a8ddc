"""Generator quality: quality.json keys and value ranges, held-out images only, FID 'n/a' without weights, latents."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from catvae.errors import CatvaeError
from catvae.generators.evaluate import evaluate_generator, export_latents
from catvae.generators.synthesis import synthesise
from generators.test_train import CLASSES, make_split, train

# The keys docs/ARCHITECTURE.md fixes for generators/<model>/<class>/quality.json.
QUALITY_KEYS = {
    "model", "class", "ssim", "psnr", "mse", "n_recon", "fid", "kid", "kid_std", "n_fid_real", "n_fid_fake",
    "fid_note", "train_time_s", "inference_ms_per_image", "peak_memory_mb", "device", "memorisation", "attention",
    "context", "config_name", "seed", "recon_path", "ssim_own_features", "psnr_own_features", "mse_own_features",
    "sampling", "diversity_ms_ssim", "diversity_ms_ssim_real", "diversity",
}
N_TEST = {"NoTumor": 2, "Tumor": 3}  # make_split's default counts, 20% test


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, Path]:
    """Split, 2-epoch catvae (NoTumor) and cvae generators, and their synthetic images."""
    root = tmp_path_factory.mktemp("quality")
    split_csv = make_split(root)
    paths = {"root": root, "split": split_csv}
    train("catvae", split_csv, root / "gen" / "catvae" / "NoTumor", group="NoTumor", epochs=2)
    train("cvae", split_csv, root / "gen" / "cvae" / "all", epochs=2)
    for model, group in (("catvae", "NoTumor"), ("cvae", "all")):
        for cls in (["NoTumor"] if model == "catvae" else CLASSES):
            synthesise(str(root / "gen" / model / group / "checkpoint.pt"), str(split_csv),
                       str(root / "syn" / model / cls), class_name=cls, targets=[14], context_mode="sample",
                       seed=0, device="cpu")
    return paths


def evaluate(study, model, cls, out_json, **kwargs):
    group = "all" if model == "cvae" else cls
    args = dict(class_name=cls, inception_weights=None, max_fid_images=50, near_copy_ssim=0.95, device="cpu",
                seed=0, config_name="unit", timing_images=8, timing_batch=4)
    return evaluate_generator(
        str(study["root"] / "gen" / model / group / "checkpoint.pt"), str(study["split"]),
        str(study["root"] / "syn" / model / cls / "manifest.csv"), str(out_json), **{**args, **kwargs},
    )


def _check_ranges(q: dict) -> None:
    assert -1.0 <= q["ssim"] <= 1.0
    assert q["psnr"] > 0 and q["mse"] >= 0
    assert q["inference_ms_per_image"] > 0 and q["train_time_s"] > 0 and q["peak_memory_mb"] > 0
    assert q["fid"] is None and q["kid"] is None and q["fid_note"].startswith("n/a")
    memo = q["memorisation"]
    assert 0 <= memo["near_copy_share"] <= 1 and -1 <= memo["median_nn_ssim"] <= 1
    assert 0 <= q["diversity_ms_ssim"] <= 1 and 0 <= q["diversity_ms_ssim_real"] <= 1


def test_catvae_quality_json(study, tmp_path):
    out = tmp_path / "catvae" / "NoTumor" / "quality.json"
    q = evaluate(study, "catvae", "NoTumor", out)
    assert QUALITY_KEYS <= set(q)
    assert json.loads(out.read_text()) == json.loads(json.dumps(q))
    _check_ranges(q)
    assert q["model"] == "catvae" and q["class"] == "NoTumor" and q["config_name"] == "unit" and q["seed"] == 0
    assert q["n_recon"] == N_TEST["NoTumor"]  # the held-out test images, not the 6 training images
    assert q["n_fid_real"] == N_TEST["NoTumor"] and q["n_fid_fake"] == 14 - 6
    assert q["memorisation"]["n"] == 8
    assert q["attention"] == "faithful" and q["context"] == "sample" and q["device"] == "cpu"
    # Two labelled reconstructions: through z with the generation context, and with the image's own features.
    assert q["recon_path"] == "z + sample context" and q["sampling"] == {"mode": "prior"}
    assert -1 <= q["ssim_own_features"] <= 1 and q["psnr_own_features"] > 0 and q["mse_own_features"] >= 0
    assert q["mse_own_features"] != q["mse"]
    train_stats = json.loads((study["root"] / "gen" / "catvae" / "NoTumor" / "train_stats.json").read_text())
    assert q["train_time_s"] == train_stats["wall_time_s"] and q["peak_memory_mb"] == train_stats["peak_memory_mb"]


def test_cvae_quality_per_class(study, tmp_path):
    for cls in CLASSES:
        q = evaluate(study, "cvae", cls, tmp_path / cls / "quality.json")
        _check_ranges(q)
        assert q["class"] == cls and q["n_recon"] == N_TEST[cls]
        assert q["attention"] is None and q["context"] is None and q["recon_path"] == "z + labels"
        assert q["ssim_own_features"] is None and q["own_features_note"].startswith("n/a")


def test_catvae_reconstruction_with_zero_context_decodes_mu_with_zero_features(study, tmp_path):
    import torch

    from catvae.data.images import load_images
    from catvae.generators.checkpoint import build_from_checkpoint, load_checkpoint
    from catvae.metrics.reconstruction import reconstruction_metrics

    ckpt = study["root"] / "gen" / "catvae" / "NoTumor" / "checkpoint.pt"
    syn = tmp_path / "syn"
    synthesise(str(ckpt), str(study["split"]), str(syn), class_name="NoTumor", targets=[10], context_mode="zero",
               seed=0, device="cpu")
    q = evaluate_generator(str(ckpt), str(study["split"]), str(syn / "manifest.csv"), str(tmp_path / "q.json"),
                           class_name="NoTumor", inception_weights=None, max_fid_images=50, near_copy_ssim=0.95,
                           device="cpu", seed=0, config_name="unit", timing_images=4, timing_batch=4)
    assert q["recon_path"] == "z + zero context" and q["context"] == "zero"
    model = build_from_checkpoint(load_checkpoint(ckpt), torch.device("cpu"))
    split = study["split"].parent
    test = load_images(sorted(p for p in (split / "slices" / "NoTumor").glob("*.png"))[8:], 16, 1)
    x = torch.from_numpy(test)
    zero = model.reconstruct(x, context=torch.zeros_like(model.context_features(x)))
    assert q["mse"] == pytest.approx(reconstruction_metrics(test, zero.numpy())["mse"], rel=1e-5)
    assert q["mse_own_features"] == pytest.approx(reconstruction_metrics(test, model.reconstruct(x).numpy())["mse"],
                                                  rel=1e-5)


def test_fid_sample_cap_and_missing_weights_file(study, tmp_path):
    q = evaluate(study, "catvae", "NoTumor", tmp_path / "q.json", max_fid_images=3,
                 inception_weights=str(tmp_path / "no_such_weights.pth"))
    assert q["n_fid_fake"] == 3 and q["n_fid_real"] == 2
    assert q["fid"] is None and "not found" in q["fid_note"]


def test_class_without_test_images_is_reported(study, tmp_path):
    split = study["split"].read_text().replace(",test\n", ",val\n")
    bad = tmp_path / "split.csv"
    bad.write_text(split.replace("slices/", str(study["root"]) + "/slices/"))
    with pytest.raises(CatvaeError, match=r"no test images of class 'NoTumor'.*split\.csv"):
        evaluate_generator(
            str(study["root"] / "gen" / "catvae" / "NoTumor" / "checkpoint.pt"), str(bad),
            str(study["root"] / "syn" / "catvae" / "NoTumor" / "manifest.csv"), str(tmp_path / "q.json"),
            class_name="NoTumor", inception_weights=None, max_fid_images=10, near_copy_ssim=0.95, device="cpu",
            seed=0, config_name="unit",
        )
    assert not (tmp_path / "q.json").exists()


def test_export_latents(study, tmp_path):
    out = tmp_path / "latents.npz"
    summary = export_latents(str(study["root"] / "gen" / "cvae" / "all" / "checkpoint.pt"), str(study["split"]),
                             str(out), device="cpu")
    data = np.load(out)
    n = 10 + 15
    assert summary == {"n": n, "latent_dim": 8}
    assert data["mu"].shape == (n, 8) and np.isfinite(data["mu"]).all()
    assert list(data["class_names"]) == CLASSES and list(data["modality_names"]) == ["flair"]
    assert np.bincount(data["labels"]).tolist() == [10, 15]
    assert set(data["modalities"].tolist()) == {0}
    assert set(data["partition"].tolist()) == {"train", "val", "test"}


def test_generation_timing_runs_a_second_with_cvae_codes_checked_before(study, tmp_path, monkeypatch):
    """The timed loop only generates: the cvae's labels are validated before the clock starts, the clock runs for
    at least 1 s, and the latents come from a CPU generator (as in synthesis)."""
    import catvae.generators.evaluate as evaluate_module
    import catvae.metrics.resources as resources
    import catvae.models.cvae as cvae_module

    state = {"timing": False, "checks_while_timing": [], "generators": set()}
    real_time, real_check = resources.time_generation, cvae_module._check_range
    real_build = evaluate_module.build_from_checkpoint

    def timed(fn, n_images, batch_size, device, min_seconds=0.0):
        state["timing"], state["min_seconds"] = True, min_seconds
        try:
            return real_time(fn, n_images, batch_size, device, min_seconds=min_seconds)
        finally:
            state["timing"] = False

    def check(values, count, what):
        if state["timing"]:
            state["checks_while_timing"].append(what)
        return real_check(values, count, what)

    def build(payload, device):
        model = real_build(payload, device)
        real_generate = model.generate

        def generate(n, *, generator=None, **kwargs):
            state["generators"].add(generator.device)
            return real_generate(n, generator=generator, **kwargs)

        model.generate = generate
        return model

    monkeypatch.setattr(resources, "time_generation", timed)
    monkeypatch.setattr(cvae_module, "_check_range", check)
    monkeypatch.setattr(evaluate_module, "build_from_checkpoint", build)
    q = evaluate(study, "cvae", "Tumor", tmp_path / "q.json")
    assert state["min_seconds"] == 1.0 and state["checks_while_timing"] == []
    assert state["generators"] == {torch.device("cpu")}
    assert q["inference_ms_per_image"] > 0
    assert q["inference_device"] == "cpu" and q["inference_device_name"] == "cpu"
    assert q["device_name"] == "cpu" and q["amp_dtype"] is None  # the training's, from train_stats.json


def test_inputs_named_by_the_rule_are_the_ones_read(study, tmp_path):
    """The rule declares train_stats.json and info.json as inputs; the function reads exactly those files."""
    stats = json.loads((study["root"] / "gen" / "catvae" / "NoTumor" / "train_stats.json").read_text())
    (tmp_path / "stats.json").write_text(json.dumps({**stats, "wall_time_s": 12345.0}))
    info = json.loads((study["root"] / "syn" / "catvae" / "NoTumor" / "info.json").read_text())
    marker = "zero" if info["context"] != "zero" else "sample"  # a context the checkpoint's own info.json lacks
    (tmp_path / "info.json").write_text(json.dumps({**info, "context": marker}))
    q = evaluate(study, "catvae", "NoTumor", tmp_path / "q.json", train_stats=str(tmp_path / "stats.json"),
                 synthetic_info=str(tmp_path / "info.json"), fold=1, replicate=2)
    assert q["train_time_s"] == 12345.0 and q["context"] == marker
    assert q["fold"] == 1 and q["replicate"] == 2
    with pytest.raises(CatvaeError, match="training statistics not found"):
        evaluate(study, "catvae", "NoTumor", tmp_path / "r.json", train_stats=str(tmp_path / "none.json"))
    with pytest.raises(CatvaeError, match="synthesis info not found"):
        evaluate(study, "catvae", "NoTumor", tmp_path / "s.json", synthetic_info=str(tmp_path / "none.json"))
