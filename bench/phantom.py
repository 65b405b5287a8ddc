"""Seconds per phantom subject (simulate + write five .nii.gz), single worker, at given shapes.

The demo's time budget (the whole study in ~15 min on 2 cores) starts with this step, so it is measured here
rather than asserted in a test. Prints wall and CPU seconds per subject (CPU time is the fairer figure on a
shared machine), the one-off template preparation per shape, and the central-slice Tumor fraction.

    .venv/bin/python bench/phantom.py --subjects 3 --shape 120 120 78 --shape 240 240 155
"""

from __future__ import annotations

import argparse
import tempfile
import time

from catvae.data.brats.phantom import _template, central_slice_tumor_fraction, write_phantom_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, action="append", help="repeatable; default 120 120 78")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for shape in args.shape or [[120, 120, 78]]:
        shape = tuple(shape)
        wall, cpu = time.perf_counter(), time.process_time()
        _template(shape)
        prep = (time.perf_counter() - wall, time.process_time() - cpu)
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu = time.perf_counter(), time.process_time()
            write_phantom_cohort(tmp, args.subjects, shape=shape, seed=args.seed, threads=1)
            per = ((time.perf_counter() - wall) / args.subjects, (time.process_time() - cpu) / args.subjects)
            frac = central_slice_tumor_fraction(tmp)
        print(
            f"shape {shape}: template prep {prep[0]:.1f} s wall / {prep[1]:.1f} s CPU (once per process); "
            f"per subject {per[0]:.2f} s wall / {per[1]:.2f} s CPU over {args.subjects} subjects; "
            f"central-slice Tumor fraction {frac:.2f}"
        )


if __name__ == "__main__":
    main()
