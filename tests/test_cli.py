"""The `catvae` command: each data step runs outside Snakemake, and bad input exits non-zero with a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from catvae.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", ["phantom", "extract", "split", "train-generator", "synthesise", "classify",
                                     "tstr"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--config" in capsys.readouterr().out


def test_phantom_extract_split_chain(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"image_size": 16, "selection": {"mode": "center", "k": 2}}}))
    cohort, data = tmp_path / "cohort", tmp_path / "data"
    assert main(["phantom", "--config", str(config), "--out", str(cohort), "--subjects", "4",
                 "--shape", "32", "40", "24"]) == 0
    assert len(list(cohort.glob("*/*_seg.nii.gz"))) == 4
    assert main(["extract", "--config", str(config), "--root", str(cohort), "--out", str(data)]) == 0
    manifest = pd.read_csv(data / "manifest.csv")
    assert len(manifest) > 0 and set(manifest["plane"]) <= {"axial", "sagittal", "coronal"}
    assert main(["split", "--config", str(config), "--manifest", str(data / "manifest.csv"),
                 "--out", str(data / "split.csv")]) == 0
    split = pd.read_csv(data / "split.csv")
    assert (split.groupby("subject")["partition"].nunique() == 1).all()


def test_bad_input_exits_nonzero_naming_the_problem(tmp_path):
    missing = tmp_path / "nowhere"
    proc = subprocess.run(
        [sys.executable, "-m", "catvae", "extract", "--config", str(REPO / "config" / "config.yaml"),
         "--root", str(missing), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert proc.returncode == 1
    assert "nowhere" in proc.stderr
    assert not (tmp_path / "out" / "manifest.csv").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"dataset": {"kind": "dicom"}}))
    proc = subprocess.run([sys.executable, "-m", "catvae", "validate-config", "--config", str(bad)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "dataset.kind" in proc.stderr
