"""MedMNIST ``.npz`` files -> the same slices and manifest as BraTS, with MedMNIST's own train/val/test split.

Each file (PathMNIST, TissueMNIST, OCTMNIST, ... at any published size 28/64/128/224, gray ``[N, H, W]`` or
RGB ``[N, H, W, 3]``) holds ``{train,val,test}_{images,labels}``. Several files are mapped onto one global class
list and one modality per file, as the conditional-VAE reference did (PathMNIST 0-8, TissueMNIST 9-16,
OCTMNIST 17-20): a file's ``class_offset`` defaults to the end of the previous file's range, its class names to
``<modality>_<local label>``, its modality to the file stem without a size suffix ("pathmnist_64" -> "pathmnist").

Nothing is downloaded: the files are local paths from ``dataset.medmnist.files``. ``medmnist_classes`` and
``medmnist_modalities`` read only the label arrays and the image arrays' headers (``np.load`` of an ``.npz`` is
lazy per array; a ``.npy`` header is its first bytes), because Snakemake calls them while building the DAG. Image
arrays are streamed in chunks straight from the zip member, so a 224x224 TissueMNIST (several GB) never sits in
memory whole.

Broken files (unreadable, an array missing, mis-shaped or truncated, image and label counts that differ) are all
found in that cheap pass: ``dataset.on_error: stop`` (default) fails naming every one; ``skip`` leaves them out
(their classes with them, so the DAG and the manifest agree) and lists them in ``skipped_subjects.csv``. A file
whose compressed data is damaged past its header is found only while converting, and always stops the run.
"""

from __future__ import annotations

import logging
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image

from catvae.config import defaults
from catvae.data.images import image_to_gray, save_png, square_image
from catvae.data.manifest import DatasetFiles, manifest_row
from catvae.data.policy import SkippedSubject, parse_on_error, settle
from catvae.data.publish import PreparedDataset, publish_images
from catvae.errors import CatvaeError

log = logging.getLogger("catvae.data.medmnist")

KEY = "dataset.medmnist.files"
PARTITIONS = ("train", "val", "test")
_SIZE_SUFFIX = re.compile(r"_(28|64|128|224)$")
_SAFE_CLASS = re.compile(r"^[A-Za-z0-9_.-]+$")  # class names become folder names and Snakemake wildcard values
_LOAD_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


@dataclass(frozen=True)
class MedmnistFile:
    """One configured ``.npz`` file, resolved: its modality and where its local labels land globally."""

    index: int
    path: Path
    modality: str
    class_offset: int
    class_names: tuple[str, ...]  # global name of local label 0, 1, ...

    @property
    def where(self) -> str:
        return f"config key '{KEY}' entry {self.index} ({self.path})"


def default_modality(path: str | os.PathLike) -> str:
    """The file stem without MedMNIST+'s size suffix: 'data/pathmnist_64.npz' -> 'pathmnist'."""
    return _SIZE_SUFFIX.sub("", Path(path).stem)


def _entry(item: Any, i: int) -> dict[str, Any]:
    if isinstance(item, (str, os.PathLike)):
        return {"path": os.fspath(item)}
    if not isinstance(item, Mapping) or not item.get("path"):
        raise CatvaeError(f"config key '{KEY}' entry {i}: needs a 'path' to a MedMNIST .npz file")
    return dict(item)


def _read_labels(path: Path, where: str) -> dict[str, np.ndarray]:
    """The three label arrays as 1-D int64 (labels only: cheap even for TissueMNIST's 236k images)."""
    if not path.is_file():
        raise CatvaeError(f"{where}: file not found")
    out = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for part in PARTITIONS:
                name = f"{part}_labels"
                if name not in npz.files:
                    raise CatvaeError(f"{where}: array {name!r} missing (has {sorted(npz.files)})")
                out[part] = np.asarray(npz[name])
    except CatvaeError:
        raise
    except _LOAD_ERRORS as exc:
        raise CatvaeError(f"{where}: not a readable .npz file: {exc}") from None
    for part, labels in out.items():
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise CatvaeError(
                f"{where}: '{part}_labels' has shape {list(out[part].shape)}; only single-label sets "
                "([N] or [N, 1]) are supported (not multi-label ChestMNIST)"
            )
        if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
            raise CatvaeError(f"{where}: '{part}_labels' must be non-negative integers")
        out[part] = labels.astype(np.int64)
    return out


def resolve_files(files: Sequence[Any], on_error: str | None = None) -> list[MedmnistFile]:
    """Resolve every usable configured file: modality, global class offset and names (labels and headers only).

    Every file is checked before anything is decided (see the module docstring for `on_error`). Raises CatvaeError
    naming ``dataset.medmnist.files`` for a config that cannot work whatever the files hold: two files with one
    modality, clashing or missing global classes.
    """
    return _resolve(files, on_error)[0]


