"""Train / validation / test split of a slice manifest: by subject (never by slice), stratified, seeded.

Slices of one brain are near-duplicates, so a slice-level split would leak the test patients into training and
flatter every arm. The split therefore assigns whole subjects. Subjects are stratified by their class mix (for
BraTS: the share of Tumor slices, binned), so each partition gets a similar mix as far as whole subjects allow;
a final pass makes every class appear in train and test (and val) whenever enough subjects hold it.
Datasets without subject ids split by image (`group_column=None`), stratified by class.

Deterministic: the same manifest (in any row order), fractions and seed give the same split.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from catvae.errors import CatvaeError
from catvae.io import write_csv

log = logging.getLogger("catvae.data.split")

PARTITIONS = ("train", "val", "test")


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

    table = pd.crosstab(pd.Series(groups, name="unit"), pd.Series(classes, name="class")).sort_index()
    units = table.index.to_numpy()
    if len(units) < 2:
        raise CatvaeError(f"need at least 2 {'subjects' if group_column else 'images'} to split, got {len(units)}")
    presence = table.to_numpy() > 0
    shares = table.to_numpy() / table.to_numpy().sum(axis=1, keepdims=True)
    keys = [tuple(int(b) for b in row) for row in _share_bins(shares)]

    rng = np.random.default_rng(seed)
    sizes = _apportion(len(units), frac)
    assignment = _stratified_assign(keys, sizes, rng)
    _cover_classes(presence, assignment, sizes, rng, list(table.columns))

    by_unit = dict(zip(units, assignment))
    out = manifest.copy()
    out["partition"] = [by_unit[g] for g in groups]
    _log_split(out, group_column, len(units))
    return out


def write_split(
    manifest_csv: str | os.PathLike,
    split_csv: str | os.PathLike,
    fractions: Mapping[str, float],
    seed: int,
    by: str = "subject",
) -> pd.DataFrame:
    """Read `manifest_csv`, split it (`by`: "subject" or "image") and write `split_csv` atomically.

    `path` values stay valid: they are rewritten relative to `split_csv`'s folder when it differs from the manifest's.
    """
    if by not in ("subject", "image"):
        raise CatvaeError(f"split by {by!r}: use 'subject' or 'image'")
    manifest_csv, split_csv = Path(manifest_csv), Path(split_csv)
    if not manifest_csv.is_file():
        raise CatvaeError(f"manifest not found: {manifest_csv}")
    try:
        manifest = pd.read_csv(
            manifest_csv, dtype={"subject": str, "class": str}, keep_default_na=False, na_values=[""]
        )
    except Exception as exc:  # pandas raises several types for a corrupt file
        raise CatvaeError(f"cannot read manifest {manifest_csv}: {exc}") from exc
    if "partition" in manifest.columns:
        # The dataset ships its own split (MedMNIST): keep it, so results compare with published numbers.
        bad = sorted(set(manifest["partition"]) - {"train", "val", "test"})
        if bad or not {"train", "test"} <= set(manifest["partition"]):
            raise CatvaeError(f"{manifest_csv}: preset 'partition' column needs train/test (and val) only, found {bad}")
        split = manifest.copy()
    else:
        try:
            split = split_manifest(manifest, fractions, seed, group_column="subject" if by == "subject" else None)
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


def _stratified_assign(keys: list[tuple[int, ...]], sizes: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """Partition per unit: units ordered by stratum (random within), then dealt a sequence that keeps every prefix
    (and so every stratum's block) close to the target shares."""
    n = len(keys)
    rank = rng.permutation(n)
    order = sorted(range(n), key=lambda i: (keys[i], rank[i]))
    assigned = dict.fromkeys(PARTITIONS, 0)
    sequence = []
    for i in range(n):
        open_parts = [p for p in PARTITIONS if assigned[p] < sizes[p]]
        p = max(open_parts, key=lambda q: (sizes[q] * (i + 1) / n - assigned[q], -PARTITIONS.index(q)))
        assigned[p] += 1
        sequence.append(p)
    out = np.empty(n, dtype=object)
    out[order] = sequence
    return out


def _cover_classes(
    presence: np.ndarray, assignment: np.ndarray, sizes: dict[str, int], rng: np.random.Generator, classes: list
) -> None:
    """Swap units (sizes unchanged) so each class has a unit in test, train and val wherever enough units hold it."""
    parts = [p for p in ("test", "train", "val") if sizes[p] > 0]

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
