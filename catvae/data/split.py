"""Train / validation / test split of a slice manifest: by subject (never by slice), stratified, seeded.

Slices of one brain are near-duplicates, so a slice-level split would leak the test patients into training and
flatter every arm. The split therefore assigns whole subjects. Subjects are stratified by their class mix (for
BraTS: the share of Tumor slices, binned), so each partition gets a similar mix as far as whole subjects allow;
a final pass makes every class appear in train and test (and val) whenever enough subjects hold it.
Datasets without subject ids split by image (`group_column=None`), stratified by class.

Subject-level k-fold cross-validation (`evaluation.folds: k`, k > 1): subjects are dealt into k test folds the same
stratified way (so every subject is tested exactly once, and each fold gets a similar class mix); within fold f the
subjects of the other folds are split into train and validation in the ratio `train : val` of `dataset.split`, so a
fold's validation subjects always come from its own training folds. `dataset.split.test` does not apply then (each
fold tests 1/k of the subjects). One fold is one `split.csv` with the usual `partition` column, so every later
stage reads a fold exactly as it reads the single split; k = 1 is the single split itself.

Deterministic: the same manifest (in any row order), fractions, seed (and k) give the same split; every fold's file
is computed from the same fold assignment, so the files of separate jobs agree.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from catvae.data.images import read_manifest
from catvae.errors import CatvaeError
from catvae.io import write_csv

log = logging.getLogger("catvae.data.split")

PARTITIONS = ("train", "val", "test")
#: The columns every stage after the split reads (the manifest's columns plus `partition`).
SPLIT_COLUMNS = ("subject", "modality", "class", "path", "partition")


def read_split(split_csv: str | os.PathLike, classes: Sequence[str] | None = None) -> pd.DataFrame:
    """The one reader of `split.csv`: checked by `check_split`, with `abspath` (paths relative to the file's folder)."""
    return check_split(read_manifest(split_csv, required=SPLIT_COLUMNS), classes, source=str(split_csv))


def check_split(split: pd.DataFrame, classes: Sequence[str] | None = None, source: str = "split.csv") -> pd.DataFrame:
    """Check a split table's columns, partitions and (when given) classes; return it with `modality` as text and
    `abspath` set (a frame built by hand may carry absolute paths in `path`, which then serve as `abspath`).

    `classes`: the configured classes, at least two distinct names; every class in the table must be one of them.
    """
    missing = [c for c in SPLIT_COLUMNS if c not in split.columns]
    if missing:
        raise CatvaeError(f"{source} lacks column(s) {missing}")
    bad = sorted(set(split["partition"].astype(str)) - set(PARTITIONS))
    if bad:
        raise CatvaeError(f"{source} has unknown partition value(s) {bad}; expected {', '.join(PARTITIONS)}")
    if classes is not None:
        if len(set(classes)) != len(classes) or len(classes) < 2:
            raise CatvaeError(f"classifier classes must be at least 2 distinct names, got {list(classes)}")
        unknown = sorted(set(split["class"].astype(str)) - set(classes))
        if unknown:
            raise CatvaeError(f"{source} has class(es) {unknown} not in the configured classes {list(classes)}")
    split = split.assign(modality=split["modality"].fillna("").astype(str))
    if "abspath" not in split.columns:
        split = split.assign(abspath=split["path"].astype(str))
    return split


def validate_fractions(fractions: Mapping[str, Any]) -> dict[str, float]:
    """{train, val, test} fractions, each >= 0, train and test > 0, summing to 1 (within 1e-6); val may be absent."""
    unknown = sorted(set(fractions) - set(PARTITIONS))
    if unknown:
        raise CatvaeError(f"config key 'dataset.split.{unknown[0]}': unknown key (fractions are {list(PARTITIONS)})")
    out: dict[str, float] = {}
    for key in PARTITIONS:
        value = fractions.get(key, 0.0)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CatvaeError(f"config key 'dataset.split.{key}': {value!r} is not a number") from None
        if isinstance(value, bool) or not math.isfinite(number) or number < 0:
            raise CatvaeError(f"config key 'dataset.split.{key}': {value!r} must be a number >= 0")
        out[key] = number
    for key in ("train", "test"):
        if out[key] <= 0:
            raise CatvaeError(f"config key 'dataset.split.{key}': must be > 0 (got {out[key]})")
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise CatvaeError(
            f"config keys 'dataset.split.train' + 'dataset.split.val' + 'dataset.split.test' sum to {total:g}, not 1"
        )
    return out


def split_manifest(
    manifest: pd.DataFrame,
    fractions: Mapping[str, float],
    seed: int,
    group_column: str | None = "subject",
) -> pd.DataFrame:
    """A copy of `manifest` with a `partition` column (train / val / test); see the module docstring."""
    frac = validate_fractions(fractions)
    units = _units(manifest, group_column)
    assignment = _assign(units, frac, np.random.default_rng(seed))
    return _with_partition(manifest, units, assignment, group_column)


def fold_split(
    manifest: pd.DataFrame,
    fractions: Mapping[str, float],
    seed: int,
    *,
    fold: int,
    folds: int,
    group_column: str | None = "subject",
) -> pd.DataFrame:
    """Fold `fold` (0-based) of a `folds`-fold subject-level cross-validation, as a frame with `partition`.

    `folds == 1` is `split_manifest` (the single train/val/test split). Otherwise the fold's test units are its
    share of a stratified deal of all units into `folds` groups (seeded by `seed` alone, so every fold sees the same
    deal), and the other units are split into train / val in the ratio of `fractions` (seeded by `seed` and `fold`).
    """
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 1:
        raise CatvaeError(f"config key 'evaluation.folds' must be a positive integer, got {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < folds:
        raise CatvaeError(f"fold {fold!r} is not one of 0..{folds - 1} (config key 'evaluation.folds' is {folds})")
    if folds == 1:
        return split_manifest(manifest, fractions, seed, group_column)
    frac = validate_fractions(fractions)
    units = _units(manifest, group_column)
    n = len(units.names)
    if n < folds:
        raise CatvaeError(
            f"config key 'evaluation.folds' is {folds} but there are only {n} "
            f"{'subjects' if group_column else 'images'} to deal into test folds"
        )
    test_fold = _deal_folds(units, folds, np.random.default_rng(seed))
    rest = np.flatnonzero(test_fold != fold)
    development = frac["train"] + frac["val"]
    inner = {"train": frac["train"] / development, "val": frac["val"] / development, "test": 0.0}
    assignment = np.full(n, "test", dtype=object)
    assignment[rest] = _assign(units.subset(rest), inner, np.random.default_rng([int(seed), int(fold)]))
    return _with_partition(manifest, units, assignment, group_column)


@dataclass
class _Units:
    """The units a split assigns (subjects, or images), with what stratification needs to know about each."""

    groups: np.ndarray  # the unit of every manifest row
    names: np.ndarray  # unit names, sorted
    presence: np.ndarray  # [unit, class]: the unit has a slice of the class
    keys: list[tuple[int, ...]]  # stratum of each unit (binned class shares)
    classes: list

    def subset(self, index: np.ndarray) -> "_Units":
        return _Units(self.groups, self.names[index], self.presence[index], [self.keys[i] for i in index],
                      self.classes)


def _units(manifest: pd.DataFrame, group_column: str | None) -> _Units:
    """Check the manifest and tabulate its units (whole subjects, or single images) with their class mix."""
    if "class" not in manifest.columns:
        raise CatvaeError("manifest has no 'class' column")
    if manifest.empty:
        raise CatvaeError("manifest is empty: nothing to split")
    if group_column is not None:
        if group_column not in manifest.columns:
            raise CatvaeError(f"manifest has no {group_column!r} column to split by")
        if manifest[group_column].isna().any():
            raise CatvaeError(f"manifest column {group_column!r} has empty values; split by image instead")
        groups = manifest[group_column].astype(str).to_numpy()
    else:
        groups = np.array([f"{i:012d}" for i in range(len(manifest))])  # one unit per row, stable order
    classes = manifest["class"].astype(str).to_numpy()

    table = pd.crosstab(groups, classes).sort_index()  # [unit, class] slice counts
    if len(table) < 2:
        raise CatvaeError(f"need at least 2 {'subjects' if group_column else 'images'} to split, got {len(table)}")
    shares = table.to_numpy() / table.to_numpy().sum(axis=1, keepdims=True)
    keys = [tuple(int(b) for b in row) for row in _share_bins(shares)]
    return _Units(groups, table.index.to_numpy(), table.to_numpy() > 0, keys, list(table.columns))


def _assign(units: _Units, frac: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Partition of each unit: stratified deal to whole-unit sizes, then swaps so every class reaches each part."""
    sizes = _apportion(len(units.names), frac)
    assignment = _stratified_assign(units.keys, sizes, rng)
    _cover_classes(units.presence, assignment, [p for p in ("test", "train", "val") if sizes[p] > 0], rng,
                   units.classes)
    return assignment


def _deal_folds(units: _Units, folds: int, rng: np.random.Generator) -> np.ndarray:
    """Test fold (0..folds-1) of each unit: folds as equal as whole units allow, stratified, every class in each."""
    n = len(units.names)
    sizes = {f: n // folds + (1 if f < n % folds else 0) for f in range(folds)}
    assignment = _stratified_assign(units.keys, sizes, rng)
    _cover_classes(units.presence, assignment, list(range(folds)), rng, units.classes)
    return assignment


def _with_partition(manifest: pd.DataFrame, units: _Units, assignment: np.ndarray,
                    group_column: str | None) -> pd.DataFrame:
    by_unit = dict(zip(units.names, assignment))
    out = manifest.copy()
    out["partition"] = [by_unit[g] for g in units.groups]
    _log_split(out, group_column, len(units.names))
    return out


def write_split(
    manifest_csv: str | os.PathLike,
    split_csv: str | os.PathLike,
    fractions: Mapping[str, float],
    seed: int,
    by: str = "subject",
    *,
    fold: int = 0,
    folds: int = 1,
) -> pd.DataFrame:
    """Read `manifest_csv`, split it (`by`: "subject" or "image") and write `split_csv` atomically.

    With `folds` > 1 the file is fold `fold` of a subject-level k-fold cross-validation (see `fold_split`).
    `path` values stay valid: they are rewritten relative to `split_csv`'s folder when it differs from the manifest's.
    """
    if by not in ("subject", "image"):
        raise CatvaeError(f"split by {by!r}: use 'subject' or 'image'")
    manifest_csv, split_csv = Path(manifest_csv), Path(split_csv)
    manifest = read_manifest(manifest_csv, required=()).drop(columns="abspath", errors="ignore")
    if "partition" in manifest.columns:
        # The dataset ships its own split (MedMNIST): keep it, so results compare with published numbers.
        bad = sorted(set(manifest["partition"]) - {"train", "val", "test"})
        if bad or not {"train", "test"} <= set(manifest["partition"]):
            raise CatvaeError(f"{manifest_csv}: preset 'partition' column needs train/test (and val) only, found {bad}")
        if folds != 1:
            raise CatvaeError(
                f"config key 'evaluation.folds' is {folds}, but {manifest_csv} ships its own split (MedMNIST); "
                "cross-validation would discard it: use evaluation.folds: 1"
            )
        split = manifest.copy()
    else:
        try:
            split = fold_split(manifest, fractions, seed, fold=fold, folds=folds,
                               group_column="subject" if by == "subject" else None)
        except CatvaeError as exc:
            raise CatvaeError(f"{manifest_csv}: {exc}") from exc
    src, dst = manifest_csv.parent.resolve(), split_csv.parent.resolve()
    if "path" in split.columns and src != dst:
        split["path"] = [os.path.relpath(src / p, dst) for p in split["path"]]
    write_csv(split_csv, split)
    return split


def _share_bins(shares: np.ndarray) -> np.ndarray:
    """Bin each class share: 0 (absent), 1-3 (thirds of (0, 1)), 4 (all slices of that class)."""
    bins = 1 + np.minimum(2, np.floor(shares * 3)).astype(int)
    bins[shares == 0] = 0
    bins[shares == 1] = 4
    return bins


def _apportion(n: int, frac: dict[str, float]) -> dict[str, int]:
    """Whole-unit partition sizes for `n` units (largest remainder), with >= 1 in train, test, and val if asked."""
    raw = {p: frac[p] * n for p in PARTITIONS}
    sizes = {p: int(math.floor(raw[p])) for p in PARTITIONS}
    for p in sorted(PARTITIONS, key=lambda q: (-(raw[q] - sizes[q]), PARTITIONS.index(q)))[: n - sum(sizes.values())]:
        sizes[p] += 1
    wanted = [p for p in ("test", "train", "val") if frac[p] > 0]
    for p in wanted:
        if sizes[p] == 0:
            donor = max(PARTITIONS, key=lambda q: sizes[q])
            if sizes[donor] > 1:
                sizes[donor] -= 1
                sizes[p] += 1
    return sizes


def _stratified_assign(keys: list[tuple[int, ...]], sizes: dict[Any, int], rng: np.random.Generator) -> np.ndarray:
    """Part per unit (parts are the keys of `sizes`, in order): units ordered by stratum (random within), then dealt
    a sequence that keeps every prefix (and so every stratum's block) close to the target shares."""
    n = len(keys)
    parts = list(sizes)
    rank = rng.permutation(n)
    order = sorted(range(n), key=lambda i: (keys[i], rank[i]))
    assigned = dict.fromkeys(parts, 0)
    sequence = []
    for i in range(n):
        open_parts = [p for p in parts if assigned[p] < sizes[p]]
        p = max(open_parts, key=lambda q: (sizes[q] * (i + 1) / n - assigned[q], -parts.index(q)))
        assigned[p] += 1
        sequence.append(p)
    out = np.empty(n, dtype=object)
    out[order] = sequence
    return out


def _cover_classes(
    presence: np.ndarray, assignment: np.ndarray, parts: list, rng: np.random.Generator, classes: list
) -> None:
    """Swap units (sizes unchanged) so each class has a unit in every one of `parts` (in that order of priority)
    wherever enough units hold it."""

    def holders(c: int, part: str) -> np.ndarray:
        return np.flatnonzero(presence[:, c] & (assignment == part))

    def removable(unit: int, part: str, keep: int | None = None) -> bool:
        # moving `unit` out of `part` must not take away the last unit of any class `part` has
        return all(c == keep or len(holders(c, part)) > 1 for c in np.flatnonzero(presence[unit]))

    for c in range(presence.shape[1]):
        for part in parts:
            if len(holders(c, part)):
                continue
            donors = sorted((q for q in parts if q != part), key=lambda q: -len(holders(c, q)))
            donor = next((q for q in donors if len(holders(c, q)) > 1), None)
            if donor is None:
                log.warning("class %s has too few units to appear in partition %s", classes[c], part)
                continue
            incoming = [u for u in holders(c, donor) if removable(u, donor, keep=None)]
            outgoing = [u for u in np.flatnonzero(assignment == part) if removable(u, part)]
            if not incoming or not outgoing:
                log.warning("class %s: no swap puts it in partition %s without emptying another class",
                            classes[c], part)
                continue
            u_in, u_out = int(rng.choice(incoming)), int(rng.choice(outgoing))
            assignment[u_in], assignment[u_out] = part, donor


def _log_split(split: pd.DataFrame, group_column: str | None, n_units: int) -> None:
    counts = pd.crosstab(split["partition"], split["class"])
    unit = "subjects" if group_column else "images"
    parts = "; ".join(
        f"{p}: " + ", ".join(f"{c} {int(counts.at[p, c])}" for c in counts.columns)
        for p in PARTITIONS
        if p in counts.index
    )
    log.info("split %d %s into %s", n_units, unit, parts)
