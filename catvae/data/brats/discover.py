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
``W39_1998.09.19_Segm.nii`` in subject 355); the researcher sees it in ``skipped_subjects.csv`` and can name the
file explicitly in ``dataset.brats.overrides`` (``{BraTS20_Training_355: {seg: W39_1998.09.19_Segm.nii}}``, paths
relative to the subject folder). An override replaces the file of that sequence, whatever else the folder holds,
and every override used is logged.

Mask labels: BraTS 2020/2021 label tumour voxels 1 (necrotic core), 2 (edema), 4 (enhancing); BraTS 2023 uses 3 for
enhancing. `label_set` gives the set a subject's mask must hold, by the naming of its files unless
``dataset.brats.labels`` says otherwise.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Iterable, Mapping

from catvae.data.policy import SkippedSubject
from catvae.errors import CatvaeError

log = logging.getLogger("catvae.data.brats.discover")

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
#: mask labels per BraTS edition (0 is background)
LABELS = {"2020": (0, 1, 2, 4), "2023": (0, 1, 2, 3)}
OVERRIDES_KEY = "dataset.brats.overrides"
_EXPECTED = "expected <ID>_{flair,t1,t1ce,t2,seg}.nii[.gz] or <ID>-{t2f,t1n,t1c,t2w,seg}.nii[.gz]"


@dataclass(frozen=True)
class SubjectFiles:
    """One usable subject: its id, the requested sequences (canonical name -> file) and its tumour mask."""

    subject: str
    images: dict[str, Path]
    seg: Path
    naming: str  # "2020" (<ID>_flair) or "2023" (<ID>-t2f), or "mixed"
    available: tuple[str, ...] = field(default=())  # every canonical sequence found, requested or not
    overrides: dict[str, str] = field(default_factory=dict)  # sequence -> path as configured (relative)
    seg_naming: str = ""  # the naming of the mask's own file name; "" when it comes from an override


def label_set(subject: SubjectFiles, configured: Iterable[int] | None = None) -> tuple[int, ...]:
    """The labels `subject`'s mask may hold: `configured` (``dataset.brats.labels``) when given, else the set of
    the BraTS edition its mask file's name (or, for an overridden mask, its other files' names) follows; a folder
    that mixes both namings under an overridden mask accepts both editions' labels."""
    if configured is not None:
        return tuple(sorted({int(v) for v in configured}))
    naming = subject.seg_naming or subject.naming
    if naming in LABELS:
        return LABELS[naming]
    return tuple(sorted(set(LABELS["2020"]) | set(LABELS["2023"])))


