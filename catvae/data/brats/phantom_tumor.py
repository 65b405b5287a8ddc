"""Random smooth fields and simulated gliomas for the phantom cohort.

Kept apart from `phantom.py` (anatomy, contrast, files) because this is the part whose statistics matter to
the study: where tumours sit and how large they are decides how many central slices are `Tumor`, i.e. the
class imbalance the whole study is about. BraTS 2020 gives 830 Tumor / 277 NoTumor central slices (75 %),
and the defaults below are tuned to land near that (measured by `tests/data/brats/test_phantom.py` and `bench/phantom.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

# BraTS 2020 label values: necrotic / non-enhancing core, peritumoural edema, enhancing tumour.
NECROTIC = 1
EDEMA = 2
ENHANCING = 4

# Whole-tumour (edema included) equivalent radius in mm: BraTS whole tumours are roughly 20-200 cm^3.
_RADIUS_MEDIAN_MM = 25.0
_RADIUS_LOG_SD = 0.28
_RADIUS_RANGE_MM = (12.0, 42.0)
# Gaussian prior (mm) pulling tumour centres towards the middle of the volume: the knob that sets the
# central-slice Tumor fraction (wider -> more tumours miss the central slices).
_CENTER_PRIOR_SD_MM = 20.0
# Share of subjects given a lower-grade-like tumour: no enhancing rim, the core labelled 1 (BraTS 2020 has
# 76 LGG among 369 subjects).
_NON_ENHANCING_SHARE = 0.2
# How much further (in units of the tumour radius) edema reaches in pure white matter than at a 50/50 border.
_EDEMA_WM_REACH = 0.5


def low_frequency_field(
    rng: np.random.Generator, shape: tuple[int, ...], n_modes: int = 4, channels: int = 1
) -> np.ndarray:
    """Smooth random fields `[channels, *shape]` (float32, about zero mean and unit SD).

    Built from the lowest `n_modes` cosine modes per axis with 1/f-like weights, so it is smooth by
    construction and costs a few separable tensor products instead of a full-volume Gaussian filter.
    Used for deformations, bias fields and tumour outlines.
    """
    bases = []
    for n in shape:
        k = np.arange(n_modes)
        bases.append(np.cos(np.pi * np.outer(np.arange(n) + 0.5, k) / n).astype(np.float32))
    freq = np.sqrt(sum(np.meshgrid(*[np.arange(n_modes) ** 2] * len(shape), indexing="ij", sparse=True)))
    weight = (1.0 / (1.0 + freq)).astype(np.float32)
    weight.flat[0] = 0.0  # no constant offset: the field is a variation around zero
    coeff = rng.standard_normal((channels,) + (n_modes,) * len(shape)).astype(np.float32) * weight
    out = coeff
    for axis, basis in enumerate(bases):
        # contract mode axis (axis + 1) with the basis, putting the spatial axis in its place
        out = np.moveaxis(np.tensordot(out, basis, axes=([axis + 1], [1])), -1, axis + 1)
    sd = out.reshape(channels, -1).std(axis=1).reshape((channels,) + (1,) * len(shape))
    return (out / np.maximum(sd, 1e-6)).astype(np.float32)


@dataclass(frozen=True)
class TumorSpec:
    """One glioma: where (voxel coordinates), how large (mm), and its compartments' relative sizes."""

    center: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    rotation: np.ndarray  # 3x3
    core_fraction: float  # tumour core radius / whole-tumour radius
    necrosis_fraction: float  # necrotic core radius / whole-tumour radius
    enhancing: bool  # False: lower-grade-like, no enhancing rim


