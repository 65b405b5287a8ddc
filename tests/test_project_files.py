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
