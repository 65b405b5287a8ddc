"""Device resolution, CUDA determinism settings and mixed-precision decisions, on a CPU with CUDA mocked.

The CUDA functions torch would call are replaced by recorders, so these tests show which device's capability,
name and settings are read and what is switched on, without a GPU. Tests marked `cuda` repeat the key checks on
a real GPU and are skipped without one.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
from helpers_cuda import requires_cuda

from catvae import precision
from catvae.device import CUBLAS_WORKSPACE, configure_determinism, device_name, resolve_device
from catvae.errors import CatvaeError


@pytest.fixture
def fake_cuda(monkeypatch):
    """Two visible GPUs (current device 1): an Ampere (8.0) at index 1, a Turing (7.5) at index 0."""
    calls: dict[str, list] = {"deterministic": [], "capability": [], "name": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)

    def capability(device):
        calls["capability"].append(torch.device(device))
        return {0: (7, 5), 1: (8, 0)}[torch.device(device).index]

    def name(device):
        calls["name"].append(torch.device(device))
        return {0: "Tesla T4", 1: "NVIDIA A100-SXM4-40GB"}[torch.device(device).index]

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", name)
    monkeypatch.setattr(torch, "use_deterministic_algorithms",
                        lambda mode, warn_only=False: calls["deterministic"].append((mode, warn_only)))
    # Real flags, restored by monkeypatch afterwards: the test may flip them.
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    return calls


def test_resolve_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(CatvaeError, match="'device' is 'cuda'"):
        resolve_device("cuda")
    with pytest.raises(CatvaeError, match="must be 'auto', 'cpu' or 'cuda"):
        resolve_device("tpu")


def test_cuda_resolves_to_an_explicit_index_with_deterministic_kernels(fake_cuda):
    assert resolve_device("cuda") == torch.device("cuda", 1)  # the current device, named
    assert resolve_device("auto") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(CatvaeError, match=r"'cuda:2' but only 2 CUDA device"):
        resolve_device("cuda:2")
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False
    assert fake_cuda["deterministic"] and set(fake_cuda["deterministic"]) == {(True, True)}  # warn_only=True
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE


def test_a_cpu_device_changes_no_global_setting(fake_cuda):
    configure_determinism(torch.device("cpu"))
    assert fake_cuda["deterministic"] == []
    assert torch.backends.cudnn.benchmark is True and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert resolve_device("cpu") == torch.device("cpu") and fake_cuda["deterministic"] == []


def test_device_name_is_read_from_the_device_in_use(fake_cuda):
    assert device_name(torch.device("cpu")) == "cpu"
    assert device_name(torch.device("cuda", 0)) == "Tesla T4"
    assert device_name(torch.device("cuda", 1)) == "NVIDIA A100-SXM4-40GB"
    assert fake_cuda["name"] == [torch.device("cuda", 0), torch.device("cuda", 1)]


def test_amp_dtype_follows_the_capability_of_the_device_in_use(fake_cuda):
    # bf16 only where the device in use has it natively (>= 8.0); an older GPU gets fp16 (+ a loss scaler),
    # even when the process's current device (index 1 here) is a newer one.
    assert precision.amp_dtype(True, torch.device("cuda", 1)) == torch.bfloat16
    assert precision.amp_dtype(True, torch.device("cuda", 0)) == torch.float16
    assert fake_cuda["capability"] == [torch.device("cuda", 1), torch.device("cuda", 0)]
    assert precision.amp_dtype(False, torch.device("cuda", 1)) is None
    assert precision.amp_dtype(True, torch.device("cpu")) is None  # never on a CPU
    assert len(fake_cuda["capability"]) == 2  # neither of the last two asked the GPU anything


@pytest.mark.parametrize("capability, expected", [((6, 1), torch.float16), ((7, 0), torch.float16),
                                                  ((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                                  ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_amp_dtype_by_compute_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: capability)
    assert precision.amp_dtype(True, torch.device("cuda", 0)) == expected


def test_nothing_autocasts_on_a_cpu():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    for dtype in (torch.bfloat16, torch.float16, None):
        with precision.autocast(torch.device("cpu"), dtype):
            assert not torch.is_autocast_enabled("cpu")
            assert (a @ b).dtype == torch.float32


def test_autocast_on_cuda_uses_the_chosen_dtype(monkeypatch):
    made = []
    monkeypatch.setattr(torch, "autocast", lambda device_type, dtype=None: made.append((device_type, dtype)) or
                        precision.nullcontext())
    with precision.autocast(torch.device("cuda", 0), torch.bfloat16):
        pass
    with precision.autocast(torch.device("cuda", 0), None):  # AMP off: plain float32
        pass
    assert made == [("cuda", torch.bfloat16)]


def test_loss_scaling_only_for_float16(monkeypatch):
    made = []
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled: made.append((device, enabled)))
    for dtype in (torch.float16, torch.bfloat16, None):
        precision.grad_scaler(dtype)
    assert made == [("cuda", True), ("cuda", False), ("cuda", False)]


def test_channels_last_only_under_autocast_on_cuda():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert precision.use_channels_last(cuda, torch.bfloat16) and precision.use_channels_last(cuda, torch.float16)
    assert not precision.use_channels_last(cuda, None)
    assert not precision.use_channels_last(cpu, torch.bfloat16) and not precision.use_channels_last(cpu, None)
    assert precision.dtype_name(torch.bfloat16) == "bfloat16" and precision.dtype_name(None) is None


def test_host_copies_are_pinned_and_non_blocking_on_cuda_only():
    x = torch.arange(6)
    assert precision.to_device(x, torch.device("cpu")) is x  # no copy at all on a CPU

    steps = []

    class HostTensor:  # stands in for a CPU tensor headed for a GPU
        device = torch.device("cpu")

        def pin_memory(self):
            steps.append("pin")
            return self

        def to(self, device, non_blocking=False):
            steps.append(("to", device, non_blocking))
            return SimpleNamespace(device=device)

    out = precision.to_device(HostTensor(), torch.device("cuda", 1))
    assert steps == ["pin", ("to", torch.device("cuda", 1), True)] and out.device == torch.device("cuda", 1)


@requires_cuda
def test_on_a_real_gpu_determinism_amp_and_copies():
    dev = resolve_device("cuda")
    assert dev.type == "cuda" and dev.index is not None
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    major, _ = torch.cuda.get_device_capability(dev)
    dtype = precision.amp_dtype(True, dev)
    assert dtype == (torch.bfloat16 if major >= 8 else torch.float16)
    a, b = torch.randn(8, 8, device=dev), torch.randn(8, 8, device=dev)
    with precision.autocast(dev, dtype):
        assert (a @ b).dtype == dtype
    host = torch.arange(1000, dtype=torch.float32)
    moved = precision.to_device(host, dev)
    torch.cuda.synchronize(dev)
    assert torch.equal(moved.cpu(), host)
    assert device_name(dev) == torch.cuda.get_device_name(dev)
