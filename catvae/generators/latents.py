"""Latent codes of a trained generator: encoder means, active dimensions, and where generation draws z from.

Why a density fitted ex post: a VAE trained briefly on a few hundred images leaves regions of N(0, I) that no
training image's posterior covers, and the decoder turns z from there into dark blobs, not brains. Fitting a
Gaussian mixture to the training images' encoder means and drawing z from it (ex-post density estimation,
Ghosh et al., "From variational to deterministic autoencoders", ICLR 2020) keeps z where the decoder was
trained. It is a labelled option beside the paper's prior sampling (`sampling.mode: prior`), and every
synthetic set records which one made it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import torch

from catvae.config import defaults, schema_enum
from catvae.errors import CatvaeError
from catvae.precision import to_device

log = logging.getLogger("catvae.generators.latents")

#: Batch for encoding / reconstructing real images.
EVAL_BATCH = 64
#: A latent dimension is active when the variance of its encoder mean over the data exceeds this
#: (Burda et al., "Importance weighted autoencoders", 2016).
ACTIVE_THRESHOLD = 0.01
SAMPLING_MODES = schema_enum("generators", "vae", "sampling", "mode")
COVARIANCE_TYPES = schema_enum("generators", "vae", "sampling", "covariance")
DEFAULT_SAMPLING = defaults("generators", "vae", "sampling")  # every generator block shares it


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor | None], torch.Tensor],
    images: np.ndarray,
    labels: np.ndarray | None,
    mods: np.ndarray | None,
    device: torch.device,
) -> np.ndarray:
    """Apply a model function batch by batch; conditions are sliced alongside the images."""
    outputs = []
    for start in range(0, len(images), EVAL_BATCH):
        end = start + EVAL_BATCH
        x = to_device(torch.from_numpy(images[start:end]), device)
        y = to_device(torch.from_numpy(labels[start:end]), device) if labels is not None else None
        m = to_device(torch.from_numpy(mods[start:end]), device) if mods is not None else None
        outputs.append(fn(x, y, m).float().cpu().numpy())
    return np.concatenate(outputs)


def encode_means(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray | None, mods: np.ndarray | None,
                 device: torch.device) -> np.ndarray:
    """Encoder means `[N, latent]` of `images` (with their conditions for a conditional model)."""
    return batched(lambda x, y, m: model.encode_mu(x, labels=y, modalities=m), images, labels, mods, device)


def active_dims(mu: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of latent dimensions whose encoder mean varies over the data by more than `threshold`.

    A collapsed posterior (the decoder ignores z) shows as few or no active dimensions.
    """
    if len(mu) < 2:
        return 0
    return int((np.var(mu, axis=0) > threshold).sum())


def sampling_options(options: dict[str, Any] | None, model_name: str) -> dict[str, Any]:
    """Validate `generators.<model>.sampling`; returns {mode, components, covariance} with defaults filled in."""
    merged = {**DEFAULT_SAMPLING, **(options or {})}
    prefix = f"generators.{model_name}.sampling"
    unknown = sorted(set(merged) - set(DEFAULT_SAMPLING))
    if unknown:
        raise CatvaeError(f"config key '{prefix}' has unknown key(s) {unknown}")
    if merged["mode"] not in SAMPLING_MODES:
        raise CatvaeError(f"config key '{prefix}.mode' must be one of {list(SAMPLING_MODES)}, got {merged['mode']!r}")
    components = merged["components"]
    if isinstance(components, bool) or not isinstance(components, int) or components < 1:
        raise CatvaeError(f"config key '{prefix}.components' must be a positive integer, got {components!r}")
    if merged["covariance"] not in COVARIANCE_TYPES:
        raise CatvaeError(
            f"config key '{prefix}.covariance' must be one of {list(COVARIANCE_TYPES)}, got {merged['covariance']!r}")
    return merged


class LatentSampler:
    """z for generation, batch by batch: the prior N(0, I), or a Gaussian mixture fitted to encoder means.

    `prior` returns None from `next`, so the model draws z itself exactly as before (from the synthesis
    generator). `gmm` fits scikit-learn's GaussianMixture (seeded) to `mu` and draws in generation order from a
    NumPy generator seeded with `seed`: a component per image by the mixture weights, then its Gaussian.
    (``GaussianMixture.sample`` returns its samples grouped by component, which would make a smaller target,
    a prefix of the generation order, hold only the first components.)
    """

    def __init__(self, options: dict[str, Any], mu: np.ndarray | None, seed: int) -> None:
        self.mode = options["mode"]
        self.info: dict[str, Any] = {"mode": self.mode}
        if self.mode == "prior":
            return
        from sklearn.mixture import GaussianMixture

        if mu is None or len(mu) < 2:
            raise CatvaeError("sampling mode 'gmm' needs the encoder means of at least 2 training images")
        k = min(int(options["components"]), len(mu))
        gmm = GaussianMixture(n_components=k, covariance_type=options["covariance"], random_state=int(seed))
        gmm.fit(mu.astype(np.float64))
        self.weights = gmm.weights_ / gmm.weights_.sum()
        self.means = gmm.means_
        if options["covariance"] == "full":
            self.scales = np.linalg.cholesky(gmm.covariances_)               # [k, d, d]
        else:
            self.scales = np.sqrt(gmm.covariances_)                          # [k, d]
        self.rng = np.random.default_rng(int(seed))
        self.info.update({"components": k, "covariance": options["covariance"], "n_fit": int(len(mu)),
                          "converged": bool(gmm.converged_)})
        log.info("fitted a %d-component %s Gaussian mixture to %d encoder means", k, options["covariance"], len(mu))

    def next(self, n: int) -> torch.Tensor | None:
        """`[n, latent]` float32 latents (CPU), or None for the prior (the model draws them)."""
        if self.mode == "prior":
            return None
        comp = self.rng.choice(len(self.weights), size=n, p=self.weights)
        eps = self.rng.standard_normal((n, self.means.shape[1]))
        if self.scales.ndim == 3:
            noise = np.einsum("nij,nj->ni", self.scales[comp], eps)
        else:
            noise = self.scales[comp] * eps
        return torch.from_numpy((self.means[comp] + noise).astype(np.float32))
