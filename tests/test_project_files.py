"""The files a user and the Snakemake workflow catalog look for: licence, citation, config reference, catalog file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

import catvae
from catvae.config import load_schema
from catvae.config_docs import render

REPO = Path(__file__).resolve().parent.parent


def test_config_readme_is_the_rendered_schema():
    """config/README.md is generated from the schema; regenerate it with `python -m catvae.config_docs`."""
    assert (REPO / "config" / "README.md").read_text() == render(), (
        "config/README.md is stale: python -m catvae.config_docs > config/README.md")


def test_config_readme_names_every_key_with_a_meaning():
    text = (REPO / "config" / "README.md").read_text()
    for top, spec in load_schema()["properties"].items():
        keys = [f"{top}.{sub}" for sub in spec.get("properties", {})] or [top]
        for key in keys:
            assert f"| `{key}" in text, key
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows and all(not line.rstrip().endswith("|  |") for line in rows), "a key without a description"


def test_license_is_the_one_pyproject_declares():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


def test_citation_names_this_software_and_both_references():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert str(cff["version"]) == catvae.__version__ and cff["license"] == "MIT"
    titles = [ref["title"] for ref in cff["references"]]
    assert any(t.startswith("CAT-VAE: A Cross-Attention Transformer-Enhanced Variational Autoencoder") for t in titles)
    assert "Conditional Generation of Medical Images using VAE" in titles
    assert all(ref.get("authors") and ref.get("type") for ref in cff["references"])


def test_workflow_catalog_file():
    catalog = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    stack = catalog["usage"]["software-stack-deployment"]
    assert stack["conda"] is True  # every rule names environment.yml (conda:), so --use-conda works
    assert set(catalog["usage"]["mandatory-flags"]) == {"desc", "flags"}
    assert catalog["usage"]["report"] is True


def _modules() -> list[str]:
    return sorted(p.relative_to(REPO).as_posix() for p in (REPO / "catvae").rglob("*.py")
                  if p.name not in ("__init__.py", "__main__.py"))


def test_architecture_lists_every_module():
    """docs/ARCHITECTURE.md has a row for every module of the package (a new module needs one)."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    missing = [m for m in _modules() if f"`{m}`" not in text]
    assert not missing, f"docs/ARCHITECTURE.md lists no row for {missing}"


def test_unit_tests_are_found_from_the_module_name():
    """tests/<package>/ mirrors catvae/<package>/: every test file of a package folder tests a module or aspect of that
    package, named `test_<module>[_<aspect>].py` or `test_package.py` (rules that span the package), and every folder
    under tests/ (the end-to-end `workflow/` and `cluster/` apart) is a package of catvae."""
    packages = {p.relative_to(REPO / "catvae").as_posix() for p in (REPO / "catvae").rglob("*") if p.is_dir()
                and (p / "__init__.py").is_file()}
    end_to_end = {"workflow", "cluster"}
    for folder in sorted(p for p in (REPO / "tests").rglob("*") if p.is_dir() and p.name != "__pycache__"):
        name = folder.relative_to(REPO / "tests").as_posix()
        if name.split("/")[0] in end_to_end:
            continue
        assert name in packages, f"tests/{name}/ mirrors no package catvae/{name}/"
        modules = {p.stem for p in (REPO / "catvae" / name).glob("*.py")} | {"package"}
        for test in folder.glob("test_*.py"):
            stem = test.stem.removeprefix("test_")
            assert any(stem == m or stem.startswith(m + "_") for m in modules), (
                f"{test.relative_to(REPO)} names no module of catvae/{name}/")
