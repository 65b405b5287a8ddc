"""Keras defaults the ported models depend on: Adam's epsilon hat (1e-7) and Glorot-uniform / zero-bias init."""

from __future__ import annotations

import math

import pytest
import torch

from catvae.classifier.cnn import build_cnn
from catvae.models import count_parameters
from catvae.optim import KERAS_ADAM_EPSILON, KerasAdam, build_adam


def _keras_adam_reference(w: torch.Tensor, grads: list[torch.Tensor], lr: float, eps: float) -> torch.Tensor:
    """Keras' Adam update, written out (float64): lr_t = lr sqrt(1-b2^t)/(1-b1^t); w -= lr_t m / (sqrt(v) + eps)."""
    b1, b2 = 0.9, 0.999
    m, v, w = torch.zeros_like(w), torch.zeros_like(w), w.clone()
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (v.sqrt() + eps)
    return w


@pytest.mark.parametrize("scale", [1.0, 1e-6])   # ordinary gradients, and gradients where epsilon matters
def test_keras_adam_matches_the_keras_update(scale):
    torch.manual_seed(0)
    grads = [torch.randn(50, dtype=torch.float64) * scale for _ in range(30)]
    w0 = torch.randn(50, dtype=torch.float64)
    param = torch.nn.Parameter(w0.clone())
    opt = KerasAdam([param], lr=0.01)
    for g in grads:
        param.grad = g.clone()
        opt.step()
    expected = _keras_adam_reference(w0, grads, 0.01, KERAS_ADAM_EPSILON)
    torch.testing.assert_close(param.detach(), expected, rtol=1e-10, atol=1e-12)
    if scale < 1:   # plain torch Adam (epsilon added after bias correction) differs where epsilon matters
        plain = torch.nn.Parameter(w0.clone())
        torch_opt = torch.optim.Adam([plain], lr=0.01, eps=KERAS_ADAM_EPSILON)
        for g in grads:
            plain.grad = g.clone()
            torch_opt.step()
        assert not torch.allclose(plain.detach(), expected, rtol=1e-6, atol=1e-9)


def test_keras_adam_resumes_with_the_same_epsilon_sequence():
    torch.manual_seed(0)
    grads = [torch.randn(8) * 1e-6 for _ in range(6)]
    straight = torch.nn.Parameter(torch.ones(8))
    opt = KerasAdam([straight], lr=0.1)
    for g in grads:
        straight.grad = g.clone()
        opt.step()
    resumed = torch.nn.Parameter(torch.ones(8))
    first = KerasAdam([resumed], lr=0.1)
    for g in grads[:3]:
        resumed.grad = g.clone()
        first.step()
    second = KerasAdam([resumed], lr=0.1)
    second.load_state_dict(first.state_dict())
    for g in grads[3:]:
        resumed.grad = g.clone()
        second.step()
    assert torch.equal(straight.detach(), resumed.detach())


def test_cnn_starts_glorot_uniform_with_zero_biases_and_keeps_its_size():
    torch.manual_seed(0)
    model = build_cnn(224, 3, 3)
    assert count_parameters(model) == 11_169_347 and count_parameters(build_cnn(224, 3, 2)) == 11_169_089
    layers = [m for m in model if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 5
    for layer in layers:
        w = layer.weight
        receptive = w[0, 0].numel() if w.dim() == 4 else 1
        limit = math.sqrt(6.0 / ((w.shape[0] + w.shape[1]) * receptive))
        assert w.abs().max() <= limit and w.abs().max() > 0.95 * limit    # uniform on [-limit, limit]
        assert abs(w.std().item() - limit / math.sqrt(3)) < 0.05 * limit   # std of U(-a, a) is a / sqrt(3)
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("keras", [True, False])
def test_build_adam_fuses_on_a_cpu_and_computes_the_same_update(keras):
    """The fused kernel is an implementation choice: its steps equal the per-operation Adam's up to rounding."""
    torch.manual_seed(0)
    grads = [torch.randn(64) * 1e-3 for _ in range(20)]
    fused = torch.nn.Parameter(torch.randn(64))
    loop = torch.nn.Parameter(fused.detach().clone())
    fast = build_adam([fused], lr=0.01, weight_decay=1e-4, keras=keras)
    slow = (KerasAdam if keras else torch.optim.Adam)([loop], lr=0.01, weight_decay=1e-4)
    assert fast.defaults["fused"] is True and not slow.defaults["fused"]
    assert isinstance(fast, KerasAdam) == keras
    for g in grads:
        fused.grad, loop.grad = g.clone(), g.clone()
        fast.step()
        slow.step()
    torch.testing.assert_close(fused.detach(), loop.detach(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(fused.detach(), torch.zeros(64))


def test_build_adam_fuses_only_on_a_cpu():
    """A parameter off the CPU keeps PyTorch's default implementation (the meta device stands in for a GPU)."""
    on_meta = torch.nn.Parameter(torch.empty(4, device="meta"))
    assert not build_adam([on_meta], lr=0.1).defaults["fused"]


def test_build_adam_falls_back_where_the_fused_kernel_is_refused(monkeypatch):
    """A device without the fused kernel makes PyTorch raise RuntimeError for fused=True: the per-operation
    optimiser is returned instead of an error."""
    import catvae.optim as optim

    class Refusing(KerasAdam):
        def __init__(self, *args, fused=None, **kwargs):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(optim, "KerasAdam", Refusing)
    opt = optim.build_adam([torch.nn.Parameter(torch.ones(3))], lr=0.1)
    assert isinstance(opt, Refusing) and not opt.defaults["fused"]
