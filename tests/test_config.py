"""The config schema: defaults are filled, bad values stop with a message naming the key."""

from pathlib import Path

import pytest
import yaml

from catvae.config import load_config, validate_config
from catvae.errors import CatvaeError

REPO = Path(__file__).resolve().parent.parent


def test_shipped_configs_validate():
    demo = load_config(REPO / "config" / "config.yaml")
    paper = load_config(REPO / "config" / "paper.yaml")
    assert demo["dataset"]["kind"] == "phantom"
    assert paper["dataset"]["image_size"] == 128 and paper["dataset"]["channels"] == 3
    assert paper["generators"]["catvae"]["epochs"] == 500
    assert paper["classifier"]["image_size"] == 224 and paper["classifier"]["paper_protocol"] is True
    assert paper["synthesis"]["targets"] == [437, 1000, 2000]


def test_empty_config_gets_every_default():
    cfg = validate_config({})
    assert cfg["dataset"]["kind"] == "phantom"
    assert cfg["dataset"]["selection"] == {"mode": "center", "k": 1, "stride": 1}
    assert cfg["generators"]["cvae"]["beta_warmup"] == {"start": 20, "epochs": 100}
    assert cfg["generators"]["cvae"]["latent_dim"] == 128 and cfg["generators"]["vae"]["latent_dim"] == 100
    assert cfg["synthesis"]["targets"] == [437, 1000, 2000]


@pytest.mark.parametrize(
    "change, key",
    [
        ({"dataset": {"kind": "dicom"}}, "dataset.kind"),
        ({"dataset": {"image_size": -64}}, "dataset.image_size"),
        ({"dataset": {"kind": "brats"}}, "dataset.root"),
        ({"dataset": {"planes": ["axial", "oblique"]}}, "dataset.planes"),
        ({"dataset": {"split": {"train": 0.9, "val": 0.2, "test": 0.1}}}, "dataset.split"),
        ({"dataset": {"image_size": 60}}, "dataset.image_size"),
        ({"generators": {"catvae": {"attention": "magic"}}}, "generators.catvae.attention"),
        ({"synthesis": {"targets": ["lots"]}}, "synthesis.targets"),
        ({"device": "tpu"}, "device"),
        ({"dataset": {"phantom": {"n_subjects": 0}}}, "dataset.phantom.n_subjects"),
        ({"unknown_section": {}}, "unknown_section"),
    ],
)
def test_bad_values_name_the_key(change, key):
    with pytest.raises(CatvaeError, match=key.replace(".", r"\.")):
        validate_config(change)


def test_load_config_reports_missing_and_broken_files(tmp_path):
    with pytest.raises(CatvaeError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [unclosed\n")
    with pytest.raises(CatvaeError, match="broken.yaml"):
        load_config(broken)


def test_overrides_merge_deeply(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"dataset": {"image_size": 32}}))
    cfg = load_config(path, {"dataset": {"split": {"seed": 7}}})
    assert cfg["dataset"]["image_size"] == 32 and cfg["dataset"]["split"]["seed"] == 7
    assert cfg["dataset"]["split"]["train"] == 0.7


def test_schema_lists_exactly_the_registered_generators():
    """The registry is the one list of generators: the schema's model enum and blocks must match it."""
    from catvae.config import load_schema
    from catvae.registry import GENERATORS

    generators = load_schema()["properties"]["generators"]["properties"]
    assert generators["models"]["items"]["enum"] == list(GENERATORS)
    assert generators["models"]["default"] == list(GENERATORS)
    assert set(generators) - {"models", "replicates"} == set(GENERATORS)


def test_library_defaults_are_the_schema_defaults():
    """Defaults are written once (the schema); the library's fallbacks read them, so they cannot drift."""
    from catvae.config import defaults
    from catvae.generators.train import _training_options
    from catvae.models import build_generator

    cvae = defaults("generators", "cvae")
    hp = _training_options("cvae", {})
    assert hp["plateau"] == cvae["plateau"] and hp["lr"] == cvae["lr"] and hp["epochs"] == cvae["epochs"]
    model = build_generator("cvae", image_size=28, channels=1, options={}, n_classes=2)
    assert model.latent_dim == cvae["latent_dim"]
    with pytest.raises(CatvaeError, match="generators.gan"):
        defaults("generators", "gan")
