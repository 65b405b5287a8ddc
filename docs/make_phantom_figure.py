"""Regenerate docs/phantom_slices.png: what the embedded phantom cohort looks like.

Writes a few subjects at a moderate shape into a temporary folder and renders, per subject, the central
FLAIR slice of each plane with the BraTS labels overlaid (the slices the paper's `center` rule keeps).

    .venv/bin/python docs/make_phantom_figure.py [--out docs/phantom_slices.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from catvae.data.brats.phantom import render_phantom_preview, write_phantom_cohort  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).with_name("phantom_slices.png")))
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--shape", type=int, nargs=3, default=[160, 160, 104])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_phantom_cohort(tmp, args.subjects, shape=tuple(args.shape), seed=args.seed)
        render_phantom_preview(tmp, args.out, n_subjects=args.subjects)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
