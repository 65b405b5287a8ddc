"""The diffusion comparator (MONAI DDPM, DDIM sampling) and the weight-free diversity score every generator gets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from catvae.errors import CatvaeError
from catvae.generators.checkpoint import load_checkpoint
from catvae.generators.evaluate import evaluate_generator
from catvae.generators.synthesis import synthesise
from catvae.generators.train import train_generator
from catvae.metrics.diversity import ms_ssim_settings, pair_diversity
from catvae.models import build_generator, count_parameters
from catvae.models.diffusion import NO_ENCODER_NOTE
from catvae.report.tables import DIVERSITY_COLUMNS, generator_quality_table
from generators.test_train import CLASSES, SIZE, _crash_at, Crash, make_split

torch.set_num_threads(1)

# A tiny UNet (two levels, attention on the second) and a handful of DDIM steps.
TINY_DDPM = {"epochs": 4, "batch_size": 8, "lr": 0.002, "checkpoint_every": 2, "unet_channels": [8, 16],
             "attention_levels": [False, True], "norm_groups": 8, "head_channels": 8, "res_blocks": 1,
             "train_timesteps": 50, "ddim_steps": 4}


def _train(split_csv, out_dir, **kwargs):
    return train_generator("ddpm", str(split_csv), out_dir, group="Tumor", image_size=SIZE, channels=1,
                           options=TINY_DDPM, classes=CLASSES, modalities=["flair"], seed=3, device="cpu", **kwargs)


@pytest.fixture(scope="module")
def split_csv(tmp_path_factory):
    return make_split(tmp_path_factory.mktemp("data"))


def test_ddpm_learns_noise_and_generates_seeded_unit_range_images():
    torch.manual_seed(0)
    model = build_generator("ddpm", image_size=SIZE, channels=1, options=TINY_DDPM)
    x = torch.rand(8, 1, SIZE, SIZE) * 0.2 + 0.4
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        terms = model.loss(x, model(x))
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(terms["total"].item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses
    model.train()
    a = model.generate(3, generator=torch.Generator().manual_seed(7))
    b = model.generate(3, generator=torch.Generator().manual_seed(7))
    c = model.generate(3, generator=torch.Generator().manual_seed(8))
    assert a.shape == (3, 1, SIZE, SIZE) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert model.training and not model.encodes
    assert len(model.sampler.timesteps) == TINY_DDPM["ddim_steps"]  # the config key sets DDIM's step count
    with pytest.raises(CatvaeError, match="no encoder"):
        model.encode_mu(x)


@pytest.mark.parametrize("override,pattern", [
    ({"unet_channels": [8, 16, 16, 16], "attention_levels": [False] * 4}, r"multiple of 8"),
    ({"attention_levels": [False]}, r"generators\.ddpm\.attention_levels"),
    ({"unet_channels": [8, 12]}, r"generators\.ddpm.*norm_num_groups"),
    ({"ddim_steps": 51}, r"generators\.ddpm\.ddim_steps"),
    ({"res_blocks": 0}, r"generators\.ddpm\.res_blocks"),
])
def test_bad_ddpm_options_name_the_config_key(override, pattern):
    with pytest.raises(CatvaeError, match=pattern):
        build_generator("ddpm", image_size=12 if "unet_channels" in override and len(override["unet_channels"]) > 2
                        else SIZE, channels=1, options={**TINY_DDPM, **override})


def test_schema_defaults_build_the_gpu_sized_unet():
    model = build_generator("ddpm", image_size=64, channels=1, options={})
    assert count_parameters(model) > 1_000_000 and model.ddim_steps == 50


def test_ddpm_resumes_to_the_uninterrupted_weights(split_csv, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    stats = _train(split_csv, straight)
    assert stats["active_latent_dims"] is None and stats["parameters"] > 0 and stats["peak_memory_mb"] > 0
    with pytest.raises(Crash):
        _train(split_csv, resumed, on_epoch_end=_crash_at(3))
    assert load_checkpoint(resumed / ".resume" / "resume.pt")["epoch"] == 2
    assert _train(split_csv, resumed)["resumed_from_epoch"] == 2
    a, b = (load_checkpoint(d / "checkpoint.pt")["model_state"] for d in (straight, resumed))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    pd.testing.assert_frame_equal(pd.read_csv(straight / "history.csv").drop(columns="seconds"),
                                  pd.read_csv(resumed / "history.csv").drop(columns="seconds"))


def test_ddpm_synthesis_and_quality_say_reconstruction_is_undefined(split_csv, tmp_path):
    _train(split_csv, tmp_path / "gen")
    info = synthesise(str(tmp_path / "gen" / "checkpoint.pt"), str(split_csv), str(tmp_path / "syn"),
                      class_name="Tumor", targets=[14], seed=0, device="cpu")
    assert info["n_generated"] == 14 - 9 and info["sampling"] == {"mode": "prior"} and info["context"] is None
    q = evaluate_generator(str(tmp_path / "gen" / "checkpoint.pt"), str(split_csv), str(tmp_path / "syn" / "manifest.csv"),
                           str(tmp_path / "quality.json"), class_name="Tumor", inception_weights=None,
                           max_fid_images=50, near_copy_ssim=0.95, device="cpu", seed=0, config_name="unit",
                           timing_images=4, timing_batch=2, timing_seconds=0.0, diversity_pairs=20)
    assert q["ssim"] is None and q["psnr"] is None and q["mse"] is None and q["n_recon"] is None
    assert q["ssim_note"] == NO_ENCODER_NOTE and q["recon_path"] == "n/a (no encoder)"
    assert q["memorisation"]["n"] == 5 and q["inference_ms_per_image"] > 0
    assert 0 <= q["diversity_ms_ssim"] <= 1 and 0 <= q["diversity_ms_ssim_real"] <= 1
    assert q["diversity"]["synthetic"]["n_pairs"] == 20 and q["diversity"]["real_train"]["n_images"] == 9
    table = generator_quality_table([json.loads((tmp_path / "quality.json").read_text())])
    row = table.iloc[0]
    assert row["Model"] == "Diffusion (DDPM, ours)" and row["SSIM"] == NO_ENCODER_NOTE
    assert row[DIVERSITY_COLUMNS[0]] == pytest.approx(q["diversity_ms_ssim"])
    assert row[DIVERSITY_COLUMNS[1]] == pytest.approx(q["diversity_ms_ssim_real"])


def test_diversity_tells_copies_from_varied_images():
    rng = np.random.default_rng(0)
    varied = rng.random((12, 1, 64, 64)).astype(np.float32)
    copies = np.repeat(varied[:1], 12, axis=0)
    low = pair_diversity(varied, n_pairs=40, seed=0)
    assert low["ms_ssim"] < 0.2 and low["scales"] == 3 and low["window"] == 11
    assert pair_diversity(copies, n_pairs=40, seed=0)["ms_ssim"] == pytest.approx(1.0)
    assert pair_diversity(varied, n_pairs=40, seed=0) == low                  # seeded
    single = pair_diversity(varied[:1], n_pairs=40, seed=0)
    assert single["ms_ssim"] is None and single["note"].startswith("n/a")
    with pytest.raises(CatvaeError, match="quality.diversity_pairs"):
        pair_diversity(varied, n_pairs=0, seed=0)


@pytest.mark.parametrize("side,window,scales", [(8, 7, 1), (16, 11, 1), (32, 11, 2), (64, 11, 3), (256, 11, 5)])
def test_ms_ssim_keeps_the_scales_that_fit(side, window, scales):
    got_window, weights = ms_ssim_settings(side)
    assert (got_window, len(weights)) == (window, scales) and sum(weights) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    pair_diversity(rng.random((3, 1, side, side)).astype(np.float32), n_pairs=2, seed=0)  # MONAI accepts it


def test_jobs_that_build_no_diffusion_model_do_not_import_monai():
    """MONAI takes seconds to import; only building a diffusion model or scoring diversity may pay for it."""
    import subprocess
    import sys

    code = ("import sys, catvae.cli, catvae.models, catvae.generators.train, catvae.generators.synthesis, "
            "catvae.generators.evaluate, catvae.classifier.train, catvae.report.tables; "
            "print('monai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
