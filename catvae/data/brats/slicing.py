"""Which 2D slices of a volume become images, how each is labelled, and which are too empty to keep.

Axis convention (BraTS arrays as nibabel returns them, RAS-like): sagittal = axis 0, coronal = axis 1,
axial = axis 2. Selection modes (config `dataset.selection: {mode, k, stride}`):

- ``center``: `k` slices per plane around the centre of the volume, `stride` slices apart. ``k: 1`` is our
  reading of the paper: one slice per plane, 3 per subject for 3 planes, from its 1,107 images = 3 x 369 BraTS 2020
  subjects (the paper gives neither the rule nor a subject count).
- ``stride``: every `stride`-th slice, on a grid through the centre slice (so it contains ``center``'s k=1 pick).
- ``all``: every slice.

A slice is ``Tumor`` when its mask has any voxel > 0, else ``NoTumor``. The filter (config
`dataset.filter: {min_brain_fraction, min_std}`) drops slices that are mostly background or of (near-)constant
intensity, with a reason and the measured value, so the researcher can see what was thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from catvae.config import config_block, defaults, schema_enum
from catvae.errors import CatvaeError

#: plane -> array axis of a BraTS (RAS-like) volume
PLANE_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
TUMOR, NO_TUMOR = "Tumor", "NoTumor"
SELECTION_MODES = schema_enum("dataset", "selection", "mode")


@dataclass(frozen=True)
class Selection:
    """A validated `dataset.selection` block (`parse_selection` fills the schema's defaults)."""

    mode: str
    k: int
    stride: int


@dataclass(frozen=True)
class SliceFilter:
    """A validated `dataset.filter` block (`parse_filter` fills the schema's defaults)."""

    min_brain_fraction: float
    min_std: float


def parse_planes(planes: Iterable[str]) -> list[str]:
    """Validated list of plane names (config `dataset.planes`), order kept."""
    out: list[str] = []
    for plane in planes:
        if plane not in PLANE_AXES:
            raise CatvaeError(f"config key 'dataset.planes': unknown plane {plane!r}; use {list(PLANE_AXES)}")
        if plane in out:
            raise CatvaeError(f"config key 'dataset.planes': plane {plane!r} is given twice")
        out.append(plane)
    if not out:
        raise CatvaeError("config key 'dataset.planes': at least one plane is needed")
    return out


def parse_selection(selection: Mapping[str, Any] | Selection | None) -> Selection:
    """Validate the `dataset.selection` block ({mode: center|all|stride, k: int >= 1, stride: int >= 1})."""
    if isinstance(selection, Selection):
        return selection
    cfg = config_block(selection, defaults("dataset", "selection"), "dataset.selection")
    if cfg["mode"] not in SELECTION_MODES:
        raise CatvaeError(f"config key 'dataset.selection.mode': {cfg['mode']!r} is not one of {list(SELECTION_MODES)}")
    for key in ("k", "stride"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise CatvaeError(f"config key 'dataset.selection.{key}': {value!r} must be an integer >= 1")
    return Selection(str(cfg["mode"]), int(cfg["k"]), int(cfg["stride"]))


def parse_filter(filter: Mapping[str, Any] | SliceFilter | None) -> SliceFilter:
    """Validate the `dataset.filter` block ({min_brain_fraction: [0, 1], min_std: >= 0})."""
    if isinstance(filter, SliceFilter):
        return filter
    cfg = config_block(filter, defaults("dataset", "filter"), "dataset.filter")
    try:
        fraction, std = float(cfg["min_brain_fraction"]), float(cfg["min_std"])
    except (TypeError, ValueError) as exc:
        raise CatvaeError(f"config key 'dataset.filter': thresholds must be numbers ({exc})") from exc
    if not 0.0 <= fraction <= 1.0:
        raise CatvaeError(f"config key 'dataset.filter.min_brain_fraction': {fraction} is not in [0, 1]")
    if not std >= 0.0:
        raise CatvaeError(f"config key 'dataset.filter.min_std': {std} must be >= 0")
    return SliceFilter(fraction, std)


def slice_indices(length: int, selection: Selection) -> list[int]:
    """Indices (ascending) picked along an axis of `length` slices."""
    if length < 1:
        return []
    centre = length // 2
    if selection.mode == "all":
        return list(range(length))
    if selection.mode == "stride":
        return list(range(centre % selection.stride, length, selection.stride))
    # center: k slices, stride apart, centred on the middle slice (for even k one more below the centre)
    offsets = (np.arange(selection.k) - selection.k // 2) * selection.stride
    return sorted({int(centre + o) for o in offsets if 0 <= centre + o < length})


def candidate_slices(shape: Sequence[int], planes: Sequence[str], selection: Selection) -> list[tuple[str, int]]:
    """(plane, index) of every slice the selection picks in a volume of `shape`, planes in the given order."""
    if len(shape) != 3:
        raise CatvaeError(f"a 3D volume is needed, got shape {tuple(shape)}")
    return [(plane, i) for plane in planes for i in slice_indices(int(shape[PLANE_AXES[plane]]), selection)]


def take_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """The 2D slice, rotated 90 degrees so the array's second in-plane axis points up (anterior/superior up).

    A view, not a copy: `np.take` would first copy the whole volume (nibabel's arrays are Fortran-ordered), which
    made extracting every slice of a 240x240x155 volume about 40 times slower.
    """
    key: list[Any] = [slice(None)] * volume.ndim
    key[PLANE_AXES[plane]] = index
    return np.rot90(volume[tuple(key)])


def label_slice(mask_slice: np.ndarray) -> tuple[str, int]:
    """(class, number of tumour voxels): Tumor when any mask voxel is > 0."""
    tumor_voxels = int(np.count_nonzero(np.asarray(mask_slice) > 0))
    return (TUMOR if tumor_voxels > 0 else NO_TUMOR), tumor_voxels


def brain_fraction(brain_slice: np.ndarray) -> float:
    """Share of the slice's pixels that are brain (non-background)."""
    return float(np.count_nonzero(brain_slice)) / float(brain_slice.size) if brain_slice.size else 0.0


def discard_reason(
    image_slice: np.ndarray, brain_slice: np.ndarray, rule: SliceFilter
) -> tuple[str, float] | None:
    """(reason, measured value) if the slice is non-informative, else None.

    Reasons: ``brain_fraction<T`` (too little brain in the slice) and ``std<T`` (standard deviation of the
    normalised brain pixels below T: a constant or nearly constant slice teaches a generator nothing);
    ``brain_fraction=0`` and ``std=0`` where a threshold of 0 would otherwise keep an empty or flat slice.
    """
    fraction = brain_fraction(brain_slice)
    if fraction < rule.min_brain_fraction:
        return f"brain_fraction<{rule.min_brain_fraction:g}", fraction
    if fraction == 0.0:  # thresholds of 0 still never keep an empty slice
        return "brain_fraction=0", fraction
    std = float(np.std(image_slice[brain_slice]))
    if std < rule.min_std:
        return f"std<{rule.min_std:g}", std
    if std == 0.0:
        return "std=0", std
    return None