def _resolve(files: Sequence[Any], on_error: str | None = None) -> tuple[list[MedmnistFile], list[SkippedSubject]]:
    """(usable files, broken files left out under ``on_error: skip``); `on_error` None is the schema's default."""
    on_error = parse_on_error(on_error)
    if not files:
        raise CatvaeError(f"config key '{KEY}' must list at least one .npz file")
    entries = [_entry(item, i) for i, item in enumerate(files)]
    modalities = [str(e.get("modality") or default_modality(e["path"])) for e in entries]
    duplicated = sorted({m for m in modalities if modalities.count(m) > 1})
    if duplicated:
        raise CatvaeError(f"config key '{KEY}': modality {duplicated} given to more than one file; name each one")
    resolved: list[MedmnistFile] = []
    broken: list[SkippedSubject] = []
    next_free = 0
    for i, (entry, modality) in enumerate(zip(entries, modalities)):
        path = Path(entry["path"])
        where = f"config key '{KEY}' entry {i} ({path})"
        try:
            labels = _read_labels(path, where)
            _check_image_headers(path, labels, where)
            names = _class_names(entry.get("class_names"), labels, modality, where)
        except CatvaeError as exc:
            broken.append(SkippedSubject(modality, str(exc)))
            continue
        offset = entry.get("class_offset")
        offset = next_free if offset is None else int(offset)
        if offset < 0:
            raise CatvaeError(f"{where}: 'class_offset' must be >= 0, got {offset}")
        resolved.append(MedmnistFile(i, path, modality, offset, names))
        next_free = max(next_free, offset + len(names))
    left_out = settle(broken, on_error, f"config key '{KEY}'", log, unit="file")  # raises on stop
    if not resolved:
        raise CatvaeError(f"config key '{KEY}': no usable file ({len(left_out)} broken, left out)")
    _global_names(resolved)  # fail early on clashes
    return resolved, left_out


def _class_names(configured: Any, labels: dict[str, np.ndarray], modality: str, where: str) -> tuple[str, ...]:
    """The global names of a file's local labels: `configured` (checked against the labels), else <modality>_<k>."""
    top = max((int(v.max()) for v in labels.values() if v.size), default=-1)
    if configured:
        if top >= len(configured):
            raise CatvaeError(f"{where}: label {top} found but 'class_names' lists only {len(configured)} name(s)")
        return tuple(str(n) for n in configured)
    if top < 0:
        raise CatvaeError(f"{where}: no labels in any partition")
    return tuple(f"{modality}_{k}" for k in range(top + 1))


def _global_names(files: Sequence[MedmnistFile]) -> list[str]:
    """Index -> name over all files; overlapping ranges must agree, and the result must be gap-free and unique."""
    by_index: dict[int, str] = {}
    for f in files:
        for k, name in enumerate(f.class_names):
            if not _SAFE_CLASS.match(name):
                raise CatvaeError(f"{f.where}: class name {name!r} may only use letters, digits, '_', '.', '-'")
            previous = by_index.setdefault(f.class_offset + k, name)
            if previous != name:
                raise CatvaeError(
                    f"{f.where}: global class {f.class_offset + k} would be both {previous!r} and {name!r}; "
                    "check 'class_offset'"
                )
    gaps = sorted(set(range(max(by_index) + 1)) - set(by_index))
    if gaps:
        raise CatvaeError(f"config key '{KEY}': no file provides global class index(es) {gaps}; check 'class_offset'")
    names = [by_index[k] for k in range(len(by_index))]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CatvaeError(f"config key '{KEY}': class name(s) {repeated} used for more than one global class")
    return names


def medmnist_classes(files: Sequence[Any], on_error: str | None = None) -> list[str]:
    """Global class names in global-label order (the classifier's output order), of the usable files.
    Reads label arrays and array headers only."""
    return _global_names(resolve_files(files, on_error))


def medmnist_modalities(files: Sequence[Any], on_error: str | None = None) -> list[str]:
    """One modality name per usable file, in config order (the conditional VAE's modality embedding)."""
    return [f.modality for f in resolve_files(files, on_error)]


def _array_header(zf: zipfile.ZipFile, name: str, where: str) -> tuple[tuple[int, ...], int]:
    """(shape, bytes before the data) of ``{name}.npy`` in an open ``.npz``, from its header alone, checked:
    uint8 ``[N, H, W]``, ``[N, H, W, 1]`` or ``[N, H, W, 3]``, C order, and a member long enough for its shape."""
    member = f"{name}.npy"
    if member not in zf.namelist():
        raise CatvaeError(f"{where}: array {name!r} missing")
    with zf.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(fh)
        offset = fh.tell()
    if dtype != np.uint8 or len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
        raise CatvaeError(f"{where}: '{name}' is {dtype} {list(shape)}; expected uint8 [N, H, W] or [N, H, W, 3]")
    if fortran:
        raise CatvaeError(f"{where}: '{name}' is stored in Fortran order; re-save it in C order")
    stored, needed = zf.getinfo(member).file_size - offset, int(np.prod(shape))
    if stored < needed:
        raise CatvaeError(f"{where}: '{name}' is truncated: {stored} of {needed} data bytes")
    return tuple(int(n) for n in shape), offset


