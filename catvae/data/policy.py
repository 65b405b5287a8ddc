"""What happens to a broken subject, image or file: the `dataset.on_error` and `dataset.nonfinite` policies.

Every dataset kind checks its whole input in one pass and collects every problem before deciding, because a
researcher with 369 subjects should not have to fix one file per run:

- ``on_error: stop`` (default): after the pass, one error lists *every* broken unit with its reason, and nothing
  that looks complete is written (no ``manifest.csv``, no ``slices/``).
- ``on_error: skip``: the broken units are left out, logged, and listed in ``skipped_subjects.csv`` with the
  reason; the rest of the dataset is prepared as if they were not there.

``nonfinite`` decides whether NaN/Inf voxels make a volume broken (``reject``, default) or are used as 0 with
their count logged (``zero``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterable, Sequence

import pandas as pd

from catvae.config import defaults, schema_enum
from catvae.errors import CatvaeError
from catvae.io import write_csv

ON_ERROR = schema_enum("dataset", "on_error")
NONFINITE = schema_enum("dataset", "nonfinite")
SKIPPED_COLUMNS = ["subject", "reason"]


@dataclass(frozen=True)
class SkippedSubject:
    """A unit (subject, image or file) that is not used, and why (a row of ``skipped_subjects.csv``)."""

    subject: str
    reason: str


def parse_choice(value: object, choices: Sequence[str], key: str) -> str:
    """`value` if it is one of `choices`, else CatvaeError naming the config key."""
    if value not in choices:
        raise CatvaeError(f"config key '{key}': {value!r} is not one of {list(choices)}")
    return str(value)


def parse_on_error(value: object = None) -> str:
    """The validated `dataset.on_error` value (stop | skip); None is the schema's default."""
    return parse_choice(defaults("dataset")["on_error"] if value is None else value, ON_ERROR, "dataset.on_error")


def parse_nonfinite(value: object = None) -> str:
    """The validated `dataset.nonfinite` value (reject | zero); None is the schema's default."""
    return parse_choice(defaults("dataset")["nonfinite"] if value is None else value, NONFINITE, "dataset.nonfinite")


def settle(broken: Iterable[SkippedSubject], on_error: str, what: str, logger: logging.Logger,
           unit: str = "subject") -> list[SkippedSubject]:
    """Apply the policy to every broken unit found in one pass.

    ``stop``: raise one CatvaeError listing all of them (sorted by id), naming `what` (the config key or folder
    they come from) and the way out. ``skip``: log each one and return them for ``skipped_subjects.csv``.
    """
    broken = sorted(broken, key=lambda b: b.subject)
    if not broken:
        return []
    if parse_on_error(on_error) == "stop":
        lines = "\n".join(f"  {b.subject}: {b.reason}" for b in broken)
        raise CatvaeError(
            f"{what}: {len(broken)} broken {unit}(s), nothing was written:\n{lines}\n"
            f"Fix them, or set config key 'dataset.on_error: skip' to leave them out "
            f"(they are then listed in skipped_subjects.csv)."
        )
    for b in broken:
        logger.warning("skipped %s %s (dataset.on_error: skip): %s", unit, b.subject, b.reason)
    return broken


def write_skipped(path: str | os.PathLike, skipped: Iterable[SkippedSubject]) -> None:
    """``skipped_subjects.csv``: one row per unit left out, with the reason (sorted by id, written atomically)."""
    rows = sorted((s.subject, s.reason) for s in skipped)
    write_csv(path, pd.DataFrame(rows, columns=SKIPPED_COLUMNS))


__all__ = [
    "NONFINITE",
    "ON_ERROR",
    "SKIPPED_COLUMNS",
    "SkippedSubject",
    "parse_nonfinite",
    "parse_on_error",
    "settle",
    "write_skipped",
]
