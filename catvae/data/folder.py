"""Class-folder image datasets (e.g. breast ultrasound BUSI) -> the same slices, manifest and reports as BraTS.

Layout: ``dataset.root/<class>/<image>`` with one sub-folder per class; masks beside the images (``*_mask.png``)
and other non-image files are skipped and reported. Each image becomes an 8-bit grayscale square PNG under
``out_dir/slices/<class>/``; the manifest uses the BraTS columns with plane ``""``, slice_index -1,
tumor_voxels -1, brain_fraction NaN, so nothing downstream needs to know which kind produced the images.

There are no subject ids in such datasets, so ``subject`` is the image id (its file stem) and the split is by
image; ``dataset.folder.id_pattern`` (a regex with one group) extracts a patient/case id instead, so that all
images of one patient land in the same partition.

This module also holds what the MedMNIST kind shares with it: the image conversion (any PIL mode -> [0, 1]
gray) and the atomic writing of slices + CSVs.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from catvae.data.extract import DISCARDED_COLUMNS, MANIFEST_COLUMNS, square_image
from catvae.data.images import save_png
from catvae.data.policy import SkippedSubject, parse_on_error, settle, write_skipped
from catvae.data.publish import publish_slices
from catvae.errors import CatvaeError
from catvae.io import write_csv

log = logging.getLogger("catvae.data.folder")

DEFAULT_EXCLUDE = "_mask"
# File suffixes PIL can decode; anything else under a class folder is reported as `not_an_image`.
IMAGE_SUFFIXES = frozenset(ext.lower() for ext in Image.registered_extensions())
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class PreparedDataset:
    """What one preparation produced: file locations and the counts a researcher checks first."""

    out_dir: Path
    manifest: Path
    discarded: Path
    skipped: Path
    kept: int
    counts: dict[str, int]  # class -> kept images
    discard_reasons: dict[str, int]
    seconds: float
    partitions: dict[str, int] = field(default_factory=dict)  # preset partition -> images (MedMNIST)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (paths as strings)."""
        return {k: (os.fspath(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


# --------------------------------------------------------------------------------------------------------------
# Image conversion (shared with MedMNIST)


def image_to_gray(img: Image.Image) -> np.ndarray:
    """Any PIL image -> float64 ``[H, W]`` gray in [0, 1], the same rule for every source mode.

    16-bit / 32-bit integer and float images are min-max scaled per image (as ``catvae.data.images.load_image``
    reads them: ultrasound and X-ray often use only part of the 16-bit range). Images with transparency (RGBA,
    LA, palette with a transparent index) are composited onto black, the padding colour, so transparent areas
    do not turn into whatever colour they happen to store. Colour becomes luma (ITU-R 601, PIL's "L").
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        return (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return np.asarray(img.convert("L"), dtype=np.float64) / 255.0


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file into ``[H, W]`` gray in [0, 1]; OSError/ValueError from PIL mean a corrupt file."""
    with Image.open(path) as img:
        img.load()
        img = ImageOps.exif_transpose(img)  # phone/JPEG sources may store rotation as a tag only
        gray = image_to_gray(img)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ValueError(f"unexpected decoded shape {gray.shape}")
    return gray


def safe_name(name: str) -> str:
    """A file-name-safe form of an image id (BUSI names hold spaces and brackets: 'benign (12)')."""
    return _UNSAFE.sub("_", name).strip("_") or "image"


# --------------------------------------------------------------------------------------------------------------
# Atomic output (shared with MedMNIST)


Fill = Callable[[Path], tuple[list[list[Any]], list[list[Any]], list[SkippedSubject]]]


def write_prepared(
    out_dir: Path,
    fill_slices: Fill,
    skipped: Iterable[SkippedSubject] = (),
    extra_columns: Iterable[str] = (),
    what: str = "config key 'dataset.root'",
    logger: logging.Logger = log,
    on_error: str = "stop",
    unit: str = "image",
) -> PreparedDataset:
    """Run `fill_slices(tmp_slices_dir)` -> (manifest rows, discarded rows, broken units), then publish atomically.

    The broken units (unreadable images ...) found in that one pass go through `catvae.data.policy.settle`: with
    ``on_error: stop`` one CatvaeError lists them all and nothing is published; with ``skip`` they join `skipped`
    (units left out earlier, e.g. MedMNIST files) in ``skipped_subjects.csv``. PNGs go into a hidden temporary
    folder that replaces ``slices/`` only when every image is written, and ``manifest.csv`` is written last: a crash
    never leaves a manifest that looks complete. `discarded.csv` and `skipped_subjects.csv` are written before an
    empty result raises (CatvaeError naming `what`), so they say why.
    """
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    skipped_path = out_dir / "skipped_subjects.csv"
    all_skipped = list(skipped)

    def fill_and_settle(tmp_slices: Path) -> tuple[list[list[Any]], list[list[Any]]]:
        rows, discarded, broken = fill_slices(tmp_slices)
        all_skipped.extend(settle(broken, on_error, what, logger, unit=unit))  # raises on stop
        write_skipped(skipped_path, all_skipped)
        return rows, discarded

    published = publish_slices(
        out_dir,
        fill_and_settle,
        manifest_columns=MANIFEST_COLUMNS + list(extra_columns),
        discarded_columns=DISCARDED_COLUMNS,
        empty_message=lambda n, reasons, path: (
            f"{what}: no usable image ({n} discarded: {reasons}; {len(all_skipped)} skipped); see {path} "
            f"and {skipped_path}"
        ),
    )
    manifest, discarded, reasons = published.manifest, published.discarded, published.reasons
    manifest_path, discarded_path = published.manifest_path, published.discarded_path
    summary = PreparedDataset(
        out_dir=out_dir,
        manifest=manifest_path,
        discarded=discarded_path,
        skipped=skipped_path,
        kept=len(manifest),
        counts={str(k): int(v) for k, v in manifest["class"].value_counts(sort=False).items()},
        discard_reasons=reasons,
        seconds=round(time.perf_counter() - start, 3),
        partitions=(
            {str(k): int(v) for k, v in manifest["partition"].value_counts(sort=False).items()}
            if "partition" in manifest.columns
            else {}
        ),
    )
    logger.info(
        "kept %d image(s) in %s: %s; discarded %d %s; %.1f s",
        summary.kept, out_dir, ", ".join(f"{c} {n}" for c, n in summary.counts.items()),
        len(discarded), reasons or "", summary.seconds,
    )
    return summary


def manifest_row(subject: str, modality: str, cls: str, rel_path: str) -> list[Any]:
    """A manifest row for a dataset without planes (see docs/ARCHITECTURE.md)."""
    return [subject, modality, "", -1, cls, -1, float("nan"), rel_path]


def discarded_row(subject: str, modality: str, cls: str, reason: str, value: Any = "") -> list[Any]:
    return [subject, modality, "", -1, cls, reason, value]


# --------------------------------------------------------------------------------------------------------------
# Class-folder datasets


def folder_classes(root: Path, configured: list[str] | None) -> list[str]:
    """The class sub-folders in order: the configured list, else every (non-hidden) sub-folder sorted by name."""
    if not root.is_dir():
        raise CatvaeError(f"config key 'dataset.root': folder not found: {root}")
    if configured:
        missing = [c for c in configured if not (root / c).is_dir()]
        if missing:
            raise CatvaeError(
                f"config key 'dataset.folder.classes': class folder(s) {missing} not found under {root}"
            )
        return list(configured)
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise CatvaeError(f"config key 'dataset.root': {root} needs at least two class sub-folders, found {names}")
    return names


def _compile(pattern: str | None, key: str, groups: int = 0) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise CatvaeError(f"config key '{key}': invalid regular expression {pattern!r}: {exc}") from None
    if compiled.groups < groups:
        raise CatvaeError(f"config key '{key}': {pattern!r} needs a capturing group (the id), e.g. '^(P\\d+)_'")
    return compiled


@dataclass(frozen=True)
class _Candidate:
    cls: str
    path: Path


def _scan(root: Path, classes: list[str], exclude: re.Pattern | None, modality: str
          ) -> tuple[list[_Candidate], list[list[Any]]]:
    """Image files per class (sorted), and discarded rows for masks and non-image entries."""
    found: list[_Candidate] = []
    discarded: list[list[Any]] = []
    for cls in classes:
        for entry in sorted((root / cls).iterdir(), key=lambda p: p.name):
            if exclude is not None and exclude.search(entry.name):
                discarded.append(discarded_row(entry.stem, modality, cls, "mask", entry.name))
            elif not entry.is_file() or entry.suffix.lower() not in IMAGE_SUFFIXES:
                discarded.append(discarded_row(entry.stem, modality, cls, "not_an_image", entry.name))
            else:
                found.append(_Candidate(cls, entry))
    return found, discarded


def _image_ids(candidates: list[_Candidate]) -> list[str]:
    """The file stem, unless another file shares it (e.g. '001.png' in every class folder): then
    '<class>_<file name>', which is unique, so two different images never pose as one subject."""
    stems = Counter(c.path.stem for c in candidates)
    return [c.path.stem if stems[c.path.stem] == 1 else f"{c.cls}_{c.path.name}" for c in candidates]


def _subjects(candidates: list[_Candidate], ids: list[str], id_pattern: re.Pattern | None) -> list[str]:
    if id_pattern is None:
        return ids
    out = []
    for c in candidates:
        match = id_pattern.search(c.path.stem)
        if match is None or not match.group(1):
            raise CatvaeError(
                f"config key 'dataset.folder.id_pattern': {id_pattern.pattern!r} does not match file {c.path}"
            )
        out.append(match.group(1))
    return out


def prepare_folder_dataset(dataset: Mapping[str, Any], out_dir: str | os.PathLike) -> PreparedDataset:
    """Write ``slices/<class>/*.png``, ``manifest.csv``, ``discarded.csv`` and ``skipped_subjects.csv``.

    `dataset` is the validated ``dataset`` config block; reads ``root``, ``name`` (the modality value),
    ``image_size``, ``on_error`` and ``folder: {classes, exclude_pattern, id_pattern}``. Masks and non-image files
    go to ``discarded.csv``. Images that cannot be decoded are collected over the whole tree: ``on_error: stop``
    (default) then raises one CatvaeError naming every one of them; ``skip`` leaves them out and lists them in
    ``skipped_subjects.csv`` (``corrupt image <class>/<file>: <error>``). CatvaeError too when nothing is left or a
    class ends up empty, when ``root`` or a configured class folder is missing, or when ``id_pattern`` does not
    match an image's file name.
    """
    if not dataset.get("root"):
        raise CatvaeError("config key 'dataset.root' is required for dataset.kind 'folder'")
    root = Path(dataset["root"])
    opts = dict(dataset.get("folder") or {})
    image_size = int(dataset.get("image_size", 64))
    modality = str(dataset.get("name", "image"))  # as catvae.data.classes.dataset_modalities names it
    on_error = parse_on_error(dataset.get("on_error", "stop"))
    classes = folder_classes(root, opts.get("classes"))
    exclude = _compile(opts.get("exclude_pattern", DEFAULT_EXCLUDE) or None, "dataset.folder.exclude_pattern")
    id_pattern = _compile(opts.get("id_pattern"), "dataset.folder.id_pattern", groups=1)

    candidates, discarded = _scan(root, classes, exclude, modality)
    ids = _image_ids(candidates)
    subjects = _subjects(candidates, ids, id_pattern)
    log.info(
        "found %d image file(s) in %d class folder(s) under %s; skipped %d mask/non-image file(s)",
        len(candidates), len(classes), root, len(discarded),
    )

    def fill(slices_dir: Path) -> tuple[list[list[Any]], list[list[Any]], list[SkippedSubject]]:
        rows: list[list[Any]] = []
        broken: list[SkippedSubject] = []
        used: set[tuple[str, str]] = set()
        for i, (cand, image_id, subject) in enumerate(zip(candidates, ids, subjects), 1):
            try:
                gray = read_gray(cand.path)
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                log.warning("corrupt image %s: %s", cand.path, exc)
                broken.append(SkippedSubject(subject, f"corrupt image {cand.cls}/{cand.path.name}: {exc}"))
                continue
            if broken and on_error == "stop":
                continue  # the run stops after this pass: decode the rest to find every corrupt file, write nothing
            name = _unique(safe_name(image_id), cand.cls, used)
            rel = f"slices/{cand.cls}/{name}.png"
            save_png(slices_dir / cand.cls / f"{name}.png", square_image(gray, image_size))
            rows.append(manifest_row(subject, modality, cand.cls, rel))
            if i % 500 == 0:
                log.info("converted %d/%d image(s)", i, len(candidates))
        empty = [c for c in classes if not any(r[4] == c for r in rows)]
        if rows and empty and not (broken and on_error == "stop"):
            write_csv(Path(out_dir) / "discarded.csv", pd.DataFrame(discarded, columns=DISCARDED_COLUMNS))
            write_skipped(Path(out_dir) / "skipped_subjects.csv", broken)
            raise CatvaeError(
                f"config key 'dataset.folder.classes': class folder(s) {empty} under {root} hold no usable image"
            )
        return rows, discarded, broken

    return write_prepared(Path(out_dir), fill, what=f"config key 'dataset.root' ({root})", on_error=on_error)


def _unique(name: str, cls: str, used: set[tuple[str, str]]) -> str:
    """Append _2, _3 ... when two ids map to the same safe file name within a class folder."""
    candidate, n = name, 1
    while (cls, candidate) in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add((cls, candidate))
    return candidate


__all__ = [
    "PreparedDataset",
    "folder_classes",
    "image_to_gray",
    "prepare_folder_dataset",
    "read_gray",
    "safe_name",
    "write_prepared",
]
