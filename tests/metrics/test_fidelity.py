"""FID/KID: the notes when weights are absent, bad weights files, and the real torch-fidelity loading path.

The real path uses a locally built InceptionV3 state dict with random weights (the true weights are ~95 MB and
cannot be fetched offline): the numbers are meaningless as image quality but exercise exactly the code that loads
the configured file and computes FID/KID. Every test forbids downloads, so a code path that would fetch fails loudly.
"""

import numpy as np
import pytest
import torch
import torch.hub

from catvae.errors import CatvaeError
from catvae.metrics import fidelity
from catvae.metrics.fidelity import fid_kid, kid_settings


def _no_download(*args, **kwargs):
    raise AssertionError(f"attempted download: {args}")


@pytest.fixture(autouse=True)
def forbid_downloads(monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    monkeypatch.setattr(fe, "load_state_dict_from_url", _no_download)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory):
    """torch-fidelity's InceptionV3 with random (variance-preserving) weights, saved as the state dict it loads.

    Its constructor always loads weights (from a URL when no path is given), so the build points it at an empty
    file and skips only `load_state_dict`; the saved file is then loaded for real, unpatched, by the code under test.
    """
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    folder = tmp_path_factory.mktemp("inception")
    empty = folder / "empty.pt"
    torch.save({}, empty)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fe, "load_state_dict_from_url", _no_download)
        mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, strict=True: None)
        torch.manual_seed(0)
        model = fe.FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty)
        )
    # PyTorch's default init shrinks activations ~1e-8 through 90 layers; He init keeps the 2048 features O(1).
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = folder / "weights-inception-random.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def _images(n, seed):
    return np.random.default_rng(seed).random((n, 1, 32, 32)).astype(np.float32)


def test_no_weights_configured_gives_a_note():
    out = fid_kid(_images(4, 0), _images(5, 1), weights_path=None)
    assert out == {"fid": None, "kid": None, "kid_std": None, "n_real": 4, "n_fake": 5,
                   "note": "n/a: no InceptionV3 weights (set quality.inception_weights)"}


def test_missing_weights_file_gives_a_note(tmp_path):
    missing = tmp_path / "nope.pth"
    out = fid_kid(_images(4, 0), _images(4, 1), weights_path=str(missing), max_images=3)
    assert out["fid"] is None and out["kid"] is None
    assert out["note"] == f"n/a: InceptionV3 weights not found at {missing}"
    assert out["n_real"] == 3 and out["n_fake"] == 3  # subsampled to max_images


def test_corrupt_weights_file_raises(tmp_path):
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(CatvaeError, match=r"quality\.inception_weights.*corrupt\.pth"):
        fid_kid(_images(4, 0), _images(4, 1), weights_path=str(bad))


def test_foreign_state_dict_raises(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(CatvaeError, match=r"quality\.inception_weights.*resnet\.pth.*Conv2d_1a_3x3"):
        fid_kid(_images(4, 0), _images(4, 1), weights_path=str(other))


def test_incomplete_state_dict_raises(tmp_path, random_inception_weights):
    state = torch.load(random_inception_weights, weights_only=True)
    del state["Mixed_7c.branch1x1.conv.weight"]
    partial = tmp_path / "partial.pth"
    torch.save(state, partial)
    with pytest.raises(CatvaeError, match=r"(?s)partial\.pth does not fit InceptionV3.*Mixed_7c"):
        fid_kid(_images(2, 0), _images(2, 1), weights_path=str(partial))


def test_too_few_images_gives_a_note(random_inception_weights):
    out = fid_kid(_images(1, 0), _images(4, 1), weights_path=random_inception_weights)
    assert out["fid"] is None and out["kid"] is None
    assert "at least 2 images" in out["note"] and out["n_real"] == 1


def test_kid_settings_adapt_to_small_sets():
    assert kid_settings(5000, 3000) == (1000, 100)
    assert kid_settings(300, 50) == (50, 100)
    assert kid_settings(40, 40) == (40, 1)  # one subset covers both sets; repeats would be identical


def test_fid_kid_with_locally_loaded_weights(random_inception_weights, monkeypatch):
    """Real torch-fidelity path: FID(x, x) ~ 0 and a very different set scores clearly higher.

    On InceptionV3's 64-d features instead of the 2048-d ones the study uses: FID on 2048-d needs the eigenvalues of
    a 2048x2048 matrix (up to a minute of CPU per call on a busy 2-core machine); every other step, weights loading
    included, is the same.
    """
    monkeypatch.setattr(fidelity, "FEATURE_LAYER", "64")
    x = _images(6, 0)
    different = np.zeros((6, 1, 32, 32), dtype=np.float32)
    different[:, :, 8:24, 8:24] = 1.0  # bright squares on black, unlike uniform noise

    same = fid_kid(x, x, weights_path=random_inception_weights, device="cpu", batch_size=12)
    far = fid_kid(x, different, weights_path=random_inception_weights, device="cpu", batch_size=12)

    for out in (same, far):
        assert np.isfinite(out["fid"]) and np.isfinite(out["kid"])
        assert out["n_real"] == 6 and out["n_fake"] == 6
        assert out["kid_std"] is None  # 6 vs 6: a single KID subset
        assert out["note"].startswith("ok: torch-fidelity") and "features 64" in out["note"]
    assert abs(same["fid"]) < 1e-3
    assert abs(same["kid"]) < 1e-2
    assert far["fid"] > 1.0 > abs(same["fid"])
    assert far["kid"] > same["kid"] + 0.1
