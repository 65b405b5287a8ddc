"""The generator interface and the reference's VAE and CAT-VAE (catvae/models/vae.py): parameter counts, shapes,
determinism, losses, seeded generation, option checks."""

from __future__ import annotations

import pytest
import torch
from helpers_cuda import requires_cuda

from catvae.errors import CatvaeError
from catvae.models import ATTENTION_MODES, build_generator, count_parameters
from models import CVAE_OPTIONS, _build, _conditions, _decode_in_one_batch, _blobs

torch.set_num_threads(1)


def test_paper_preset_parameter_counts_match_keras_reference():
    torch.manual_seed(0)
    vae = build_generator("vae", image_size=128, channels=3, options={"latent_dim": 100})
    assert count_parameters(vae.encoder) == 16_848_264
    assert count_parameters(vae.decoder) == 1_711_043
    for mode in ATTENTION_MODES:                    # dropouts have no parameters: every mode is the same size
        cat = build_generator("catvae", image_size=128, channels=3, options={"latent_dim": 100, "attention": mode})
        assert count_parameters(cat.encoder) == 16_848_264
        assert count_parameters(cat.decoder) == 1_877_059
        assert count_parameters(cat) == 16_848_264 + 1_877_059
        assert cat.attention == mode


def test_eval_forward_is_deterministic():
    torch.manual_seed(0)
    for name in ("vae", "catvae", "cvae"):
        model = (_build(name, n_classes=2) if name == "cvae" else _build(name)).eval()
        x, cond = torch.rand(2, 1, 32, 32), _conditions(name, 2)
        a, b = model(x, **cond), model(x, **cond)
        torch.testing.assert_close(a["recon"], b["recon"])


@pytest.mark.parametrize("name", ["vae", "catvae", "cvae"])
def test_demo_preset_forward_shapes(name):
    model = build_generator(name, image_size=64, channels=1,
                            options=CVAE_OPTIONS if name == "cvae" else {"latent_dim": 100}, n_classes=2)
    x = torch.rand(3, 1, 64, 64)
    out = model(x, **_conditions(name, 3))
    latent = 128 if name == "cvae" else 100
    assert out["recon"].shape == x.shape and out["mu"].shape == out["logvar"].shape == (3, latent)
    assert 0 <= out["recon"].min() and out["recon"].max() <= 1
    assert model.reconstruct(x, **_conditions(name, 3)).shape == x.shape
    assert model.encode_mu(x, **_conditions(name, 3)).shape == (3, latent)
    context = model.context_features(x)
    if name == "catvae":
        assert context.shape == (3, 64, 16, 16) and model.uses_context
    else:
        assert context is None
    if name == "cvae":
        assert "modality_logits" not in out   # one modality: no modality head
        assert model.modality_head is None


@pytest.mark.parametrize("name,mode", [("vae", None), ("catvae", "fused"), ("catvae", "explicit")])
def test_generation_in_chunks_and_nhwc_equals_one_batch(name, mode, monkeypatch):
    """On a CPU generate() decodes CPU_DECODE_CHUNK images at a time with NHWC convolutions: the same
    images, in order, for shared and for per-image contexts, as one NCHW decode of the batch."""
    torch.manual_seed(0)
    model = _build(name, attention=mode)
    monkeypatch.setattr(type(model), "CPU_DECODE_CHUNK", 2)
    z = torch.randn(5, model.latent_dim)
    contexts = [None]
    if name == "catvae":
        feats = model.context_features(torch.rand(5, 1, 32, 32))
        contexts = [feats.mean(0, keepdim=True), feats]                     # shared, one per image
    for context in contexts:
        images = model.generate(5, context=context, latents=z)
        assert images.is_contiguous() and images.shape == (5, 1, 32, 32)
        torch.testing.assert_close(images, _decode_in_one_batch(model, z, context), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["vae", "catvae", "cvae"])
def test_loss_decreases_over_a_few_adam_steps(name):
    torch.manual_seed(0)
    model = _build(name, n_classes=2) if name == "cvae" else _build(name)
    x = _blobs(8)
    cond = _conditions(name, 8)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(15):
        out = model(x, **cond)
        terms = model.loss(x, out, epoch=50, **cond)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(terms["total"].item())
    assert all(torch.isfinite(v).all() for v in terms.values())
    assert losses[-1] < 0.9 * losses[0], losses
    expected = {"vae": {"bce", "kl"}, "catvae": {"bce", "kl"},
                "cvae": {"mse", "l1", "perceptual", "kl", "ce_class", "ce_modality", "beta"}}[name]
    assert expected | {"total"} <= set(terms)


