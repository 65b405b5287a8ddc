"""Class-folder image datasets (e.g. breast ultrasound BUSI) -> the same slices, manifest and reports as BraTS.

Layout: ``dataset.root/<class>/<image>`` with one sub-folder per class; masks beside the images (``*_mask.png``)
and other non-image files are skipped and reported. Each image becomes an 8-bit grayscale square PNG under
``out_dir/slices/<class>/``; the manifest uses the BraTS columns with plane ``""``, slice_index -1,
tumor_voxels -1, brain_fraction NaN, so nothing downstream needs to know which kind produced the images.

There are no subject ids in such datasets, so ``subject`` is the image id (its file stem) and the split is by
image; ``dataset.folder.id_pattern`` (a regex with one group) extracts a patient/case id instead, so that all
images of one patient land in the same partition.

What every kind shares lives beside them: the image conversion (any PIL mode -> [0, 1] gray, squaring) in
`catvae.data.images`, the manifest format in `catvae.data.manifest`, the atomic writing and the summary in
`catvae.data.publish`.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from catvae.config import config_block, defaults
from catvae.data.images import image_to_gray, save_png, square_image
from catvae.data.manifest import DISCARDED_COLUMNS, DatasetFiles, dataset_modality, discarded_row, manifest_row
from catvae.data.policy import SkippedSubject, parse_on_error, write_skipped
from catvae.data.publish import PreparedDataset, publish_images
from catvae.errors import CatvaeError
from catvae.io import write_csv

log = logging.getLogger("catvae.data.folder")

# File suffixes PIL can decode; anything else under a class folder is reported as `not_an_image`.
IMAGE_SUFFIXES = frozenset(ext.lower() for ext in Image.registered_extensions())
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


# --------------------------------------------------------------------------------------------------------------
# Image files


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
    opts = config_block(dataset.get("folder"), defaults("dataset", "folder"), "dataset.folder")
    image_size = int(dataset.get("image_size", defaults("dataset")["image_size"]))
    modality = dataset_modality(dataset)  # the one name the conditional VAE embeds for this dataset
    on_error = parse_on_error(dataset.get("on_error"))
    classes = folder_classes(root, opts["classes"])
    exclude = _compile(opts["exclude_pattern"] or None, "dataset.folder.exclude_pattern")
    id_pattern = _compile(opts["id_pattern"], "dataset.folder.id_pattern", groups=1)
    files = DatasetFiles.in_folder(out_dir)

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
            write_csv(files.discarded, pd.DataFrame(discarded, columns=DISCARDED_COLUMNS))
            write_skipped(files.skipped, broken)
            raise CatvaeError(
                f"config key 'dataset.folder.classes': class folder(s) {empty} under {root} hold no usable image"
            )
        return rows, discarded, broken

    return publish_images(files, fill, what=f"config key 'dataset.root' ({root})", logger=log, on_error=on_error)


def _unique(name: str, cls: str, used: set[tuple[str, str]]) -> str:
    """Append _2, _3 ... when two ids map to the same safe file name within a class folder."""
    candidate, n = name, 1
    while (cls, candidate) in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add((cls, candidate))
    return candidate


__all__ = ["folder_classes", "prepare_folder_dataset", "read_gray", "safe_name"]
