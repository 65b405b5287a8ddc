"""FID and KID between generated and held-out real images, with torch-fidelity's InceptionV3. Never downloads.

torch-fidelity (checked against 0.4.0) downloads its InceptionV3 weights when `feature_extractor_weights_path` is
None (`FeatureExtractorInceptionV3.__init__` -> `torch.hub.load_state_dict_from_url`). This module therefore only
calls it with a local weights file named in config (`quality.inception_weights`, torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth`, a plain state dict); without one, FID and KID are None with a note.
Inputs go in as in-memory torch Datasets (never names of registered datasets, which torch-fidelity would
download), with its file cache and progress output off.

Small sets: FID is biased upwards when there are fewer images than feature dimensions (2048), so with a few hundred
images it is only comparable between runs of the same size; KID is unbiased and is the one to trust there
(DESIGN.md section 2). The KID subset size shrinks to the smaller set (torch-fidelity's default is 1000).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from catvae.device import resolve_device
from catvae.errors import CatvaeError
from catvae.metrics.reconstruction import check_images

log = logging.getLogger("catvae.metrics.fidelity")

WEIGHTS_KEY = "quality.inception_weights"
#: torch-fidelity's registered name of its TF-compatible InceptionV3 (the one FID/KID papers use).
FEATURE_EXTRACTOR = "inception-v3-compat"
#: Its 2048-d pool features, the layer FID and KID are defined on (torch-fidelity's default, passed explicitly).
#: FID on it needs the eigenvalues of a 2048x2048 matrix: seconds to a minute of CPU per call, whatever the set size.
FEATURE_LAYER = "2048"
#: torch-fidelity's default KID settings, used whenever the sets are large enough.
KID_SUBSET_SIZE = 1000
KID_SUBSETS = 100
#: Two parameters whose presence and shape identify the InceptionV3 state dict torch-fidelity loads.
WEIGHT_SIGNATURE = {"Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "fc.weight": (1008, 2048)}


class UInt8Images(Dataset):
    """uint8 `[3, H, W]` tensors, as torch-fidelity's feature extractors expect (they resize to 299 themselves)."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def to_uint8_rgb(images: np.ndarray) -> torch.Tensor:
    """[0, 1] floats `[N, C, H, W]` -> uint8 `[N, 3, H, W]`; grey is replicated to the 3 channels InceptionV3 needs.

    Not `catvae.data.images.to_uint8`, which averages channels to one grey image: colour must survive here.
    """
    arr = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    if arr.shape[1] == 1:
        arr = np.repeat(arr, 3, axis=1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def subsample(images: np.ndarray, max_images: int, rng: np.random.Generator) -> np.ndarray:
    """At most `max_images` images drawn without replacement (kept in their original order)."""
    if len(images) <= max_images:
        return images
    return images[np.sort(rng.choice(len(images), size=max_images, replace=False))]


def check_weights(path: str) -> None:
    """Raise CatvaeError naming the file and config key if `path` is not an InceptionV3 state dict.

    Loaded with `weights_only=True` (tensors only, no arbitrary pickled code) before torch-fidelity loads it again
    with `weights_only=False`, so a corrupt or foreign file fails here with a clear message, not deep inside torch.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file (UnpicklingError, RuntimeError, EOFError ...)
        raise CatvaeError(f"config key '{WEIGHTS_KEY}': cannot read InceptionV3 weights {path}: {exc}") from exc
    if not isinstance(state, Mapping):
        raise CatvaeError(f"config key '{WEIGHTS_KEY}': {path} is not a state dict (got {type(state).__name__})")
    for name, shape in WEIGHT_SIGNATURE.items():
        tensor = state.get(name)
        if not torch.is_tensor(tensor) or tuple(tensor.shape) != shape:
            raise CatvaeError(
                f"config key '{WEIGHTS_KEY}': {path} is not torch-fidelity's InceptionV3 state dict "
                f"(parameter {name!r} missing or not of shape {shape})"
            )


def kid_settings(n_real: int, n_fake: int) -> tuple[int, int]:
    """KID subset size and number of subsets for these set sizes.

    The subset size is min(1000, n_real, n_fake). When a subset is the whole of both sets, every subset is the same
    and repeating it only wastes time, so one subset is used (and its standard deviation is meaningless).
    """
    size = min(KID_SUBSET_SIZE, n_real, n_fake)
    subsets = 1 if size == n_real == n_fake else KID_SUBSETS
    return size, subsets


def empty_result(n_real: int, n_fake: int, note: str) -> dict:
    return {"fid": None, "kid": None, "kid_std": None, "n_real": n_real, "n_fake": n_fake, "note": note}


def fid_kid(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    weights_path: str | None,
    max_images: int = 2000,
    device: str = "auto",
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """FID and KID (InceptionV3 pool features, 2048-d) between real and generated `[N, C, H, W]` images in [0, 1].

    Each set is subsampled to `max_images` with `seed`. Returns
    `{"fid", "kid", "kid_std", "n_real", "n_fake", "note"}` where n_* are the counts actually used; fid/kid/kid_std
    are None when they cannot be computed (no weights configured, weights file missing, fewer than 2 images on a
    side) and `note` says why; otherwise `note` records the settings. `kid_std` is None when only one KID subset
    was possible. A weights file that exists but is not InceptionV3 weights raises CatvaeError.
    """
    real = check_images(real, "real images for FID/KID")
    fake = check_images(fake, "synthetic images for FID/KID")
    if real.shape[1:] != fake.shape[1:] and len(real) and len(fake):
        log.info("FID/KID: real %s and synthetic %s differ in size; InceptionV3 resizes both to 299x299",
                 real.shape[1:], fake.shape[1:])
    if max_images < 2:
        raise CatvaeError(f"config key 'quality.max_fid_images' must be >= 2, got {max_images}")
    rng = np.random.default_rng(seed)
    real = subsample(real, max_images, rng)
    fake = subsample(fake, max_images, rng)
    n_real, n_fake = int(len(real)), int(len(fake))

    if not weights_path:
        return empty_result(n_real, n_fake, f"n/a: no InceptionV3 weights (set {WEIGHTS_KEY})")
    weights_path = os.fspath(weights_path)
    if not os.path.isfile(weights_path):
        return empty_result(n_real, n_fake, f"n/a: InceptionV3 weights not found at {weights_path}")
    check_weights(weights_path)  # before the size check, so a wrong file is reported on every run
    if min(n_real, n_fake) < 2:
        return empty_result(
            n_real, n_fake, f"n/a: FID/KID need at least 2 images on each side (real {n_real}, synthetic {n_fake})"
        )

    import torch_fidelity  # imported here: it costs seconds and is needed only when weights exist

    dev = resolve_device(device)
    kid_size, kid_subsets = kid_settings(n_real, n_fake)
    log.info("FID/KID: %d real vs %d synthetic images on %s (KID subsets %d x %d)",
             n_real, n_fake, dev, kid_subsets, kid_size)
    kwargs = dict(
        input1=UInt8Images(to_uint8_rgb(real)),
        input2=UInt8Images(to_uint8_rgb(fake)),
        fid=True,
        kid=True,
        feature_extractor=FEATURE_EXTRACTOR,
        feature_layer_fid=FEATURE_LAYER,
        feature_layer_kid=FEATURE_LAYER,
        feature_extractor_weights_path=weights_path,  # never None: None means "download" in torch-fidelity
        kid_subset_size=kid_size,
        kid_subsets=kid_subsets,
        batch_size=batch_size,
        cuda=dev.type == "cuda",
        rng_seed=seed,
        cache=False,
        verbose=False,
        save_cpu_ram=True,  # no DataLoader worker processes: the images are already in memory
    )
    try:
        if dev.type == "cuda":
            with torch.cuda.device(dev):  # torch-fidelity moves to the *current* CUDA device
                metrics = torch_fidelity.calculate_metrics(**kwargs)
        else:
            metrics = torch_fidelity.calculate_metrics(**kwargs)
    except RuntimeError as exc:
        if "state_dict" in str(exc):
            raise CatvaeError(f"config key '{WEIGHTS_KEY}': {weights_path} does not fit InceptionV3: {exc}") from exc
        raise
    kid_std = float(metrics[torch_fidelity.KEY_METRIC_KID_STD]) if kid_subsets > 1 else None
    note = (
        f"ok: torch-fidelity {torch_fidelity.__version__} {FEATURE_EXTRACTOR} features {FEATURE_LAYER}, "
        f"{n_real} real vs {n_fake} synthetic; KID {kid_subsets} subset(s) of {kid_size}"
    )
    if min(n_real, n_fake) < 2048:
        note += "; FID is biased upwards below 2048 images per side, prefer KID"
    return {
        "fid": float(metrics[torch_fidelity.KEY_METRIC_FID]),
        "kid": float(metrics[torch_fidelity.KEY_METRIC_KID_MEAN]),
        "kid_std": kid_std,
        "n_real": n_real,
        "n_fake": n_fake,
        "note": note,
    }
