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


def test_version(capsys):
    import catvae

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"catvae {catvae.__version__}"


def _options(parser) -> dict:
    """Every subcommand's options, as {subcommand: [argparse actions]}."""
    import argparse

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: [a for a in p._actions if a.option_strings and a.dest != "help"] for name, p in sub.choices.items()}


def test_every_option_has_help():
    from catvae.cli import build_parser

    missing = [f"{name} {action.option_strings[0]}" for name, actions in _options(build_parser()).items()
               for action in actions if not action.help]
    assert not missing, f"options without help: {missing}"


@pytest.mark.parametrize("command", ["validate-config", "split"])
def test_no_threads_option_where_nothing_uses_it(command):
    from catvae.cli import build_parser

    assert "--threads" not in [s for a in _options(build_parser())[command] for s in a.option_strings]


def test_subcommands_run_outside_the_checkout_on_schema_defaults(tmp_path):
    """No config/config.yaml in the working folder: the schema's defaults, not a 'file not found'."""
    from catvae.config import dump_config, validate_config

    proc = subprocess.run([sys.executable, "-m", "catvae", "validate-config", "--show"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == dump_config(validate_config({}))
    proc = subprocess.run([sys.executable, "-m", "catvae", "phantom", "--out", "cohort", "--subjects", "2",
                           "--shape", "24", "28", "20"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "cohort").glob("*/*_flair.nii.gz"))) == 2


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