def parse_overrides(overrides: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Validate ``dataset.brats.overrides``: {subject id: {sequence or 'seg': path relative to the subject folder}}.

    Sequences may use either edition's name (t2f = flair ...); they are stored under the canonical name.
    """
    out: dict[str, dict[str, str]] = {}
    for subject, files in dict(overrides or {}).items():
        key = f"{OVERRIDES_KEY}.{subject}"
        if not isinstance(files, Mapping) or not files:
            raise CatvaeError(f"config key '{key}': needs a mapping of sequence -> file, e.g. {{seg: my_seg.nii}}")
        entry: dict[str, str] = {}
        for name, rel in files.items():
            seq = str(name).strip().lower()
            seq = ALIASES.get(seq, seq)
            if seq not in (*MODALITIES, "seg"):
                raise CatvaeError(
                    f"config key '{key}.{name}': unknown sequence; use seg or one of {list(MODALITIES)} "
                    f"(or the 2023 names {list(ALIASES)})"
                )
            if seq in entry:
                raise CatvaeError(f"config key '{key}.{name}': sequence {seq!r} is given twice")
            bad = not isinstance(rel, str) or not rel.strip()
            if bad or PurePath(rel).is_absolute() or ".." in PurePath(rel).parts:
                raise CatvaeError(
                    f"config key '{key}.{name}': {rel!r} must be a file path relative to the subject folder"
                )
            entry[seq] = rel
        out[str(subject)] = entry
    return out


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


def subject_folders(root: Path) -> list[Path]:
    """The subject folders of a BraTS root: every visible sub-folder, sorted (no file inside is read)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def discover_brats(
    root: str | os.PathLike,
    modalities: Iterable[str] = ("flair",),
    overrides: Mapping[str, Any] | None = None,
) -> tuple[list[SubjectFiles], list[SkippedSubject]]:
    """Subjects under `root` that have every requested sequence and a segmentation, plus the ones skipped.

    Both lists are sorted by subject id, so extraction order (and so the manifest) is reproducible.
    Files directly in `root` (``name_mapping.csv``, ``survival_info.csv``) and hidden entries are ignored.
    `overrides` is ``dataset.brats.overrides``; an overridden file is taken as named even if it does not exist yet
    (the header check then reports it, naming the config key), and each override used is logged.
    """
    wanted = canonical_modalities(modalities)
    table = parse_overrides(overrides)
    root = Path(root)
    if not root.is_dir():
        raise CatvaeError(f"config key 'dataset.root': BraTS folder not found: {root}")
    subjects: list[SubjectFiles] = []
    skipped: list[SkippedSubject] = []
    folders = subject_folders(root)
    for folder in folders:
        result = _read_subject(folder, wanted, table.get(folder.name, {}))
        (subjects if isinstance(result, SubjectFiles) else skipped).append(result)
    for subject in sorted(set(table) - {p.name for p in folders}):
        log.warning("config key '%s.%s': no subject folder %s under %s; override not used",
                    OVERRIDES_KEY, subject, subject, root)
    return subjects, skipped


def _read_subject(folder: Path, wanted: list[str], overrides: Mapping[str, str]) -> SubjectFiles | SkippedSubject:
    subject = folder.name
    found: dict[str, list[Path]] = {seq: [folder / rel] for seq, rel in overrides.items()}
    # entries an override points at (or into, for a file in a sub-folder) are not off-naming files
    claimed = {PurePath(rel).parts[0] for rel in overrides.values()}
    namings: set[str] = set()
    seg_naming = ""
    problems: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name in claimed:
            continue  # OS litter (.DS_Store), never a volume; or an overridden file
        parsed = _parse_name(entry.name, subject)
        if isinstance(parsed, str):
            problems.append(f"unrecognised file {entry.name!r} ({parsed})")
            continue
        if not entry.is_file():
            problems.append(f"unrecognised entry {entry.name!r} (not a file)")
            continue
        sequence, naming = parsed
        if sequence in overrides:
            log.info("subject %s: %s ignored, %s taken from %s (config key '%s')",
                     subject, entry.name, sequence, overrides[sequence], OVERRIDES_KEY)
            continue
        found.setdefault(sequence, []).append(entry)
        namings.add(naming)
        if sequence == "seg":
            seg_naming = naming
    for sequence, paths in sorted(found.items()):
        if len(paths) > 1:
            problems.append(f"{sequence} given {len(paths)} times: {', '.join(p.name for p in paths)}")
    missing = [s for s in [*wanted, "seg"] if s not in found]
    if missing:
        problems.insert(0, "missing " + ", ".join(missing))
    if problems:
        return SkippedSubject(subject, "; ".join(problems))
    for sequence, rel in overrides.items():
        log.info("subject %s: %s from %s (config key '%s')", subject, sequence, rel, OVERRIDES_KEY)
    return SubjectFiles(
        subject=subject,
        images={s: found[s][0] for s in wanted},
        seg=found["seg"][0],
        naming="2023" if namings == {"2023"} else "2020" if namings == {"2020"} else "mixed",
        available=tuple(s for s in MODALITIES if s in found),
        overrides=dict(overrides),
        seg_naming=seg_naming,
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
