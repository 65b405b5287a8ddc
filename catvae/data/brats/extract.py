"""BraTS volumes -> labelled 2D PNG slices, ``manifest.csv``, ``discarded.csv`` and ``skipped_subjects.csv``.

The ``brats`` and ``phantom`` dataset kinds (the phantom cohort is written in the BraTS layout); the other kinds
have their own modules, and `catvae.data.kinds` picks one per ``dataset.kind``.

Work is split by subject: each task loads one subject's mask and then one sequence at a time, so memory stays
at a few volumes per worker whatever the cohort size, and subjects run in parallel processes
(`threads` > 1) because decoding gzip and resizing are CPU-bound Python/NumPy work that threads would serialise.

Before any voxel is decoded, every subject's headers are checked (readable, 3D, images shaped like the mask); the
subject jobs then check what only the voxels show (mask labels from the configured set, non-finite voxels,
an intensity range float64 can normalise). Every broken subject of the cohort is collected in this one pass and
`catvae.data.policy` decides: stop listing all of them (``dataset.on_error: stop``, default), or leave them out and
list them in ``skipped_subjects.csv`` (``skip``). Folders that do not hold a complete subject (a missing or
off-naming file, see `catvae.data.brats.discover`) are always skipped and listed, whatever the policy.

PNGs are written into a hidden temporary folder that replaces ``slices/`` only when every subject succeeded, and
``manifest.csv`` is written last and atomically: a crash never leaves a manifest that looks complete.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from catvae.config import config_block, defaults
from catvae.data.brats.discover import SubjectFiles, canonical_modalities, discover_brats, label_set
from catvae.data.images import save_png, square_image
from catvae.data.manifest import DatasetFiles
from catvae.data.brats.normalize import brain_mask, load_volume, normalization_params, normalize_volume
from catvae.data.policy import SkippedSubject, parse_nonfinite, parse_on_error, settle, write_skipped
from catvae.data.publish import Filled, PreparedDataset, publish_slices
from catvae.data.brats.validate import header_problems, mask_problem, nonfinite_count
from catvae.data.brats.slicing import (
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

log = logging.getLogger("catvae.data.brats.extract")


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
    labels: tuple[int, ...]  # the mask's allowed labels
    nonfinite: str  # dataset.nonfinite: reject | zero
    write: bool = True  # False: only validate (the run stops anyway, so no slice is worth writing)


@dataclass
class _SubjectResult:
    """What one subject job returns: its rows, or why the subject is broken; and non-finite voxels set to 0."""

    kept: list[list[Any]]
    discarded: list[list[Any]]
    problem: str | None = None
    nonfinite: dict[str, int] = field(default_factory=dict)  # sequence -> voxels (nonfinite: zero)


def extract_dataset(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    modalities: Iterable[str] | None = None,
    planes: Iterable[str] | None = None,
    selection: Mapping[str, Any] | None = None,
    image_size: int | None = None,
    normalization: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | None = None,
    threads: int = 1,
    brats: Mapping[str, Any] | None = None,
    on_error: str | None = None,
    nonfinite: str | None = None,
) -> PreparedDataset:
    """Cut every usable subject under `root` into labelled slices under `out_dir` (see the module docstring).

    Each keyword is the `dataset.*` config key of the same name; `selection`, `normalization`, `filter` and `brats`
    ({labels, overrides}) are blocks whose missing keys, like every keyword left None, take the schema's defaults.
    `on_error` and `nonfinite` are the policies of `catvae.data.policy`. Raises CatvaeError listing every broken
    subject (``on_error: stop``), when no subject is usable, or when no slice survives the filter (after writing
    `discarded.csv` and `skipped_subjects.csv`, which say why).
    """
    start = time.perf_counter()
    schema = defaults("dataset")
    mods = canonical_modalities(schema["modalities"] if modalities is None else modalities)
    plane_list = tuple(parse_planes(schema["planes"] if planes is None else planes))
    image_size = schema["image_size"] if image_size is None else image_size
    sel = parse_selection(selection)
    rule = parse_filter(filter)
    lower, upper = normalization_params(normalization)
    brats_cfg = config_block(brats, schema["brats"], "dataset.brats")
    configured_labels = _parse_labels(brats_cfg["labels"])
    on_error, nonfinite = parse_on_error(on_error), parse_nonfinite(nonfinite)
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 4:
        raise CatvaeError(f"config key 'dataset.image_size': {image_size!r} must be an integer >= 4")
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise CatvaeError(f"threads: {threads!r} must be an integer >= 1")

    files = DatasetFiles.in_folder(out_dir)
    subjects, skipped = discover_brats(root, mods, brats_cfg["overrides"])
    log.info("found %d complete subject folder(s) under %s, skipped %d", len(subjects), root, len(skipped))
    for s in skipped:
        log.warning("skipped subject %s: %s", s.subject, s.reason)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    skipped_path = files.skipped
    if not subjects:
        write_skipped(skipped_path, skipped)
        raise CatvaeError(
            f"config key 'dataset.root': no usable BraTS subject under {root} ({len(skipped)} skipped, "
            f"see {skipped_path}); expected <root>/<ID>/<ID>_flair.nii.gz ... or <root>/<ID>/<ID>-t2f.nii.gz ..."
        )

    # Cheap pass first: headers and shapes of every file, so a broken cohort is known before any voxel is read.
    broken: list[SkippedSubject] = []
    usable: list[SubjectFiles] = []
    for s in subjects:
        problems = header_problems(s)
        if problems:
            broken.append(SkippedSubject(s.subject, "; ".join(problems)))
        else:
            usable.append(s)
    log.info("headers: %d subject(s) readable and consistent, %d broken", len(usable), len(broken))
    what = f"config key 'dataset.root' ({root})"

    def fill_slices(tmp_slices: Path) -> Filled:
        write = not (broken and on_error == "stop")  # the run will stop: check the voxels, write nothing
        jobs = [
            _SubjectJob(s, tmp_slices, plane_list, sel, rule, int(image_size), lower, upper,
                        label_set(s, configured_labels), nonfinite, write)
            for s in usable
        ]
        results = _run_jobs(jobs, int(threads))
        failed = [SkippedSubject(j.subject.subject, r.problem) for j, r in zip(jobs, results) if r.problem]
        all_skipped = [*skipped, *settle([*broken, *failed], on_error, what, log)]  # raises on stop
        write_skipped(skipped_path, all_skipped)
        good = [(j, r) for j, r in zip(jobs, results) if not r.problem]
        if not good:
            raise CatvaeError(f"{what}: no usable BraTS subject left ({len(all_skipped)} skipped, see {skipped_path})")
        nonfinite_zeroed: dict[str, int] = {}
        for job, result in good:
            for modality, count in result.nonfinite.items():
                nonfinite_zeroed[f"{job.subject.subject}/{modality}"] = count
                log.warning("subject %s: %s %s has %d non-finite voxel(s), used as 0 (dataset.nonfinite: zero)",
                            job.subject.subject, modality, job.subject.images[modality].name, count)
        return Filled(
            rows=[row for _, r in good for row in r.kept],
            discarded=[row for _, r in good for row in r.discarded],
            skipped=all_skipped,
            subjects_used=len(good),
            nonfinite_zeroed=nonfinite_zeroed,
        )

    summary = publish_slices(
        files,
        fill_slices,
        started=start,
        classes=(NO_TUMOR, TUMOR),
        planes=plane_list,
        empty_message=lambda n, reasons, path: (
            f"config key 'dataset.filter': no slice left after filtering ({n} discarded: {reasons}); see {path}"
        ),
    )
    _log_summary(summary)
    return summary


def extract_subject(job: _SubjectJob) -> _SubjectResult:
    """Manifest rows and discarded rows of one subject, writing its PNGs under `job.slices_dir`; or, for a broken
    subject, every reason the voxels give (mask labels, non-finite voxels, unreadable data, a range too wide to
    normalise), with its PNGs removed again.

    Holds the mask (briefly) and one sequence at a time; labels come from the mask, so every sequence of a
    subject gets the same labels for the same slice. Volumes are read as float64 (see `load_volume`).
    """
    subject = job.subject
    problems: list[str] = []
    kept: list[list[Any]] = []
    discarded: list[list[Any]] = []
    zeroed: dict[str, int] = {}
    labels: dict[tuple[str, int], tuple[str, int]] = {}
    try:
        seg = load_volume(subject.seg)
    except CatvaeError as exc:
        return _SubjectResult([], [], str(exc))
    why = mask_problem(seg, job.labels)
    if why is not None:
        problems.append(f"{subject.seg.name}: {why}")
    shape = seg.shape
    candidates = candidate_slices(shape, job.planes, job.selection)
    if not problems:
        labels = {c: label_slice(take_slice(seg, *c)) for c in candidates}
    del seg
    for modality, path in subject.images.items():
        try:
            raw = load_volume(path)
        except CatvaeError as exc:
            problems.append(str(exc))
            continue
        if raw.shape != shape:  # the headers agreed, so only a file changed since then gets here
            problems.append(f"{path.name} has shape {raw.shape} but the mask {subject.seg.name} has {shape}")
            continue
        nan, inf = nonfinite_count(raw)
        if nan + inf:
            if job.nonfinite == "reject":
                problems.append(f"{path.name}: {nan + inf} non-finite voxel(s) ({nan} NaN, {inf} Inf); "
                                "dataset.nonfinite: zero would use them as 0")
                continue
            zeroed[modality] = nan + inf
        if problems or not job.write:
            continue  # still read the other volumes: the report should hold all of this subject's reasons
        mask = brain_mask(raw)  # never holds a non-finite voxel, so those come out as 0
        try:
            volume = normalize_volume(raw, job.lower, job.upper, mask=mask)
        except CatvaeError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
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
    if problems:
        for row in kept:  # PNGs of sequences that were fine before a later one failed
            (job.slices_dir / row[4] / Path(row[-1]).name).unlink(missing_ok=True)
        return _SubjectResult([], [], "; ".join(problems))
    return _SubjectResult(kept, discarded, None, zeroed)


def _run_jobs(jobs: list[_SubjectJob], threads: int) -> list[_SubjectResult]:
    """Run subject jobs in-process (threads=1) or in a process pool; results come back in subject order.

    A broken subject is a result, not an exception, so one bad file never ends the pass over the others.
    """
    results: list[_SubjectResult | None] = [None] * len(jobs)
    n = len(jobs)
    done = 0

    def _progress(i: int, seconds: float) -> None:
        result = results[i]
        assert result is not None
        if result.problem:
            log.warning("subject %d/%d %s: broken: %s", done, n, jobs[i].subject.subject, result.problem)
        else:
            log.info("subject %d/%d %s: %d slice(s) kept, %d discarded (%.2f s)",
                     done, n, jobs[i].subject.subject, len(result.kept), len(result.discarded), seconds)

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
    return [r for r in results if r is not None]


def _parse_labels(labels: Any) -> tuple[int, ...] | None:
    """``dataset.brats.labels``: None (by the files' naming) or a non-empty list of integers >= 0."""
    if labels is None:
        return None
    if (not isinstance(labels, (list, tuple)) or not labels
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in labels)):
        raise CatvaeError(f"config key 'dataset.brats.labels': {labels!r} must be a non-empty list of integers >= 0")
    return tuple(sorted({int(v) for v in labels}))


def _log_summary(summary: PreparedDataset) -> None:
    per_class = "; ".join(
        f"{cls} {sum(planes.values())} ({', '.join(f'{p} {n}' for p, n in planes.items())})"
        for cls, planes in summary.plane_counts.items()
    )
    log.info(
        "extraction summary: %d subject(s) used, %d skipped; %d slice(s) kept: %s; %d discarded%s; %.1f s",
        summary.subjects_used, summary.subjects_skipped, summary.kept, per_class, summary.discarded_count,
        "".join(f", {n} {reason}" for reason, n in sorted(summary.discard_reasons.items())), summary.seconds,
    )


__all__ = ["extract_dataset", "extract_subject"]