def sample_tumor_spec(
    rng: np.random.Generator, white_matter: np.ndarray, spacing: tuple[float, float, float]
) -> TumorSpec:
    """Draw a tumour centred in white matter (where gliomas mostly grow), nearer the middle than not."""
    step = 2  # a coarse grid is plenty to choose a centre, and 8x cheaper
    wm = white_matter[::step, ::step, ::step]
    grids = np.meshgrid(*[np.arange(n) for n in wm.shape], indexing="ij", sparse=True)
    dist2 = sum(
        ((g * step - (full - 1) / 2.0) * s) ** 2 for g, full, s in zip(grids, white_matter.shape, spacing)
    )
    prob = np.where(wm > 0.6, wm, 0.0) * np.exp(-dist2 / (2 * _CENTER_PRIOR_SD_MM**2))
    prob = prob.ravel().astype(np.float64)
    if prob.sum() <= 0:  # degenerate anatomy (tiny volumes): fall back to any white matter
        prob = wm.ravel().astype(np.float64) + 1e-12
    flat = rng.choice(prob.size, p=prob / prob.sum())
    center = np.array(np.unravel_index(flat, wm.shape), dtype=np.float64) * step + rng.uniform(0, step, 3)

    radius = float(np.clip(_RADIUS_MEDIAN_MM * np.exp(_RADIUS_LOG_SD * rng.standard_normal()), *_RADIUS_RANGE_MM))
    radii = radius * np.exp(0.18 * rng.standard_normal(3))
    enhancing = bool(rng.uniform() >= _NON_ENHANCING_SHARE)
    core = float(rng.uniform(0.35, 0.6))
    necrosis = float(core * rng.uniform(0.35, 0.7))
    return TumorSpec(
        center=tuple(center.tolist()),
        radii_mm=tuple(radii.tolist()),
        rotation=Rotation.random(random_state=rng).as_matrix(),
        core_fraction=core,
        necrosis_fraction=necrosis,
        enhancing=enhancing,
    )


@dataclass
class TumorMaps:
    """Hard BraTS labels plus soft compartment weights (for partial-volume intensities), full volume."""

    labels: np.ndarray  # int16, 0/1/2/4
    edema: np.ndarray  # float32 weights in [0, 1]; edema + rim + core <= 1
    rim: np.ndarray
    core: np.ndarray


def render_tumor(
    rng: np.random.Generator,
    spec: TumorSpec,
    brain: np.ndarray,
    white_matter: np.ndarray,
    spacing: tuple[float, float, float],
) -> TumorMaps:
    """Rasterise `spec` into labels and soft weights, clipped to the brain mask.

    The outline is an ellipsoid's level set perturbed by smooth noise (irregular, lobulated borders); nested
    thresholds of the same level set give edema > enhancing rim > necrotic core. Edema reaches further into
    white matter than into cortex or CSF, as vasogenic edema spreads along fibre tracts. Only a bounding box
    around the tumour is computed.
    """
    shape = brain.shape
    spacing_arr = np.asarray(spacing)
    reach = 1.5 * max(spec.radii_mm) / spacing_arr
    lo = np.maximum(np.floor(np.asarray(spec.center) - reach), 0).astype(int)
    hi = np.minimum(np.ceil(np.asarray(spec.center) + reach) + 1, shape).astype(int)
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    box_shape = tuple(int(b - a) for a, b in zip(lo, hi))

    labels = np.zeros(shape, np.int16)
    weights = [np.zeros(shape, np.float32) for _ in range(3)]
    if min(box_shape) <= 0:
        return TumorMaps(labels, *weights)

    axes = [(np.arange(a, b) - c) * s for a, b, c, s in zip(lo, hi, spec.center, spacing_arr)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    rot = spec.rotation
    radii = spec.radii_mm
    level2 = sum(
        ((rot[0, i] * x + rot[1, i] * y + rot[2, i] * z) / radii[i]) ** 2 for i in range(3)
    )
    level = np.sqrt(level2).astype(np.float32)
    noise = low_frequency_field(rng, box_shape, n_modes=6, channels=2)
    wm = white_matter[box]
    outer = level + 0.25 * noise[0] - _EDEMA_WM_REACH * (wm - 0.5)  # lobulated border, following WM
    inner = level + 0.12 * noise[1] / max(spec.core_fraction, 0.2)  # core border, relatively as irregular

    inside = brain[box] > 0.5
    width = 0.06  # soft edge in level-set units: partial volume at the borders
    whole_w = _sigmoid((1.0 - outer) / width) * inside
    core_w = np.minimum(_sigmoid((spec.core_fraction - inner) / width), whole_w)
    nec_w = np.minimum(_sigmoid((spec.necrosis_fraction - inner) / width), core_w)

    lab = np.zeros(box_shape, np.int16)
    lab[(outer < 1.0) & inside] = EDEMA
    core_mask = (inner < spec.core_fraction) & (lab > 0)
    if spec.enhancing:
        lab[core_mask] = ENHANCING
        lab[(inner < spec.necrosis_fraction) & (lab > 0)] = NECROTIC
    else:
        lab[core_mask] = NECROTIC  # non-enhancing core (BraTS 2020 label 1: NCR/NET)
    labels[box] = lab
    weights[0][box] = whole_w - core_w
    if spec.enhancing:
        weights[1][box] = core_w - nec_w
        weights[2][box] = nec_w
    else:
        weights[2][box] = core_w
    return TumorMaps(labels, *weights)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)
