"""Checks that keep broken BraTS volumes from becoming wrong labels or silent black pixels.

Three kinds of check, from cheap to full:

- `header_problems`: every file of a subject has a readable 3D header and the images and mask share one shape
  (headers only, no voxel decoded, so a whole cohort is checked in seconds before any extraction starts);
- `mask_problem`: a mask holds only integer values from the configured label set; anything else (negative,
  fractional, NaN, another dataset's labels) would make ``mask > 0`` label slices wrongly;
- `nonfinite_count`: NaN/Inf voxels in an image, which normalisation would otherwise turn into black.

Each returns reason strings (empty when fine); what happens to a subject with a reason is `catvae.data.policy`'s job.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from catvae.data.brats.discover import OVERRIDES_KEY, SubjectFiles
from catvae.data.brats.normalize import volume_shape
from catvae.errors import CatvaeError

_MAX_LISTED = 8  # offending mask values shown in a reason


def header_problems(subject: SubjectFiles) -> list[str]:
    """Why `subject`'s files cannot be used, from their headers alone: missing override, unreadable or non-3D
    file, images whose shape differs from the mask's."""
    problems: list[str] = []
    shapes: dict[str, tuple[int, int, int]] = {}
    for name, path in [("seg", subject.seg), *subject.images.items()]:
        if name in subject.overrides and not path.is_file():
            problems.append(
                f"override file {subject.overrides[name]!r} not found in {path.parent} "
                f"(config key '{OVERRIDES_KEY}.{subject.subject}.{name}')"
            )
            continue
        try:
            shapes[name] = volume_shape(path)
        except CatvaeError as exc:
            problems.append(str(exc))
    if "seg" in shapes:
        for name, shape in shapes.items():
            if shape != shapes["seg"]:
                problems.append(
                    f"{subject.images[name].name} has shape {shape} but the mask {subject.seg.name} has {shapes['seg']}"
                )
    return problems


def mask_problem(mask: np.ndarray, labels: Sequence[int]) -> str | None:
    """``mask labels not in {0,1,2,4}: -1, 0.5`` when `mask` holds any value outside `labels` (fractional values,
    NaN and Inf included), else None."""
    allowed = np.asarray(sorted(labels), dtype=np.float64)
    bad = ~np.isin(mask, allowed)
    if not bad.any():
        return None
    values = np.unique(mask[bad])  # NaN sorts last
    shown = ", ".join(f"{v:g}" for v in values[:_MAX_LISTED])
    more = f" ... ({len(values)} distinct values)" if len(values) > _MAX_LISTED else ""
    label_text = ",".join(str(int(v)) for v in allowed)
    return f"mask labels not in {{{label_text}}}: {shown}{more} ({int(bad.sum())} voxel(s); dataset.brats.labels)"


def nonfinite_count(volume: np.ndarray) -> tuple[int, int]:
    """(NaN voxels, +/-Inf voxels) of `volume`."""
    nan = int(np.count_nonzero(np.isnan(volume)))
    inf = int(np.count_nonzero(np.isinf(volume)))
    return nan, inf


__all__ = ["header_problems", "mask_problem", "nonfinite_count"]
