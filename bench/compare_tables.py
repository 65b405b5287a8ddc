"""Did a change move a study's results? Compare the tables of two finished runs, file by file.

    python bench/compare_tables.py results/phantom /path/to/other/results/phantom

Every file under `tables/` of the first run must exist in the second. A file is reported *identical* when its bytes
are; otherwise, for a table whose only differences are in the cost columns measured on the machine that ran it
(`catvae.report.tables.MEASURED_COLUMNS`: training time, sampling ms/image, peak memory), *identical but for the
measured columns*, checked on the CSV (the Markdown and LaTeX are the same rows, formatted; their lines are compared
with those columns' cells blanked); anything else is a *difference*, printed. Exits 1 when any file differs beyond the
measured columns, so a refactor that must not change results can be checked by running the study before and after.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catvae.report.tables import MEASURED_COLUMNS  # noqa: E402

IDENTICAL, MEASURED_ONLY, DIFFERENT = "identical", "identical but for the measured columns", "DIFFERENT"


def _csv_without_measured(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.drop(columns=[c for c in frame.columns if c in MEASURED_COLUMNS])


def _table_cells_blanked(path: Path) -> list[str]:
    """The file's lines with the measured columns' cells blanked (Markdown `|` and LaTeX `&` rows)."""
    lines = path.read_text().splitlines()
    separator = "|" if path.suffix == ".md" else "&"
    header = next((line for line in lines if any(c in line for c in MEASURED_COLUMNS)), None)
    if header is None:
        return lines
    cells = [c.strip() for c in header.split(separator)]
    measured = {i for i, c in enumerate(cells) if re.sub(r"\\textbf\{(.*)\}", r"\1", c) in MEASURED_COLUMNS}
    blanked = []
    for line in lines:
        parts = line.split(separator)
        if len(parts) == len(cells):
            parts = ["" if i in measured else p for i, p in enumerate(parts)]
        blanked.append(separator.join(parts))
    return blanked


def compare_file(first: Path, second: Path) -> str:
    if first.read_bytes() == second.read_bytes():
        return IDENTICAL
    if first.suffix == ".csv":
        try:
            pd.testing.assert_frame_equal(_csv_without_measured(first), _csv_without_measured(second),
                                          check_exact=True)
            return MEASURED_ONLY
        except AssertionError:
            return DIFFERENT
    if first.suffix in (".md", ".tex") and _table_cells_blanked(first) == _table_cells_blanked(second):
        return MEASURED_ONLY
    return DIFFERENT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first", type=Path, help="results/<dataset.name> of one run")
    parser.add_argument("second", type=Path, help="results/<dataset.name> of the other run")
    args = parser.parse_args(argv)
    tables = sorted((args.first / "tables").glob("*"))
    if not tables:
        parser.error(f"no tables under {args.first / 'tables'}")
    verdicts = {}
    for path in tables:
        other = args.second / "tables" / path.name
        verdicts[path.name] = compare_file(path, other) if other.is_file() else DIFFERENT + " (missing)"
        print(f"{path.name:40s} {verdicts[path.name]}")
    different = [name for name, verdict in verdicts.items() if verdict.startswith(DIFFERENT)]
    print(f"{len(tables) - len(different)} of {len(tables)} table files agree"
          + (f"; differing: {', '.join(different)}" if different else ""))
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
