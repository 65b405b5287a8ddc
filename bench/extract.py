"""Benchmark BraTS slice extraction against its floor: reading and decoding the same NIfTI files.

Writes a cohort of full-size `.nii.gz` subjects (the embedded phantom when `catvae.data.brats.phantom` is there,
else synthetic brain-like int16 volumes), then prints seconds per subject for

- floor: nibabel load + gzip decode of the files extraction reads (the mask and each requested sequence),
- extraction with the paper rule (center, k=1: 3 slices per subject),
- extraction of every slice (`all`),

and each extraction's ratio to the floor. Everything else extraction does (normalisation, labelling, the
filter, resizing, PNG encoding) is the overhead above that floor.

    .venv/bin/python bench/extract.py --subjects 3 --workdir /tmp/bench_extract
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catvae.data.brats.discover import discover_brats  # noqa: E402
from catvae.data.brats.extract import extract_dataset  # noqa: E402


def write_cohort(out_dir: Path, n_subjects: int, shape: tuple[int, int, int], seed: int) -> str:
    """Write the cohort (reused when `out_dir` already holds `n_subjects` subjects); returns its source."""
    subjects, _ = discover_brats(out_dir, ["flair"]) if out_dir.is_dir() else ([], [])
    if len(subjects) == n_subjects and subjects and _shape_of(subjects[0].seg) == shape:
        return "reused"
    try:
        from catvae.data.brats.phantom import write_phantom_cohort
    except ImportError:
        _write_synthetic_cohort(out_dir, n_subjects, shape, seed)
        return "synthetic"
    write_phantom_cohort(out_dir, n_subjects, shape, seed)
    return "phantom"


def _shape_of(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in nib.load(str(path)).shape)


def _write_synthetic_cohort(out_dir: Path, n_subjects: int, shape: tuple[int, int, int], seed: int) -> None:
    """Ellipsoid brains with smooth texture and noise, and a spherical tumour, in the BraTS 2020 naming."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    inside = (grid[0] / 0.7) ** 2 + (grid[1] / 0.85) ** 2 + (grid[2] / 0.75) ** 2 <= 1
    for s in range(n_subjects):
        sid = f"BraTS20_Training_{s + 1:03d}"
        folder = out_dir / sid
        folder.mkdir(parents=True, exist_ok=True)
        centre = rng.uniform(-0.4, 0.4, 3)
        tumour = sum((g - c) ** 2 for g, c in zip(grid, centre)) <= rng.uniform(0.02, 0.06)
        seg = np.where(tumour & inside, 2, 0).astype(np.uint8)
        nib.save(nib.Nifti1Image(seg, np.eye(4)), str(folder / f"{sid}_seg.nii.gz"))
        for seq in ("flair", "t1", "t1ce", "t2"):
            texture = 400 + 150 * np.sin(6 * grid[0] + rng.uniform(0, 6)) * np.cos(5 * grid[1])
            vol = texture + rng.normal(0, 40, shape) + 300 * tumour
            vol = np.where(inside, np.clip(vol, 1, 4000), 0).astype(np.int16)
            nib.save(nib.Nifti1Image(vol, np.eye(4)), str(folder / f"{sid}_{seq}.nii.gz"))


def cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes (robust to other load on a shared machine)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def floor_read(root: Path, modalities: list[str]) -> None:
    """Load and decode the mask and the requested sequences of every subject, one after another."""
    subjects, _ = discover_brats(root, modalities)
    for subject in subjects:
        for path in [subject.seg, *subject.images.values()]:
            np.asanyarray(nib.load(str(path)).dataobj)


def timed(fn, *args, **kwargs):
    """(result, wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - wall, cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--shape", type=int, nargs=3, default=[240, 240, 155])
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--modalities", nargs="+", default=["flair"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_extract_"))
    cohort = workdir / "cohort"
    t0 = time.perf_counter()
    source = write_cohort(cohort, args.subjects, tuple(args.shape), args.seed)
    print(f"cohort: {args.subjects} subject(s) of {tuple(args.shape)} ({source}, {time.perf_counter() - t0:.1f} s) "
          f"in {cohort}")

    n = args.subjects
    _, wall, cpu = timed(floor_read, cohort, args.modalities)
    rows = [("floor: nibabel read + decode", wall / n, cpu / n, None, None)]
    common = dict(modalities=args.modalities, planes=["axial", "sagittal", "coronal"], image_size=args.image_size,
                  normalization=None, filter=None, threads=args.threads)
    for label, selection in [("extract center k=1 (paper)", {"mode": "center", "k": 1}),
                             ("extract all slices", {"mode": "all"})]:
        out = workdir / f"out_{selection['mode']}"
        summary, wall, cpu = timed(extract_dataset, cohort, out, selection=selection, **common)
        rows.append((label, wall / n, cpu / n, summary.kept, summary.discarded_count))

    print(f"threads={args.threads} image_size={args.image_size} modalities={args.modalities} "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    print(f"{'step':30s} {'wall s/subj':>11s} {'x floor':>8s} {'CPU s/subj':>11s} {'x floor':>8s} "
          f"{'kept':>6s} {'discarded':>9s}")
    floor_wall, floor_cpu = rows[0][1], rows[0][2]
    for label, wall, cpu, kept, dropped in rows:
        print(f"{label:30s} {wall:11.3f} {wall / floor_wall:8.2f} {cpu:11.3f} {cpu / floor_cpu:8.2f} "
              f"{'' if kept is None else kept:>6} {'' if dropped is None else dropped:>9}")

if __name__ == "__main__":
    main()
