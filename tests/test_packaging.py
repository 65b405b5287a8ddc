"""What a user gets outside this checkout: the conda environment file and the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SCHEMA = "catvae/schemas/config.schema.yaml"


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


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{args}: {proc.stdout}\n{proc.stderr}"
    return proc


def test_installed_package_carries_the_schema_and_validates_a_config(tmp_path):
    """A non-editable install (wheel) holds the config schema as package data, so its `catvae` command validates a
    config with no checkout beside it. Offline: pip builds with the setuptools already installed, from a copy of
    the sources (so no build/ folder lands in the checkout)."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "catvae", src / "catvae", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    build = _run("-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-v", "-w", str(wheels),
                 str(src))
    # The licence in its SPDX form: the old `license = {text = ...}` table made setuptools warn on every build.
    assert "BuildBackendWarning" not in build.stdout + build.stderr, build.stdout + build.stderr
    (wheel,) = wheels.glob("catvae-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read(SCHEMA) == (REPO / SCHEMA).read_bytes()
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: MIT" in zf.read(metadata).decode()
        assert any(n.endswith("licenses/LICENSE") for n in zf.namelist())
        import catvae

        assert f"Version: {catvae.__version__}\n" in zf.read(metadata).decode()
    _run("-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel))

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    check = (
        "import sys, catvae.config as c; from pathlib import Path; "
        "assert Path(c.__file__).is_relative_to(Path(sys.argv[1])), c.__file__; "
        "assert Path(c.SCHEMA_PATH).is_relative_to(Path(sys.argv[1])), c.SCHEMA_PATH; "
        "print(c.load_config(sys.argv[2])['dataset']['kind'])"
    )
    proc = _run("-c", check, str(site), str(REPO / "config" / "config.yaml"), cwd=outside, env=env)
    assert proc.stdout.strip() == "phantom"
    proc = _run("-m", "catvae", "validate-config", "--config", str(REPO / "config" / "config.yaml"), cwd=outside,
                env=env)
    assert proc.stdout.strip().endswith(": valid")
