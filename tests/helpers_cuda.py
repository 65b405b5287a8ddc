"""The marker for tests that need a real CUDA GPU: `pytest -m cuda` selects them; without CUDA they are skipped.

Such tests are never the only coverage of their code: each has a CPU test with torch's CUDA functions mocked.
"""

from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()


def requires_cuda(test):
    """Mark `test` as needing CUDA (marker `cuda`) and skip it where no CUDA device is available."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")(test))


def forbid_enabled_autocast(monkeypatch) -> None:
    """Fail the test if anything switches autocast on; switching it off (the float32 reference paths) is allowed."""
    real_autocast = torch.autocast

    def guarded(device_type, dtype=None, enabled=True, **kwargs):
        assert not enabled, f"autocast switched on for {device_type} ({dtype})"
        return real_autocast(device_type, enabled=False)

    monkeypatch.setattr(torch, "autocast", guarded)
