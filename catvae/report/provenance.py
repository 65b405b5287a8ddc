"""provenance.json: what produced a run's results, so a number in a table can be traced and re-made.

It records the resolved config, the seeds, the config files (with SHA-256, since a path alone does not say
what the file held), Python and package versions, the platform, the CUDA device if any, the code revision
(and whether the working tree had uncommitted changes) and when it was written (UTC).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from catvae.errors import CatvaeError
from catvae.io import write_json

log = logging.getLogger("catvae.report.provenance")

#: Distributions whose versions decide the results (names as on PyPI).
PACKAGES: tuple[str, ...] = (
    "torch", "torchvision", "snakemake", "numpy", "pandas", "scikit-learn", "scikit-image", "nibabel",
    "nilearn", "torch-fidelity", "matplotlib",
)

_REPO_ROOT = Path(__file__).resolve().parents[2]


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution; ``None`` when it is not installed."""
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_revision(path: str | os.PathLike = _REPO_ROOT) -> dict[str, Any]:
    """``{"commit", "dirty"}`` of the git checkout holding `path`; ``"unknown"`` outside a checkout.

    `dirty` is True when tracked or untracked-but-not-ignored files differ from the commit: results made
    from such a tree are not fully described by the commit alone.
    """
    cwd = Path(path)
    commit = _git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return {"commit": "unknown", "dirty": "unknown"}
    status = _git(["status", "--porcelain"], cwd)
    return {"commit": commit, "dirty": "unknown" if status is None else bool(status)}


def cuda_device() -> dict[str, Any] | None:
    """Name and versions of the first CUDA device, or ``None`` when there is none (or torch is missing)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "name": torch.cuda.get_device_name(index),
        "count": torch.cuda.device_count(),
        "capability": list(torch.cuda.get_device_capability(index)),
        "memory_mb": round(props.total_memory / 2**20),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def _file_record(path: str) -> dict[str, str]:
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise CatvaeError(f"{path}: config file cannot be read for provenance ({exc})") from exc
    return {"path": str(path), "sha256": digest}


def write_provenance(out_json: str | os.PathLike, *, config: Mapping[str, Any], seeds: list[int],
                     config_files: Iterable[str] = (), extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write provenance.json atomically and return what was written.

    `config` is the resolved config (defaults filled); `config_files` the YAML files it came from;
    `extra` anything the caller wants kept beside it (e.g. the Snakemake command line).
    """
    if not isinstance(config, Mapping):
        raise CatvaeError(f"{out_json}: config must be a mapping, got {type(config).__name__}")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise CatvaeError(f"{out_json}: seeds must be integers, got {seeds!r}")
    record: dict[str, Any] = {
        "config_name": config.get("config_name"),
        "config": dict(config),
        "config_files": [_file_record(os.fspath(p)) for p in config_files],
        "seeds": list(seeds),
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "packages": package_versions(),
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
                     "platform": platform.platform(), "cpu_count": os.cpu_count()},
        "cuda_device": cuda_device(),
        "code_revision": code_revision(),
        "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        record["extra"] = dict(extra)
    write_json(out_json, record)
    log.info("wrote %s (commit %s)", out_json, record["code_revision"]["commit"])
    return record