def _check_image_headers(path: Path, labels: dict[str, np.ndarray], where: str) -> None:
    """Every partition's image array is present, well-formed, complete, and as long as its labels (headers only)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for part in PARTITIONS:
                n = _array_header(zf, f"{part}_images", where)[0][0]
                if n != len(labels[part]):
                    raise CatvaeError(
                        f"{where}: '{part}_images' has {n} image(s) but '{part}_labels' {len(labels[part])}"
                    )
    except CatvaeError:
        raise
    except _LOAD_ERRORS as exc:
        raise CatvaeError(f"{where}: cannot read the image arrays: {exc}") from None


def iter_images(path: Path, part: str, where: str, chunk: int = 2048) -> Iterator[np.ndarray]:
    """Yield ``{part}_images`` in chunks of up to `chunk` images, read straight from the zip member.

    Checks the layout (see `_array_header`) before any pixel is read.
    """
    name = f"{part}_images"
    try:
        with zipfile.ZipFile(path) as zf:
            shape, offset = _array_header(zf, name, where)
            with zf.open(f"{name}.npy") as fh:
                fh.read(offset)
                per_image = int(np.prod(shape[1:]))
                done = 0
                while done < shape[0]:
                    n = min(chunk, shape[0] - done)
                    buf = fh.read(n * per_image)
                    if len(buf) != n * per_image:
                        raise CatvaeError(f"{where}: '{name}' is truncated after {done} image(s)")
                    yield np.frombuffer(buf, dtype=np.uint8).reshape((n, *shape[1:]))
                    done += n
    except CatvaeError:
        raise
    except _LOAD_ERRORS as exc:
        raise CatvaeError(f"{where}: cannot read '{name}': {exc}") from None


def array_to_gray(image: np.ndarray) -> np.ndarray:
    """One uint8 MedMNIST image (gray or RGB) -> [0, 1] gray, by the same rule as class-folder PNGs."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image_to_gray(Image.fromarray(np.ascontiguousarray(image)))


def prepare_medmnist_dataset(dataset: Mapping[str, Any], out_dir: str | os.PathLike) -> PreparedDataset:
    """Write ``slices/<class>/<modality>_<partition>_<index>.png``, ``manifest.csv`` (the BraTS columns plus
    ``partition``: MedMNIST's own train/val/test), an empty ``discarded.csv`` and ``skipped_subjects.csv``.

    `dataset` is the validated ``dataset`` config block; reads ``image_size``, ``on_error`` and ``medmnist.files``
    (``[{path, modality, class_offset, class_names}]``). ``subject`` is ``<modality>_<partition>_<index>``; a file
    left out under ``on_error: skip`` is listed in ``skipped_subjects.csv`` under its modality name.
    """
    on_error = parse_on_error(dataset.get("on_error"))
    files, left_out = _resolve((dataset.get("medmnist") or {}).get("files") or [], on_error)
    image_size = int(dataset.get("image_size", defaults("dataset")["image_size"]))
    classes = _global_names(files)
    log.info("%d MedMNIST file(s), %d global classes: %s", len(files), len(classes), ", ".join(classes))

    def fill(slices_dir: Path) -> tuple[list[list[Any]], list[list[Any]], list[SkippedSubject]]:
        rows: list[list[Any]] = []
        for cls in classes:
            (slices_dir / cls).mkdir(parents=True, exist_ok=True)
        for f in files:
            labels = _read_labels(f.path, f.where)
            for part in PARTITIONS:
                index = 0
                for batch in iter_images(f.path, part, f.where):
                    if index + len(batch) > len(labels[part]):
                        raise CatvaeError(
                            f"{f.where}: '{part}_images' has more images than '{part}_labels' ({len(labels[part])})"
                        )
                    for image in batch:
                        cls = f.class_names[labels[part][index]]
                        subject = f"{f.modality}_{part}_{index}"
                        save_png(slices_dir / cls / f"{subject}.png", square_image(array_to_gray(image), image_size))
                        rows.append(manifest_row(subject, f.modality, cls, f"slices/{cls}/{subject}.png") + [part])
                        index += 1
                if index != len(labels[part]):
                    raise CatvaeError(
                        f"{f.where}: '{part}_images' has {index} image(s) but '{part}_labels' {len(labels[part])}"
                    )
                log.info("%s %s: %d image(s)", f.modality, part, index)
        return rows, [], []

    return publish_images(DatasetFiles.in_folder(out_dir), fill, skipped=left_out, extra_columns=["partition"],
                          what=f"config key '{KEY}'", logger=log, on_error=on_error, unit="file")


__all__ = [
    "MedmnistFile",
    "array_to_gray",
    "default_modality",
    "iter_images",
    "medmnist_classes",
    "medmnist_modalities",
    "prepare_medmnist_dataset",
    "resolve_files",
]
