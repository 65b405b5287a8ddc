"""Publishing a prepared dataset atomically: slices folder, discarded.csv, then manifest.csv last.

Shared by every dataset kind (BraTS extraction, class folders, MedMNIST), so a crash in any of them never leaves a
manifest that looks complete, and stale images of an earlier run never mix with a new manifest.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from catvae.errors import CatvaeError
from catvae.io import write_csv

Rows = list[list[Any]]


@dataclass
class Published:
    """What `publish_slices` wrote."""

    manifest: pd.DataFrame
    discarded: pd.DataFrame
    manifest_path: Path
    discarded_path: Path
    reasons: dict[str, int]


def publish_slices(
    out_dir: Path,
    fill_slices: Callable[[Path], tuple[Rows, Rows]],
    *,
    manifest_columns: Iterable[str],
    discarded_columns: Iterable[str],
    empty_message: Callable[[int, dict[str, int], Path], str],
) -> Published:
    """Run `fill_slices(tmp_dir)` -> (manifest rows, discarded rows) and publish the result.

    A `manifest.csv` of an earlier run is removed first. PNGs go into a hidden temporary folder that replaces
    `slices/` only once every image is written;
    `discarded.csv` is written before an empty result raises CatvaeError(`empty_message(n_discarded, reasons,
    discarded_path)`), so it says why nothing is left; `manifest.csv` is written last.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.csv").unlink(missing_ok=True)  # an earlier run's: never left beside this run's reports
    tmp_slices = Path(tempfile.mkdtemp(prefix=".slices.", dir=out_dir))
    try:
        kept_rows, discarded_rows = fill_slices(tmp_slices)
        manifest = pd.DataFrame(kept_rows, columns=list(manifest_columns))
        discarded = pd.DataFrame(discarded_rows, columns=list(discarded_columns))
        discarded_path = out_dir / "discarded.csv"
        write_csv(discarded_path, discarded)
        reasons = dict(Counter(str(r).split(":")[0] for r in discarded["reason"]))
        if manifest.empty:
            raise CatvaeError(empty_message(len(discarded), reasons, discarded_path))
        slices = out_dir / "slices"
        if slices.exists():
            shutil.rmtree(slices)
        os.replace(tmp_slices, slices)
        manifest_path = out_dir / "manifest.csv"
        write_csv(manifest_path, manifest)
    finally:
        if tmp_slices.exists():
            shutil.rmtree(tmp_slices, ignore_errors=True)
    return Published(manifest, discarded, manifest_path, discarded_path, reasons)
