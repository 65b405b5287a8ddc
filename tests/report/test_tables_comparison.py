"""bench/compare_tables.py: two runs' tables agree when they differ only in the measured cost columns."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from catvae.report.tables import MEASURED_COLUMNS, write_table
from conftest import REPO

spec = importlib.util.spec_from_file_location("compare_tables", REPO / "bench" / "compare_tables.py")
compare_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_tables)


def _run(folder, train_seconds: float, ssim: float) -> None:
    frame = pd.DataFrame({"Model": ["VAE"], "Class": ["Tumor"], "SSIM": [ssim], "Training time (s)": [train_seconds],
                          "Inference (ms/image)": [0.3], "Peak memory (MB)": [900.0], "Device": ["cpu"]})
    frame.attrs["formats"] = {"SSIM": "{:.4f}", "Training time (s)": "{:.1f}"}
    (folder / "tables").mkdir(parents=True)
    write_table(frame, folder / "tables" / "generator_quality", caption="Quality", config_name="demo", seeds=[0])


@pytest.mark.parametrize("train_seconds, ssim, verdict, code", [
    (57.8, 0.6961, compare_tables.IDENTICAL, 0),
    (157.2, 0.6961, compare_tables.MEASURED_ONLY, 0),  # another machine's wall time
    (57.8, 0.6962, compare_tables.DIFFERENT, 1),  # a result moved
])
def test_only_measured_columns_may_differ(tmp_path, capsys, train_seconds, ssim, verdict, code):
    assert "Training time (s)" in MEASURED_COLUMNS
    _run(tmp_path / "a", 57.8, 0.6961)
    _run(tmp_path / "b", train_seconds, ssim)
    assert compare_tables.main([str(tmp_path / "a"), str(tmp_path / "b")]) == code
    out = capsys.readouterr().out
    for suffix in ("csv", "md", "tex"):
        assert f"generator_quality.{suffix}" in out
    assert all(line.endswith(verdict) for line in out.splitlines()[:3]), out


def test_a_missing_table_differs(tmp_path, capsys):
    _run(tmp_path / "a", 57.8, 0.6961)
    (tmp_path / "b" / "tables").mkdir(parents=True)
    assert compare_tables.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "missing" in capsys.readouterr().out
