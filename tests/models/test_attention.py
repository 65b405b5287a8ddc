"""The CAT-VAE cross-attention (catvae/models/attention.py): its modes compute the same attention, the Keras dropouts,
shared contexts, float32 under autocast."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from catvae.models import ATTENTION_MODES, MultiHeadCrossAttention, explicit_attention
from models import _build, _decode_in_one_batch

torch.set_num_threads(1)


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


def test_schema_lists_exactly_the_attention_modes():
    from catvae.config import load_schema

    schema = load_schema()
    attention = schema["properties"]["generators"]["properties"]["catvae"]["properties"]["attention"]
    assert attention["enum"] == list(ATTENTION_MODES) and attention["default"] == "faithful"
