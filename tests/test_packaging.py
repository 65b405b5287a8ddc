"""What a user gets outside this checkout: the conda environment file and the installed package."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _pip_requirements() -> list[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = [d for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml must have one pip section"
    return pip[0]["pip"]


def test_conda_environment_lists_the_package_dependencies():
    """The conda file repeats pyproject's dependency list (conda cannot read pyproject); the two must agree."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert _pip_requirements() == project["dependencies"]


def test_conda_environment_works_from_a_copy():
    """Snakemake's --use-conda builds the environment from its own copy of the file: no path may be relative."""
    for requirement in _pip_requirements():
        assert not requirement.startswith(("-e", "-r", ".", "/")), requirement