@pytest.mark.parametrize("name", ["vae", "catvae", "cvae"])
def test_generate_is_seeded_and_in_unit_range(name):
    torch.manual_seed(0)
    model = _build(name, n_classes=2) if name == "cvae" else _build(name)
    model.train()
    kwargs = dict(_conditions(name, 5))
    if name == "catvae":
        kwargs["context"] = model.context_features(torch.rand(1, 1, 32, 32))
    a = model.generate(5, generator=torch.Generator().manual_seed(7), **kwargs)
    b = model.generate(5, generator=torch.Generator().manual_seed(7), **kwargs)
    c = model.generate(5, generator=torch.Generator().manual_seed(8), **kwargs)
    assert a.shape == (5, 1, 32, 32)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert model.training                       # inference helpers restore the training mode


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_latents_are_drawn_on_the_cpu_then_moved(name):
    """Same seed, same z whatever device the model is on: z comes from a CPU generator (or the CPU global RNG)."""
    model = _build(name, n_classes=2) if name == "cvae" else _build(name)
    expected = torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model.draw_latents(4, torch.Generator().manual_seed(3)), expected, rtol=0, atol=0)

    on_meta = model.to("meta")  # a model on another device: the latents are still the CPU draw, moved there
    z = on_meta.draw_latents(4, torch.Generator().manual_seed(3))
    assert z.device.type == "meta" and z.shape == expected.shape

    torch.manual_seed(5)
    before = torch.get_rng_state()
    on_meta.draw_latents(2)  # no generator: torch's global CPU generator advances
    assert not torch.equal(before, torch.get_rng_state())

    class GpuGenerator:  # stands in for torch.Generator(device="cuda")
        device = torch.device("cuda", 0)

    with pytest.raises(CatvaeError, match="CPU torch.Generator"):
        model.draw_latents(2, GpuGenerator())


@requires_cuda
@pytest.mark.parametrize("name", ["vae", "catvae", "cvae"])
def test_same_seed_same_latents_and_images_on_cpu_and_gpu(name):
    torch.manual_seed(0)
    cpu_model = _build(name, n_classes=2) if name == "cvae" else _build(name)
    gpu_model = (_build(name, n_classes=2) if name == "cvae" else _build(name)).to("cuda")
    gpu_model.load_state_dict(cpu_model.state_dict())
    kwargs = dict(_conditions(name, 3))
    if name == "catvae":
        kwargs["context"] = cpu_model.context_features(torch.rand(1, 1, 32, 32))
    z_cpu = cpu_model.draw_latents(3, torch.Generator().manual_seed(11))
    z_gpu = gpu_model.draw_latents(3, torch.Generator().manual_seed(11))
    assert z_gpu.device.type == "cuda" and torch.equal(z_gpu.cpu(), z_cpu)
    a = cpu_model.generate(3, generator=torch.Generator().manual_seed(11), **kwargs)
    gpu_kwargs = {key: value.to("cuda") for key, value in kwargs.items()}
    b = gpu_model.generate(3, generator=torch.Generator().manual_seed(11), **gpu_kwargs)
    torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("name", ["vae", "catvae"])
def test_image_size_not_divisible_by_8_is_rejected(name):
    with pytest.raises(CatvaeError, match="dataset.image_size"):
        build_generator(name, image_size=60, channels=1, options={})


def test_bad_options_and_inputs_raise_catvae_error():
    with pytest.raises(CatvaeError, match="generators.catvae.attention"):
        build_generator("catvae", image_size=32, channels=1, options={"attention": "flash"})
    with pytest.raises(CatvaeError, match="generators.models"):
        build_generator("gan", image_size=32, channels=1, options={})
    with pytest.raises(CatvaeError, match="latent_dim"):
        build_generator("vae", image_size=32, channels=1, options={"latent_dim": 0})
    cat = _build("catvae")
    with pytest.raises(CatvaeError, match="context"):
        cat.generate(2)
    with pytest.raises(CatvaeError, match="context"):
        cat.generate(2, context=torch.zeros(3, 64, 8, 8))
    with pytest.raises(CatvaeError, match="dataset.image_size"):
        cat(torch.rand(1, 1, 64, 64))
    cvae = _build("cvae", n_classes=2, n_modalities=2)
    with pytest.raises(CatvaeError, match="labels"):
        cvae(torch.rand(1, 1, 32, 32))
    with pytest.raises(CatvaeError, match="labels"):
        cvae.generate(1, labels=torch.tensor([5]), modalities=torch.tensor([0]))
