"""provenance.json: config, seeds, versions, platform, code revision (git and non-git), UTC timestamp."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
from datetime import datetime, timezone

import pytest

from catvae.errors import CatvaeError
from catvae.report.provenance import PACKAGES, code_revision, package_versions, write_provenance


def test_write_provenance_records_the_run(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text("config_name: tiny\nseeds: [0, 1]\n")
    out = tmp_path / "results" / "provenance.json"
    before = datetime.now(timezone.utc).replace(microsecond=0)
    returned = write_provenance(out, config={"config_name": "tiny", "seeds": [0, 1], "device": "auto"},
                                seeds=[0, 1], config_files=[str(config_file)], extra={"cores": 2})
    record = json.loads(out.read_text())
    assert record == json.loads(json.dumps(returned, sort_keys=True))
    assert record["config"] == {"config_name": "tiny", "seeds": [0, 1], "device": "auto"}
    assert record["config_name"] == "tiny" and record["seeds"] == [0, 1]
    assert record["config_files"] == [
        {"path": str(config_file), "sha256": hashlib.sha256(config_file.read_bytes()).hexdigest()}]
    assert record["extra"] == {"cores": 2}
    assert set(record["packages"]) == set(PACKAGES)
    assert record["packages"]["pandas"] == importlib.metadata.version("pandas")
    assert record["python"]["version"].count(".") == 2
    assert record["platform"]["system"]
    assert "cuda_device" in record  # None on this CPU machine, a dict on a GPU node
    assert set(record["code_revision"]) == {"commit", "dirty"}
    stamp = datetime.fromisoformat(record["timestamp_utc"])
    assert stamp.utcoffset().total_seconds() == 0 and stamp >= before


def test_package_versions_marks_missing_packages():
    versions = package_versions(["numpy", "surely-not-an-installed-distribution"])
    assert versions["numpy"] == importlib.metadata.version("numpy")
    assert versions["surely-not-an-installed-distribution"] is None


def test_code_revision_unknown_outside_git(tmp_path):
    assert code_revision(tmp_path) == {"commit": "unknown", "dirty": "unknown"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_code_revision_of_a_checkout(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert code_revision(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("changed\n")
    assert code_revision(tmp_path) == {"commit": head, "dirty": True}


def test_write_provenance_rejects_bad_input(tmp_path):
    with pytest.raises(CatvaeError, match="missing.yaml: config file cannot be read"):
        write_provenance(tmp_path / "p.json", config={}, seeds=[0], config_files=[str(tmp_path / "missing.yaml")])
    with pytest.raises(CatvaeError, match="seeds must be integers"):
        write_provenance(tmp_path / "p.json", config={}, seeds=["0"])
    assert not (tmp_path / "p.json").exists()
