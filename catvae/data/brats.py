"""Find BraTS subjects and their files, for the 2020/2021 and the 2023 naming.

Layouts recognised (one folder per subject, the folder name is the subject id):

- BraTS 2020/2021: ``<ID>/<ID>_flair.nii.gz``, ``_t1``, ``_t1ce``, ``_t2``, ``_seg``
- BraTS 2023:      ``<ID>/<ID>-t2f.nii.gz``, ``-t1n``, ``-t1c``, ``-t2w``, ``-seg``

each as ``.nii`` or ``.nii.gz``. Sequences go by their canonical 2020 names (flair, t1, t1ce, t2) whatever the
naming on disk, so configs and manifests do not depend on the BraTS edition.

Discovery is strict on purpose: a file in a subject folder that does not follow the naming (a stale
``<ID>_flair_old.nii.gz``, another subject's file, a wrong extension) makes the subject *skipped with the reason*,
never guessed at, because a wrong guess (an old FLAIR used as the FLAIR, a mask of another brain) would silently
corrupt the labels of every slice of that subject. BraTS 2020 ships one such case (a segmentation named
``W39_1998.09.19_Segm.nii`` in subject 355); the researcher sees it in ``skipped_subjects.csv``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from catvae.errors import CatvaeError

#: canonical sequence names, in the order manifests list them
MODALITIES = ("flair", "t1", "t1ce", "t2")

#: BraTS 2023 name -> canonical name (the 2020/2021 names are canonical already)
ALIASES = {"t2f": "flair", "t1n": "t1", "t1c": "t1ce", "t2w": "t2"}

# suffixes per naming convention: the separator between id and sequence, and the sequence names on disk
_CONVENTIONS = {
    "_": {"flair": "flair", "t1": "t1", "t1ce": "t1ce", "t2": "t2", "seg": "seg"},
    "-": {"t2f": "flair", "t1n": "t1", "t1c": "t1ce", "t2w": "t2", "seg": "seg"},
}
_EXTENSIONS = (".nii.gz", ".nii")
_EXPECTED = "expected <ID>_{flair,t1,t1ce,t2,seg}.nii[.gz] or <ID>-{t2f,t1n,t1c,t2w,seg}.nii[.gz]"


@dataclass(frozen=True)
class SubjectFiles:
    """One usable subject: its id, the requested sequences (canonical name -> file) and its tumour mask."""

    subject: str
    images: dict[str, Path]
    seg: Path
    naming: str  # "2020" (<ID>_flair) or "2023" (<ID>-t2f)
    available: tuple[str, ...] = field(default=())  # every canonical sequence found, requested or not


@dataclass(frozen=True)
class SkippedSubject:
    """A subject folder that is not used, and why (written to ``skipped_subjects.csv``)."""

    subject: str
    reason: str


def canonical_modalities(modalities: Iterable[str]) -> list[str]:
    """Map requested sequence names to canonical ones (t2f -> flair ...), rejecting unknown or repeated names."""
    out: list[str] = []
    for name in modalities:
        key = str(name).strip().lower()
        canon = ALIASES.get(key, key)
        if canon not in MODALITIES:
            raise CatvaeError(
                f"config key 'dataset.modalities': unknown sequence {name!r}; "
                f"use {list(MODALITIES)} (or the 2023 names {list(ALIASES)})"
            )
        if canon in out:
            raise CatvaeError(f"config key 'dataset.modalities': sequence {name!r} is given twice (as {canon!r})")
        out.append(canon)
    if not out:
        raise CatvaeError("config key 'dataset.modalities': at least one sequence is needed")
    return out


def discover_brats(
    root: str | os.PathLike, modalities: Iterable[str] = ("flair",)
) -> tuple[list[SubjectFiles], list[SkippedSubject]]:
    """Subjects under `root` that have every requested sequence and a segmentation, plus the ones skipped.

    Both lists are sorted by subject id, so extraction order (and so the manifest) is reproducible.
    Files directly in `root` (``name_mapping.csv``, ``survival_info.csv``) and hidden entries are ignored.
    """
    wanted = canonical_modalities(modalities)
    root = Path(root)
    if not root.is_dir():
        raise CatvaeError(f"config key 'dataset.root': BraTS folder not found: {root}")
    subjects: list[SubjectFiles] = []
    skipped: list[SkippedSubject] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        result = _read_subject(folder, wanted)
        (subjects if isinstance(result, SubjectFiles) else skipped).append(result)
    return subjects, skipped


def _read_subject(folder: Path, wanted: list[str]) -> SubjectFiles | SkippedSubject:
    subject = folder.name
    found: dict[str, list[Path]] = {}
    namings: set[str] = set()
    problems: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue  # OS litter (.DS_Store), never a volume
        parsed = _parse_name(entry.name, subject)
        if isinstance(parsed, str):
            problems.append(f"unrecognised file {entry.name!r} ({parsed})")
            continue
        if not entry.is_file():
            problems.append(f"unrecognised entry {entry.name!r} (not a file)")
            continue
        sequence, naming = parsed
        found.setdefault(sequence, []).append(entry)
        namings.add(naming)
    for sequence, paths in sorted(found.items()):
        if len(paths) > 1:
            problems.append(f"{sequence} given {len(paths)} times: {', '.join(p.name for p in paths)}")
    missing = [s for s in [*wanted, "seg"] if s not in found]
    if missing:
        problems.insert(0, "missing " + ", ".join(missing))
    if problems:
        return SkippedSubject(subject, "; ".join(problems))
    return SubjectFiles(
        subject=subject,
        images={s: found[s][0] for s in wanted},
        seg=found["seg"][0],
        naming="2023" if namings == {"2023"} else "2020" if namings == {"2020"} else "mixed",
        available=tuple(s for s in MODALITIES if s in found),
    )


def _parse_name(name: str, subject: str) -> tuple[str, str] | str:
    """(canonical sequence or 'seg', naming edition) for a well-named file, else why the name is not accepted."""
    ext = next((e for e in _EXTENSIONS if name.lower().endswith(e)), None)
    if ext is None:
        return f"not .nii or .nii.gz; {_EXPECTED}"
    stem = name[: -len(ext)]
    if not stem.startswith(subject) or len(stem) <= len(subject):
        return f"prefix is not the folder id {subject!r}; {_EXPECTED}"
    sep, suffix = stem[len(subject)], stem[len(subject) + 1 :]
    table = _CONVENTIONS.get(sep)
    if table is None or suffix.lower() not in table:
        return f"unknown sequence suffix {stem[len(subject):]!r}; {_EXPECTED}"
    return table[suffix.lower()], "2020" if sep == "_" else "2023"
