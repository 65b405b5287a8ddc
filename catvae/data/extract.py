"""BraTS volumes -> labelled 2D PNG slices, ``manifest.csv``, ``discarded.csv`` and ``skipped_subjects.csv``.

Work is split by subject: each task loads one subject's mask and then one sequence at a time, so memory stays
at a few volumes per worker whatever the cohort size, and subjects run in parallel processes
(`threads` > 1) because decoding gzip and resizing are CPU-bound Python/NumPy work that threads would serialise.

PNGs are written into a hidden temporary folder that replaces ``slices/`` only when every subject succeeded, and
``manifest.csv`` is written last and atomically: a crash never leaves a manifest that looks complete.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
from skimage.transform import resize

from catvae.data.brats import SubjectFiles, canonical_modalities, discover_brats
from catvae.data.images import save_png
from catvae.data.publish import publish_slices
from catvae.data.normalize import brain_mask, load_volume, normalization_params, normalize_volume
from catvae.data.slicing import (
    NO_TUMOR,
    TUMOR,
    Selection,
    SliceFilter,
    candidate_slices,
    discard_reason,
    label_slice,
    parse_filter,
    parse_planes,
    parse_selection,
    take_slice,
)
from catvae.errors import CatvaeError
from catvae.io import write_csv

log = logging.getLogger("catvae.data.extract")

MANIFEST_COLUMNS = ["subject", "modality", "plane", "slice_index", "class", "tumor_voxels", "brain_fraction", "path"]
DISCARDED_COLUMNS = ["subject", "modality", "plane", "slice_index", "class", "reason", "value"]
SKIPPED_COLUMNS = ["subject", "reason"]
DEFAULT_PLANES = ("axial", "sagittal", "coronal")


@dataclass
class ExtractionSummary:
    """What one extraction produced: file locations and the counts a researcher checks first."""

    out_dir: Path
    manifest: Path
    discarded: Path
    skipped: Path
    subjects_used: int
    subjects_skipped: int
    kept: int
    discarded_count: int
    counts: dict[str, dict[str, int]]  # class -> plane -> kept slices
    discard_reasons: dict[str, int]
    seconds: float
    skipped_subjects: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (paths as strings)."""
        return {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class _SubjectJob:
    """Everything one worker needs for one subject (small and picklable: paths and settings, no arrays)."""

    subject: SubjectFiles
    slices_dir: Path
    planes: tuple[str, ...]
    selection: Selection
    rule: SliceFilter
    image_size: int
    lower: float
    upper: float


def extract_dataset(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    modalities: Iterable[str] = ("flair",),
    planes: Iterable[str] = DEFAULT_PLANES,
    selection: Mapping[str, Any] | None = None,
    image_size: int = 128,
    normalization: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | None = None,
    threads: int = 1,
) -> ExtractionSummary:
    """Cut every usable subject under `root` into labelled slices under `out_dir` (see the module docstring).

    `selection`, `normalization` and `filter` are the `dataset.*` config blocks of the same names; missing keys
    take the defaults of `catvae.data.slicing` / `catvae.data.normalize`. Raises CatvaeError when no subject is
    usable or no slice survives the filter (after writing `discarded.csv` and `skipped_subjects.csv`, which say why).
    """
    start = time.perf_counter()
    mods = canonical_modalities(modalities)
    plane_list = tuple(parse_planes(planes))
    sel = parse_selection(selection)
    rule = parse_filter(filter)
    lower, upper = normalization_params(normalization)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 4:
        raise CatvaeError(f"config key 'dataset.image_size': {image_size!r} must be an integer >= 4")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise CatvaeError(f"threads: {threads!r} must be an integer >= 1")

    out = Path(out_dir)
    subjects, skipped = discover_brats(root, mods)
    log.info("found %d usable subject(s) under %s, skipped %d", len(subjects), root, len(skipped))
    for s in skipped:
        log.warning("skipped subject %s: %s", s.subject, s.reason)
    out.mkdir(parents=True, exist_ok=True)
    skipped_path = out / "skipped_subjects.csv"
    write_csv(skipped_path, pd.DataFrame([(s.subject, s.reason) for s in skipped], columns=SKIPPED_COLUMNS))
    if not subjects:
        raise CatvaeError(
            f"config key 'dataset.root': no usable BraTS subject under {root} ({len(skipped)} skipped, "
            f"see {skipped_path}); expected <root>/<ID>/<ID>_flair.nii.gz ... or <root>/<ID>/<ID>-t2f.nii.gz ..."
        )

    def fill_slices(tmp_slices: Path) -> tuple[list, list]:
        jobs = [
            _SubjectJob(s, tmp_slices, plane_list, sel, rule, int(image_size), lower, upper) for s in subjects
        ]
        return _run_jobs(jobs, int(threads))

    published = publish_slices(
        out,
        fill_slices,
        manifest_columns=MANIFEST_COLUMNS,
        discarded_columns=DISCARDED_COLUMNS,
        empty_message=lambda n, reasons, path: (
            f"config key 'dataset.filter': no slice left after filtering ({n} discarded: {reasons}); see {path}"
        ),
    )
    manifest, discarded, reasons = published.manifest, published.discarded, published.reasons
    manifest_path, discarded_path = published.manifest_path, published.discarded_path

    summary = ExtractionSummary(
        out_dir=out,
        manifest=manifest_path,
        discarded=discarded_path,
        skipped=skipped_path,
        subjects_used=len(subjects),
        subjects_skipped=len(skipped),
        kept=len(manifest),
        discarded_count=len(discarded),
        counts=_counts(manifest, plane_list),
        discard_reasons=reasons,
        seconds=round(time.perf_counter() - start, 3),
        skipped_subjects=[s.subject for s in skipped],
    )
    _log_summary(summary)
    return summary


def square_image(image: np.ndarray, image_size: int) -> np.ndarray:
    """Zero-pad a 2D [0, 1] slice to a centred square, then resize it to `image_size` (aspect ratio kept)."""
    h, w = image.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    padded = np.pad(image, ((top, side - h - top), (left, side - w - left)))
    if side != image_size:
        padded = resize(padded, (image_size, image_size), order=1, anti_aliasing=side > image_size,
                        preserve_range=True)
    return np.clip(padded, 0.0, 1.0)


def extract_subject(job: _SubjectJob) -> tuple[list[list[Any]], list[list[Any]]]:
    """Manifest rows and discarded rows of one subject, writing its PNGs under `job.slices_dir`.

    Holds the mask (briefly) and one sequence at a time; labels come from the mask, so every sequence of a
    subject gets the same labels for the same slice.
    """
    subject = job.subject
    seg = load_volume(subject.seg)
    shape = seg.shape
    candidates = candidate_slices(shape, job.planes, job.selection)
    labels = {c: label_slice(take_slice(seg, *c)) for c in candidates}
    del seg
    kept: list[list[Any]] = []
    discarded: list[list[Any]] = []
    for modality, path in subject.images.items():
        raw = load_volume(path)
        if raw.shape != shape:
            raise CatvaeError(f"NIfTI volume {path} has shape {raw.shape} but its mask {subject.seg} has {shape}")
        mask = brain_mask(raw)
        volume = normalize_volume(raw, job.lower, job.upper, mask=mask)
        del raw
        for plane, index in candidates:
            cls, tumor_voxels = labels[(plane, index)]
            image, brain = take_slice(volume, plane, index), take_slice(mask, plane, index)
            why = discard_reason(image, brain, job.rule)
            if why is not None:
                discarded.append([subject.subject, modality, plane, index, cls, why[0], round(why[1], 6)])
                continue
            rel = f"slices/{cls}/{subject.subject}_{modality}_{plane}_{index:03d}.png"
            save_png(job.slices_dir / cls / Path(rel).name, square_image(image, job.image_size))
            fraction = float(np.count_nonzero(brain)) / brain.size
            kept.append([subject.subject, modality, plane, index, cls, tumor_voxels, round(fraction, 6), rel])
    return kept, discarded


def _run_jobs(jobs: list[_SubjectJob], threads: int) -> tuple[list[list[Any]], list[list[Any]]]:
    """Run subject jobs in-process (threads=1) or in a process pool; rows come back in subject order."""
    results: list[tuple[list, list] | None] = [None] * len(jobs)
    n = len(jobs)
    done = 0

    def _progress(i: int, seconds: float) -> None:
        kept, dropped = results[i]  # type: ignore[misc]
        log.info("subject %d/%d %s: %d slice(s) kept, %d discarded (%.2f s)",
                 done, n, jobs[i].subject.subject, len(kept), len(dropped), seconds)

    if threads == 1 or n == 1:
        for i, job in enumerate(jobs):
            t0 = time.perf_counter()
            results[i] = extract_subject(job)
            done += 1
            _progress(i, time.perf_counter() - t0)
    else:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=min(threads, n)) as pool:
            futures = {pool.submit(extract_subject, job): i for i, job in enumerate(jobs)}
            try:
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    done += 1
                    _progress(i, time.perf_counter() - t0)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    kept_rows = [row for r in results for row in r[0]]  # type: ignore[index]
    discarded_rows = [row for r in results for row in r[1]]  # type: ignore[index]
    return kept_rows, discarded_rows


def _counts(manifest: pd.DataFrame, planes: tuple[str, ...]) -> dict[str, dict[str, int]]:
    table = pd.crosstab(manifest["class"], manifest["plane"])
    return {
        cls: {p: int(table.at[cls, p]) if cls in table.index and p in table.columns else 0 for p in planes}
        for cls in (NO_TUMOR, TUMOR)
    }


def _log_summary(summary: ExtractionSummary) -> None:
    per_class = "; ".join(
        f"{cls} {sum(planes.values())} ({', '.join(f'{p} {n}' for p, n in planes.items())})"
        for cls, planes in summary.counts.items()
    )
    log.info(
        "extraction summary: %d subject(s) used, %d skipped; %d slice(s) kept: %s; %d discarded%s; %.1f s",
        summary.subjects_used, summary.subjects_skipped, summary.kept, per_class, summary.discarded_count,
        "".join(f", {n} {reason}" for reason, n in sorted(summary.discard_reasons.items())), summary.seconds,
    )


__all__ = [
    "DISCARDED_COLUMNS",
    "MANIFEST_COLUMNS",
    "SKIPPED_COLUMNS",
    "ExtractionSummary",
    "extract_dataset",
    "extract_subject",
    "square_image",
]
