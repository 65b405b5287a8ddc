"""Adding a generator is one registry entry, one model class (with its options class) and one schema block.

The test adds a tiny generator in the test only: `tiny_generator.py` (written here) holds the model class and its
options class, and `register()` adds the registry entry and the schema block to the running process (the registry
dict and the cached schema; no file of the repository changes). The DAG is then planned by the real Snakefile, run
in-process after `register()` by a small driver (`snakemake -n` in a subprocess could not see a registration made in
the test's own process, and an import hook or environment variable read by the library would be production code
that exists for this test only). The planned jobs must include the new generator's training, synthesis, quality,
TSTR and classifier arms; the model builds through `build_generator`, and the tables label it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY_CONFIG, job_counts, write_config

TINY_MODULE = '''
"""A tiny per-class generator that exists only in tests/test_registry.py."""
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from catvae.models.options import GeneratorOptions, positive_int
from catvae.models.vae import GenerativeModel

SCHEMA_BLOCK = {
    "type": "object", "additionalProperties": False, "default": {},
    "properties": {
        "epochs": {"type": "integer", "minimum": 1, "default": 1},
        "batch_size": {"type": "integer", "minimum": 1, "default": 8},
        "lr": {"type": "number", "default": 0.001},
        "width": {"type": "integer", "minimum": 1, "default": 4},
    },
}


class TinyModel(GenerativeModel):
    name = "tiny"

    def __init__(self, *, image_size, channels, width):
        super().__init__(image_size=image_size, channels=channels, latent_dim=width)
        self.decode = nn.Linear(width, channels * image_size * image_size)


@dataclass(frozen=True)
class TinyOptions(GeneratorOptions):
    width: int

    @classmethod
    def from_block(cls, name: str, block: Mapping[str, Any]) -> "TinyOptions":
        return cls(name, width=positive_int(block, "width", name))

    def build(self, *, image_size, channels, n_classes=1, n_modalities=1):
        return TinyModel(image_size=image_size, channels=channels, width=self.width)


TinyModel.options_type = TinyOptions


def register():
    """The registry entry and the schema block, added to this process only."""
    from catvae import config, registry

    registry.GENERATORS["tiny"] = registry.GeneratorSpec("tiny", "Tiny (test)", "tiny_generator:TinyModel")
    schema = config._read_schema(str(config.SCHEMA_PATH))  # the cached schema every validation copies
    generators = schema["properties"]["generators"]["properties"]
    generators["models"]["items"]["enum"].append("tiny")
    generators["tiny"] = SCHEMA_BLOCK
'''

DRIVER = '''
import sys
import tiny_generator

tiny_generator.register()
from snakemake.cli import main

sys.argv = ["snakemake", *sys.argv[1:]]
main()
'''


@pytest.fixture
def tiny_module(tmp_path: Path) -> Path:
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "tiny_generator.py").write_text(textwrap.dedent(TINY_MODULE))
    (folder / "driver.py").write_text(DRIVER)
    return folder


def test_an_extra_generator_is_planned_built_and_labelled(tmp_path, tiny_module, monkeypatch):
    config = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    config["generators"]["models"] = ["vae", "tiny"]
    config["generators"]["tiny"] = {"width": 3}
    config["evaluation"]["folds"] = 1
    config_path = write_config(tmp_path, config)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tiny_module), str(REPO)]))
    cmd = [sys.executable, str(tiny_module / "driver.py"), "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(config_path), "--cores", "1",
           "--workflow-profile", "none", "-n", "--printshellcmds"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    planned = {line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("output:")}
    planned = {path.strip() for line in planned for path in line.split(",")}
    results = "results/tiny"
    for cls in ("NoTumor", "Tumor"):  # a per-class generator: one model per class
        assert f"{results}/generators/fold0/tiny/rep0/{cls}/checkpoint.pt" in planned
        assert f"{results}/synthetic/fold0/tiny/rep0/{cls}/manifest.csv" in planned
        assert f"{results}/generators/fold0/tiny/rep0/{cls}/quality.json" in planned
    assert f"{results}/generators/fold0/tiny/rep0/tstr.json" in planned
    for seed in (0, 1):
        assert f"{results}/classifier/fold0/tiny@balance/seed{seed}/metrics.json" in planned
    counts = job_counts(out)
    assert counts["train_generator"] == 4 and counts["tstr"] == 2  # vae and tiny, two classes each

    # In this process too (the same entry, undone afterwards): the model builds through build_generator, and the
    # tables and arms label it.
    monkeypatch.syspath_prepend(str(tiny_module))
    import tiny_generator

    from catvae import config as config_module
    from catvae import registry
    from catvae.models import build_generator
    from catvae.report.tables import label
    from catvae.vocabulary.arms import Arm

    generators = config_module._read_schema(str(config_module.SCHEMA_PATH))["properties"]["generators"]["properties"]
    monkeypatch.setitem(generators, "tiny", tiny_generator.SCHEMA_BLOCK)
    monkeypatch.setitem(generators["models"]["items"], "enum", [*generators["models"]["items"]["enum"], "tiny"])
    monkeypatch.setitem(registry.GENERATORS, "tiny",
                        registry.GeneratorSpec("tiny", "Tiny (test)", "tiny_generator:TinyModel"))
    model = build_generator("tiny", image_size=16, channels=1, options={"width": 5})
    assert isinstance(model, tiny_generator.TinyModel) and model.latent_dim == 5
    assert label("tiny") == "Tiny (test)" == Arm.parse("tiny@20").label
    assert Arm.parse("tiny@20").kind == "generator"
