"""Publishing a prepared dataset atomically (slices folder, discarded.csv, then manifest.csv last), and the one
summary every dataset kind returns.

Shared by every dataset kind (BraTS extraction, class folders, MedMNIST), so a crash in any of them never leaves a
manifest that looks complete, stale images of an earlier run never mix with a new manifest, and the CLI, the
workflow's log and the tests read one summary type whatever the kind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from catvae.data.manifest import DISCARDED_COLUMNS, MANIFEST_COLUMNS, DatasetFiles
from catvae.data.policy import SkippedSubject, settle, write_skipped
from catvae.errors import CatvaeError
from catvae.io import write_csv

Rows = list[list[Any]]


@dataclass
class PreparedDataset:
    """What one dataset preparation produced, whatever the kind: file locations and the counts a researcher checks
    first. Fields a kind has no use for stay empty (``plane_counts`` outside BraTS, ``partitions`` outside MedMNIST,
    ``nonfinite_zeroed`` outside BraTS with ``dataset.nonfinite: zero``)."""

    out_dir: Path
    manifest: Path
    discarded: Path
    skipped: Path
    kept: int
    discarded_count: int
    counts: dict[str, int]  # class -> kept slices / images
    discard_reasons: dict[str, int]
    seconds: float
    subjects_used: int  # BraTS: subjects that passed every check; other kinds: distinct `subject` ids kept
    subjects_skipped: int  # rows of skipped_subjects.csv (subjects, images or MedMNIST files left out)
    skipped_subjects: list[str] = field(default_factory=list)  # their ids, sorted
    plane_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> plane -> kept slices (BraTS)
    partitions: dict[str, int] = field(default_factory=dict)  # preset partition -> images (MedMNIST)
    nonfinite_zeroed: dict[str, int] = field(default_factory=dict)  # "<subject>/<sequence>" -> voxels set to 0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (paths as strings)."""
        return {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass
class Filled:
    """What a kind's fill step found: manifest rows, discarded rows, and every unit left out (already settled by
    `catvae.data.policy` and written to ``skipped_subjects.csv``)."""

    rows: Rows
    discarded: Rows
    skipped: list[SkippedSubject]
    subjects_used: int | None = None  # None: the distinct `subject` ids of the manifest
    nonfinite_zeroed: dict[str, int] = field(default_factory=dict)


def publish_slices(
    files: DatasetFiles,
    fill_slices: Callable[[Path], Filled],
    *,
    empty_message: Callable[[int, dict[str, int], Path], str],
    started: float,
    extra_columns: Iterable[str] = (),
    classes: Sequence[str] | None = None,
    planes: Sequence[str] = (),
) -> PreparedDataset:
    """Run `fill_slices(tmp_dir)`, publish its rows, and summarise them.

    A `manifest.csv` of an earlier run is removed first. PNGs go into a hidden temporary folder that replaces
    `slices/` only once every image is written; `discarded.csv` is written before an empty result raises
    CatvaeError(`empty_message(n_discarded, reasons, discarded_path)`), so it says why nothing is left;
    `manifest.csv` (the columns of `catvae.data.manifest` plus `extra_columns`) is written last.

    The summary counts kept images per class in `classes` order (every one, zeros included) or, without `classes`,
    per class found; per class and plane when `planes` are given; per preset partition when the manifest has a
    `partition` column. `seconds` runs from `started` (a `time.perf_counter()` value).
    """
    out_dir = files.manifest.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    files.manifest.unlink(missing_ok=True)  # an earlier run's: never left beside this run's reports
    tmp_slices = Path(tempfile.mkdtemp(prefix=".slices.", dir=out_dir))
    try:
        filled = fill_slices(tmp_slices)
        manifest = pd.DataFrame(filled.rows, columns=MANIFEST_COLUMNS + list(extra_columns))
        discarded = pd.DataFrame(filled.discarded, columns=DISCARDED_COLUMNS)
        write_csv(files.discarded, discarded)
        reasons = dict(Counter(str(r).split(":")[0] for r in discarded["reason"]))
        if manifest.empty:
            raise CatvaeError(empty_message(len(discarded), reasons, files.discarded))
        if files.slices.exists():
            shutil.rmtree(files.slices)
        os.replace(tmp_slices, files.slices)
        write_csv(files.manifest, manifest)
    finally:
        if tmp_slices.exists():
            shutil.rmtree(tmp_slices, ignore_errors=True)
    return PreparedDataset(
        out_dir=out_dir,
        manifest=files.manifest,
        discarded=files.discarded,
        skipped=files.skipped,
        kept=len(manifest),
        discarded_count=len(discarded),
        counts=_counts(manifest["class"], classes),
        discard_reasons=reasons,
        seconds=round(time.perf_counter() - started, 3),
        subjects_used=int(manifest["subject"].nunique()) if filled.subjects_used is None else filled.subjects_used,
        subjects_skipped=len(filled.skipped),
        skipped_subjects=sorted(s.subject for s in filled.skipped),
        plane_counts={
            cls: _counts(manifest.loc[manifest["class"] == cls, "plane"], planes) for cls in (classes or ())
        } if planes else {},
        partitions=_counts(manifest["partition"]) if "partition" in manifest.columns else {},
        nonfinite_zeroed=dict(filled.nonfinite_zeroed),
    )


def publish_images(
    files: DatasetFiles,
    fill_images: Callable[[Path], tuple[Rows, Rows, list[SkippedSubject]]],
    *,
    what: str,
    logger: logging.Logger,
    on_error: str,
    skipped: Iterable[SkippedSubject] = (),
    extra_columns: Iterable[str] = (),
    unit: str = "image",
) -> PreparedDataset:
    """`publish_slices` for the kinds that convert images one by one (class folders, MedMNIST).

    `fill_images(tmp_slices_dir)` -> (manifest rows, discarded rows, broken units); the broken units (unreadable
    images ...) found in that one pass go through `catvae.data.policy.settle`: with ``on_error: stop`` one
    CatvaeError lists them all and nothing is published; with ``skip`` they join `skipped` (units left out earlier,
    e.g. MedMNIST files) in ``skipped_subjects.csv``, which is written before an empty result raises (CatvaeError
    naming `what`), so it says why.
    """
    started = time.perf_counter()
    all_skipped = list(skipped)

    def fill_and_settle(tmp_slices: Path) -> Filled:
        rows, discarded, broken = fill_images(tmp_slices)
        all_skipped.extend(settle(broken, on_error, what, logger, unit=unit))  # raises on stop
        write_skipped(files.skipped, all_skipped)
        return Filled(rows, discarded, all_skipped)

    summary = publish_slices(
        files,
        fill_and_settle,
        extra_columns=extra_columns,
        started=started,
        empty_message=lambda n, reasons, path: (
            f"{what}: no usable image ({n} discarded: {reasons}; {len(all_skipped)} skipped); see {path} "
            f"and {files.skipped}"
        ),
    )
    logger.info(
        "kept %d image(s) in %s: %s; discarded %d %s; %.1f s",
        summary.kept, summary.out_dir, ", ".join(f"{c} {n}" for c, n in summary.counts.items()),
        summary.discarded_count, summary.discard_reasons or "", summary.seconds,
    )
    return summary


def _counts(values: pd.Series, order: Sequence[str] | None = None) -> dict[str, int]:
    """Value -> count: for every value of `order` (zeros included), else for each value found."""
    if order is None:
        return {str(k): int(v) for k, v in values.value_counts(sort=False).items()}
    found = values.value_counts()
    return {str(k): int(found.get(k, 0)) for k in order}


__all__ = ["Filled", "PreparedDataset", "publish_images", "publish_slices"]
