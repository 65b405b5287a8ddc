"""The CPU attention with weight dropout (``faithful`` mode): same function as SDPA / Keras, same mask twice."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from catvae.errors import CatvaeError
from catvae.models.attention import MultiHeadCrossAttention
from catvae.models.dropout_attention import DropoutMasks, dropout_attention

torch.set_num_threads(1)


def _qkv(b=2, h=3, lq=5, lk=7, d=8, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=gen, dtype=dtype, requires_grad=True) for n in (lq, lk, lk)]


def _masks(p: float, seed: int, pairs: int, lq: int, lk: int) -> torch.Tensor:
    """Every pair's keep mask, drawn in one block, as float [pairs, lq, lk]."""
    keep = torch.empty(pairs, lq, lk, dtype=torch.uint8)
    DropoutMasks(p, seed).draw(0, keep, torch.empty(pairs, (lq * lk + 7) // 8, dtype=torch.uint8))
    return keep.float()


def _explicit(q, k, v, keep, p):
    """The Keras maths written out with a given mask: softmax(q k^T / sqrt(d)) * mask / (1-p) @ v."""
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return (weights * keep.view_as(weights) / (1 - p)) @ v


@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_without_dropout_it_is_sdpa_forward_and_backward(chunk):
    q, k, v = _qkv(b=3, h=2, lq=16, lk=40, d=16)
    grad = torch.randn(3, 2, 16, 16)
    ref = F.scaled_dot_product_attention(q, k, v)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad)
    out = dropout_attention(q, k, v, 0.0, chunk=chunk)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(torch.autograd.grad(out, (q, k, v), grad), ref_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def test_strided_and_shared_inputs_are_read_in_place():
    """The module passes heads as transposed views, and a shared context's K/V expanded over the batch."""
    gen = torch.Generator().manual_seed(1)
    q = torch.randn(3, 16, 4, 8, generator=gen).transpose(1, 2).requires_grad_()   # [B, H, L, d] views
    k0, v0 = (torch.randn(1, 24, 4, 8, generator=gen).requires_grad_() for _ in range(2))
    k, v = (t.transpose(1, 2).expand(3, -1, -1, -1) for t in (k0, v0))
    grad = torch.randn(3, 4, 16, 8, generator=gen)
    ref = F.scaled_dot_product_attention(q, k, v)
    ref_grads = torch.autograd.grad(ref, (q, k0, v0), grad)
    out = dropout_attention(q, k, v, 0.0, workers=2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(torch.autograd.grad(out, (q, k0, v0), grad), ref_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("chunk", "workers"), [(1, 1), (2, 2), (5, 2), (6, 1)])
def test_backward_uses_the_forward_mask(chunk, workers):
    """Gradients equal those of the explicit maths fed the mask the seed defines, whatever the blocking."""
    p, seed = 0.3, 1234
    q, k, v = _qkv(b=2, h=3, lq=6, lk=9)
    keep = _masks(p, seed, 6, 6, 9)
    assert 0 < keep.mean() < 1
    grad = torch.randn(2, 3, 6, 8)
    ref = _explicit(q, k, v, keep, p)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad)
    threads = torch.get_num_threads()
    out = dropout_attention(q, k, v, p, seed=seed, chunk=chunk, workers=workers)
    assert torch.get_num_threads() == threads                   # worker threads leave the setting as it was
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(torch.autograd.grad(out, (q, k, v), grad), ref_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


def test_dropped_weights_are_zero_and_kept_ones_scaled():
    """With V = identity the output rows are the dropped-out weights themselves."""
    p, seed, lk = 0.5, 9, 12
    q = torch.randn(1, 1, 4, lk)
    k, v = torch.randn(1, 1, lk, lk), torch.eye(lk).view(1, 1, lk, lk)
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(lk), dim=-1)
    keep = _masks(p, seed, 1, 4, lk).view_as(weights)
    torch.testing.assert_close(dropout_attention(q, k, v, p, seed=seed), weights * keep * 2.0)


def test_kept_fraction_is_one_minus_p():
    p, pairs, lq, lk = 0.1, 64, 256, 1024                     # the paper preset's block: 16.8 M weights
    keep = torch.empty(pairs, lq, lk, dtype=torch.uint8)
    DropoutMasks(p, 7).draw(0, keep, torch.empty(pairs, lq * lk // 8, dtype=torch.uint8))
    n = keep.numel()
    kept = keep.sum(dtype=torch.float64).item() / n
    assert abs(kept - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)     # 5 sigma = 3.7e-4
    per_pair = keep.view(pairs, -1).double().mean(dim=1)           # no pair is off on its own
    assert (per_pair - (1 - p)).abs().max() < 5 * math.sqrt(p * (1 - p) / (lq * lk))
    assert abs(DropoutMasks(p, 0).rate - p) <= 2**-33


def test_ties_with_the_threshold_are_decided_by_more_bits():
    """16 bits decide a weight unless they equal the threshold's high half; then 16 more bits do."""
    p = (1000 + 0.25) / 2**16                                   # hi = 1000, lo = 2**14: a quarter of ties drop
    masks = DropoutMasks(p, 3)
    assert (masks.hi, masks.lo) == (1000, 2**14)
    n = 400_000
    keep = np.empty(n, dtype=np.bool_)
    masks.decide(np.full(n, 1000, dtype=np.uint16), 0, keep)
    assert abs(keep.mean() - 0.75) < 5 * math.sqrt(0.75 * 0.25 / n)
    masks.decide(np.array([0, 999, 1001, 65535], dtype=np.uint16), 0, keep[:4])
    assert keep[:4].tolist() == [False, False, True, True]
    exact = DropoutMasks(0.25, 3)                                # 0.25 = 16384 / 2**16: no ties to refine
    assert exact.lo == 0 and exact.rate == 0.25


def test_masks_are_seeded_and_independent_of_blocking():
    p = 0.1
    a = _masks(p, 42, 6, 8, 8)
    keep = torch.empty(2, 8, 8, dtype=torch.uint8)
    DropoutMasks(p, 42).draw(4, keep, torch.empty(2, 8, dtype=torch.uint8))      # pairs 4 and 5 alone
    torch.testing.assert_close(keep.float(), a[4:])
    assert not torch.equal(a, _masks(p, 43, 6, 8, 8))
    assert not torch.equal(a[0], a[1])                                            # pairs draw different masks


def test_output_is_deterministic_under_a_seed():
    q, k, v = _qkv(b=2, h=2, lq=8, lk=16)
    torch.manual_seed(5)
    first = dropout_attention(q, k, v, 0.2)
    torch.manual_seed(5)
    torch.testing.assert_close(dropout_attention(q, k, v, 0.2), first, rtol=0, atol=0)
    assert not torch.allclose(dropout_attention(q, k, v, 0.2), first)             # the next draw differs
    torch.testing.assert_close(dropout_attention(q, k, v, 0.2, seed=11), dropout_attention(q, k, v, 0.2, seed=11))


@pytest.mark.parametrize("p", [0.0, 0.4])
def test_gradcheck_float64(p):
    q, k, v = _qkv(b=1, h=2, lq=3, lk=5, d=4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q, k, v: dropout_attention(q, k, v, p, seed=3, chunk=1), (q, k, v))


def test_eval_mode_has_no_weight_dropout_and_training_uses_this_kernel(monkeypatch):
    torch.manual_seed(0)
    block = MultiHeadCrossAttention(d_model=16, num_heads=2, key_dim=8, dropout=0.5, mode="faithful")
    query, context = torch.randn(2, 4, 16), torch.randn(2, 6, 16)
    fused = MultiHeadCrossAttention(d_model=16, num_heads=2, key_dim=8, dropout=0.5, mode="fused")
    fused.load_state_dict(block.state_dict())
    block.eval(), fused.eval()
    torch.testing.assert_close(block(query, context), fused(query, context))
    torch.testing.assert_close(block(query, context), block(query, context), rtol=0, atol=0)

    calls = []
    import catvae.models.attention as attention

    def spy(*args, **kw):
        calls.append(args[3])
        return dropout_attention(*args, **kw)

    monkeypatch.setattr(attention, "dropout_attention", spy)
    block.train()
    out = block(query, context)
    assert calls == [0.5] and not torch.allclose(out, fused(query, context))
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_bad_rate_is_refused():
    q, k, v = _qkv()
    for p in (-0.1, 1.0):
        with pytest.raises(CatvaeError, match="dropout rate"):
            dropout_attention(q, k, v, p)
