"""Generative models: reference parameter counts, shapes, attention equivalences, losses, determinism."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers_cuda import requires_cuda

from catvae.errors import CatvaeError
from catvae.models import (
    ATTENTION_MODES,
    MultiHeadCrossAttention,
    build_generator,
    count_parameters,
    explicit_attention,
)
from catvae.models.encoder import SameConv2d, SameConvTranspose2d

torch.set_num_threads(1)

CVAE_OPTIONS = {"latent_dim": 128, "class_embedding": 128, "modality_embedding": 64, "hidden": 256,
                "loss": {"mse": 1.0, "l1": 0.5, "perceptual": 0.1, "beta": 1.0, "gamma": 0.5},
                "beta_warmup": {"start": 2, "epochs": 10}, "epochs": 5, "lr": 5e-4}
REFERENCE_CVAE_COUNT = 1_155_993     # figure reported by the MedMNIST reference (DESIGN.md section 2)
# This port at 1x28x28, 21 classes, 3 modalities, layer by layer (the table in catvae/models/cvae.py).
CVAE_LAYERS = {
    "encoder_convs": 165_024,            # Conv 1->32->64->128 (k4) + BatchNorm
    "class_embedding": 21 * 128,
    "modality_embedding": 3 * 64,
    "encoder_fc": 1344 * 256 + 256,      # [1,152 features, 192 embeddings] -> 256
    "fc_mu": 256 * 128 + 128,
    "fc_logvar": 256 * 128 + 128,
    "decoder_fc": (320 * 256 + 256) + (256 * 1152 + 1152),   # mirror: [z, embeddings] -> 256 -> 128x3x3
    "decoder_convs": 164_641,            # ConvT 128->64->32->1 (k4) + BatchNorm
    "class_head": (128 * 128 + 128 + 256) + (128 * 64 + 64 + 128) + (64 * 21 + 21),   # 128 -> 128 -> 64 -> 21
    "modality_head": (128 * 64 + 64 + 128) + (64 * 3 + 3),                           # 128 -> 64 -> 3
}
BEFORE_HEADS_COUNT = 1_115_545       # single Linear heads, no decoder hidden layer (the port before issue 9)


def _build(name: str, size: int = 32, channels: int = 1, **kw):
    options = CVAE_OPTIONS if name == "cvae" else {"latent_dim": 16, "attention": kw.pop("attention", "faithful")}
    return build_generator(name, image_size=size, channels=channels, options=options, **kw)


def _conditions(name: str, n: int, n_classes: int = 2, n_modalities: int = 1) -> dict:
    if name != "cvae":
        return {}
    return {"labels": torch.arange(n) % n_classes, "modalities": torch.arange(n) % n_modalities}


# -- reference sizes ---------------------------------------------------------------------------------
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


def test_cvae_parameter_count_at_medmnist_size(capsys):
    model = build_generator("cvae", image_size=28, channels=1, options=CVAE_OPTIONS, n_classes=21, n_modalities=3)
    ours = count_parameters(model)
    per_layer = {name: count_parameters(getattr(model, name)) for name in CVAE_LAYERS}
    with capsys.disabled():
        print(f"\ncvae 1x28x28, 21 classes, 3 modalities: ours {ours:,} trainable (+{model.frozen_parameters:,} frozen "
              f"perceptual); reference reports {REFERENCE_CVAE_COUNT:,}; difference {ours - REFERENCE_CVAE_COUNT:,}")
    assert per_layer == CVAE_LAYERS                      # every layer as the docstring's table says
    assert ours == sum(CVAE_LAYERS.values()) == REFERENCE_CVAE_COUNT
    # The difference from the earlier port is exactly the specified heads plus the decoder's mirrored hidden layer.
    old_heads, old_decoder_fc = (128 * 21 + 21) + (128 * 3 + 3), 320 * 1152 + 1152
    assert ours - BEFORE_HEADS_COUNT == (CVAE_LAYERS["class_head"] + CVAE_LAYERS["modality_head"] - old_heads
                                         + CVAE_LAYERS["decoder_fc"] - old_decoder_fc)
    assert model.frozen_parameters == 4_800
    out = model(torch.rand(2, 1, 28, 28), torch.tensor([0, 20]), torch.tensor([0, 2]))
    assert out["recon"].shape == (2, 1, 28, 28)       # the output_padding mirror lands on 28, no crop
    assert out["class_logits"].shape == (2, 21) and out["modality_logits"].shape == (2, 3)


def test_cvae_heads_are_the_specified_mlps():
    """class 128 -> 128 -> 64 -> 21 and modality 128 -> 64 -> 3; hidden layers Linear, BatchNorm, LeakyReLU, Dropout."""
    model = build_generator("cvae", image_size=28, channels=1, options=CVAE_OPTIONS, n_classes=21, n_modalities=3)
    kinds = [type(m).__name__ for m in model.class_head]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout"] * 2 + ["Linear"]
    assert [m.out_features for m in model.class_head if isinstance(m, torch.nn.Linear)] == [128, 64, 21]
    assert [m.p for m in model.class_head if isinstance(m, torch.nn.Dropout)] == [0.3, 0.2]
    assert [type(m).__name__ for m in model.modality_head] == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout", "Linear"]
    assert [m.out_features for m in model.modality_head if isinstance(m, torch.nn.Linear)] == [64, 3]
    assert model.class_head[0].in_features == model.modality_head[0].in_features == model.latent_dim == 128


def test_cvae_loss_is_per_image_and_balanced_at_every_size():
    """Pixel terms are sums per image, the KL a sum over latent dims: an image twice as wide has 4x the pixel terms
    and the same KL, as in an ELBO (a per-pixel mean would divide the reconstruction by the pixel count)."""
    torch.manual_seed(0)
    model = _build("cvae", n_classes=2).eval()
    x = torch.rand(3, 1, 32, 32)
    out = model(x, torch.tensor([0, 1, 0]))
    terms = model.loss(x, out, torch.tensor([0, 1, 0]), epoch=50)
    torch.testing.assert_close(terms["mse"], ((out["recon"] - x) ** 2).sum() / 3)
    torch.testing.assert_close(terms["l1"], (out["recon"] - x).abs().sum() / 3)
    kl = -0.5 * (1 + out["logvar"] - out["mu"] ** 2 - out["logvar"].exp()).sum(dim=1).mean()
    torch.testing.assert_close(terms["kl"], kl)
    # Doubling the side (same content, upsampled) multiplies the pixel terms by 4, not 1.
    big = F.interpolate(x, scale_factor=2, mode="nearest")
    recon = F.interpolate(out["recon"], scale_factor=2, mode="nearest")
    big_terms = model.loss(big, {**out, "recon": recon}, torch.tensor([0, 1, 0]), epoch=50)
    torch.testing.assert_close(big_terms["mse"], 4 * terms["mse"])
    torch.testing.assert_close(big_terms["kl"], terms["kl"])


def test_eval_forward_is_deterministic():
    torch.manual_seed(0)
    for name in ("vae", "catvae", "cvae"):
        model = (_build(name, n_classes=2) if name == "cvae" else _build(name)).eval()
        x, cond = torch.rand(2, 1, 32, 32), _conditions(name, 2)
        a, b = model(x, **cond), model(x, **cond)
        torch.testing.assert_close(a["recon"], b["recon"])


# -- shapes -------------------------------------------------------------------------------------------
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


# -- attention ----------------------------------------------------------------------------------------
def test_sdpa_equals_explicit_softmax_attention():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 8, 16, 64), torch.randn(2, 8, 64, 64), torch.randn(2, 8, 64, 64)
    reference = torch.softmax(q @ k.transpose(-2, -1) / 8.0, dim=-1) @ v
    torch.testing.assert_close(F.scaled_dot_product_attention(q, k, v), reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(explicit_attention(q, k, v), reference, rtol=1e-5, atol=1e-5)

    block = MultiHeadCrossAttention(mode="fused").eval()
    query, memory = torch.randn(2, 16, 64), torch.randn(2, 64, 64)
    fused = block(query, memory)
    block.mode = "explicit"
    torch.testing.assert_close(block(query, memory), fused, rtol=1e-5, atol=1e-5)


def test_faithful_and_fused_differ_only_in_weight_dropout():
    torch.manual_seed(0)
    faithful = _build("catvae", attention="faithful")
    fused = _build("catvae", attention="fused")
    fused.load_state_dict(faithful.state_dict())
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(faithful.reconstruct(x), fused.reconstruct(x), rtol=1e-5, atol=1e-5)

    attn_f, attn_u = faithful.decoder.cross_attention.attention, fused.decoder.cross_attention.attention
    attn_f.train(), attn_u.train()
    query, memory = torch.randn(2, 16, 64), torch.randn(2, 64, 64)
    torch.testing.assert_close(attn_u(query, memory), attn_u(query, memory))     # fused: no weight dropout
    for mode in ("faithful", "faithful-sdpa", "explicit"):
        attn_f.mode = mode
        torch.manual_seed(1)
        first = attn_f(query, memory)
        torch.manual_seed(2)
        assert not torch.allclose(first, attn_f(query, memory)), mode            # weight dropout
        torch.manual_seed(1)
        torch.testing.assert_close(attn_f(query, memory), first, rtol=0, atol=0)  # seeded
    attn_f.dropout = 0.0
    for mode in ATTENTION_MODES:
        attn_f.mode = mode
        torch.testing.assert_close(attn_f(query, memory), attn_u(query, memory), rtol=1e-5, atol=1e-5)


def test_block_has_the_three_keras_dropouts_in_every_mode():
    """Keras: MultiHeadAttention(dropout) on the weights, Dropout before the first residual, Dropout closing
    the feed-forward branch; only the first depends on the mode."""
    torch.manual_seed(0)
    model = _build("catvae", attention="fused")
    block = model.decoder.cross_attention
    rates = [m.p for m in block.modules() if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.1, 0.1] and block.attention.dropout == 0.1
    query, memory = torch.randn(2, 16, 64), torch.randn(2, 64, 64)
    block.eval()
    reference = block(query, memory)
    for mode in ATTENTION_MODES:                                                 # eval: no dropout, one function
        block.mode = mode
        torch.testing.assert_close(block(query, memory), reference, rtol=1e-5, atol=1e-5)
    block.train()
    for mode in ATTENTION_MODES:                                                 # train: dropout in every mode
        block.mode = mode
        assert not torch.allclose(block(query, memory), reference, atol=1e-3), mode
    block.mode = "fused"                                                         # the two outer dropouts are
    block.attention_dropout.p = block.ff_dropout.p = 0.0                         # the fused mode's only noise
    torch.testing.assert_close(block(query, memory), reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ATTENTION_MODES)
def test_a_shared_context_is_the_same_as_a_repeated_one(mode):
    """generate() passes one class context [1, ...]; the attention must equal attending to n copies."""
    torch.manual_seed(0)
    model = _build("catvae", attention=mode)
    context = model.context_features(torch.rand(1, 1, 32, 32))
    shared = model.generate(5, context=context, generator=torch.Generator().manual_seed(3))
    repeated = model.generate(5, context=context.expand(5, -1, -1, -1).contiguous(),
                              generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(shared, repeated, rtol=1e-5, atol=1e-5)
    # synthesis passes the class context expanded to the batch (stride 0): it is shared, projected once
    batches = []
    hook = model.decoder.cross_attention.attention.k_proj.register_forward_hook(
        lambda module, args, out: batches.append(args[0].shape[0]))
    expanded = model.generate(5, context=context.expand(5, -1, -1, -1), generator=torch.Generator().manual_seed(3))
    hook.remove()
    assert batches and set(batches) == {1}
    torch.testing.assert_close(expanded, shared, rtol=0, atol=0)
    block = model.decoder.cross_attention.attention.train()
    query = torch.randn(3, 16, 64)
    torch.manual_seed(4)                                                          # training: no folding, the
    one = block(query, context.flatten(2).transpose(1, 2))                        # same draws as n copies
    torch.manual_seed(4)
    torch.testing.assert_close(one, block(query, context.flatten(2).transpose(1, 2).expand(3, -1, -1)))


def _decode_in_one_batch(model, z: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    """What generate() computed before it decoded in chunks: one NCHW decode of the whole batch."""
    with torch.no_grad():
        return torch.sigmoid(model.eval().decoder(z, *([] if context is None else [context])))


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


def test_all_attention_modes_generate_the_same_images():
    """Eval mode has no dropout: every mode computes one function, whichever kernel (fused, or the explicit
    maths in blocks without gradients) generation uses."""
    torch.manual_seed(0)
    model = _build("catvae", attention="fused")
    context = model.context_features(torch.rand(3, 1, 32, 32))
    for shared in (context.mean(0, keepdim=True), context):
        z = torch.randn(3, model.latent_dim)
        reference = _decode_in_one_batch(model, z, shared)
        for mode in ATTENTION_MODES:
            model.attention = mode
            torch.testing.assert_close(model.generate(3, context=shared, latents=z), reference,
                                       rtol=1e-5, atol=1e-5, msg=mode)
        model.attention = "fused"


@pytest.mark.parametrize("threads", [1, 2])
def test_explicit_attention_in_blocks_is_the_written_out_maths(threads, monkeypatch):
    """Without gradients explicit_attention runs in blocks (several per head; or several images per block):
    the same numbers as the whole expression, for a shared (batch-1) and for a per-image key/value set."""
    import catvae.models.attention as attention

    calls = []
    real_run_blocks = attention.run_blocks
    monkeypatch.setattr(attention, "run_blocks", lambda body, blocks, workers: (
        calls.append(len(blocks)), real_run_blocks(body, blocks, workers))[1])
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        for block, kv_batch in ((64 * 5, 1), (64 * 5, 3), (64 * 40, 3)):   # 5 rows; 5 rows; 2 images per block
            monkeypatch.setattr(attention, "EXPLICIT_BLOCK", block)
            q = torch.randn(3, 2, 16, 8)
            k, v = torch.randn(kv_batch, 2, 64, 8), torch.randn(kv_batch, 2, 64, 8)
            whole = explicit_attention(q, k, v)                             # grad mode on: one expression
            with torch.no_grad():
                blocked = explicit_attention(q, k, v)
            torch.testing.assert_close(blocked, whole, rtol=0, atol=1e-6)
            torch.testing.assert_close(blocked, F.scaled_dot_product_attention(q, k.expand(3, -1, -1, -1),
                                                                               v.expand(3, -1, -1, -1)),
                                       rtol=1e-5, atol=1e-5)
        assert calls == [3 * 2 * 4, 3 * 2 * 4, 2 * 2]
    finally:
        torch.set_num_threads(previous)


# -- Keras layer semantics ----------------------------------------------------------------------------
def test_same_transposed_conv_is_the_adjoint_of_same_conv():
    """TF defines Conv2DTranspose(padding='same') as the gradient of Conv2D(padding='same')."""
    torch.manual_seed(0)
    conv, deconv = SameConv2d(3, 5, 3, stride=2), SameConvTranspose2d(5, 3, 3, stride=2)
    with torch.no_grad():
        deconv.weight.copy_(conv.weight)
        conv.bias.zero_(), deconv.bias.zero_()
    x, y = torch.randn(2, 3, 8, 8), torch.randn(2, 5, 4, 4)
    assert conv(x).shape == y.shape and deconv(y).shape == x.shape
    torch.testing.assert_close((conv(x) * y).sum(), (x * deconv(y)).sum(), rtol=1e-4, atol=1e-4)
    # and 'same' padding goes after the image: the top-left output sees no padding
    torch.testing.assert_close(conv(x)[..., 0, 0], F.conv2d(x[..., :3, :3], conv.weight)[..., 0, 0])


def _blobs(n: int, size: int = 32) -> torch.Tensor:
    """Bright Gaussian blobs at varied places on a dark field: learnable structure, unlike pure noise."""
    grid = torch.arange(size, dtype=torch.float32)
    centres = torch.linspace(8, size - 8, n)
    yy, xx = grid.view(1, -1, 1), grid.view(1, 1, -1)
    return torch.exp(-((yy - centres.view(-1, 1, 1)) ** 2 + (xx - centres.flip(0).view(-1, 1, 1)) ** 2) / 30).unsqueeze(1)


# -- training and generation --------------------------------------------------------------------------
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


def test_explicit_attention_stays_float32_under_autocast():
    """The float32 reference path switches autocast off inside (checked with CPU autocast; CUDA's is the same API)."""
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 8, 16, 64), torch.randn(2, 8, 64, 64), torch.randn(2, 8, 64, 64)
    reference = explicit_attention(q, k, v)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (q @ k.transpose(-2, -1)).dtype == torch.bfloat16  # autocast is on out here
        inside = explicit_attention(q, k, v)
        from_half = explicit_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert inside.dtype == torch.float32 and from_half.dtype == torch.float32
    torch.testing.assert_close(inside, reference, rtol=0, atol=0)
    assert explicit_attention(q.double(), k.double(), v.double()).dtype == torch.float64


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


def test_cvae_beta_warmup_schedule():
    model = _build("cvae", n_classes=2)          # beta 1.0, start 2, over 10 epochs
    assert [model.beta_at(e) for e in (0, 2, 7, 12, 40)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    x = torch.rand(2, 1, 32, 32)
    out = model(x, torch.tensor([0, 1]))
    assert model.loss(x, out, torch.tensor([0, 1]), epoch=7)["beta"].item() == pytest.approx(0.5)
    assert model.loss(x, out, torch.tensor([0, 1]), epoch=7)["ce_modality"].item() == 0.0


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vae", "catvae"])
def test_image_size_not_divisible_by_8_is_rejected(name):
    with pytest.raises(CatvaeError, match="dataset.image_size"):
        build_generator(name, image_size=60, channels=1, options={})


def test_schema_lists_exactly_the_attention_modes():
    from catvae.config import load_schema

    schema = load_schema()
    attention = schema["properties"]["generators"]["properties"]["catvae"]["properties"]["attention"]
    assert attention["enum"] == list(ATTENTION_MODES) and attention["default"] == "faithful"


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
