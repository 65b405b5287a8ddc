"""The config schema: defaults are filled, bad values stop with a message naming the key."""

import re
from pathlib import Path

import pytest
import yaml

from catvae.config import check_dataset_root, coerce_command_line, load_config, schema_enum, validate_config
from catvae.errors import CatvaeError

REPO = Path(__file__).resolve().parent.parent


def test_shipped_configs_validate():
    demo = load_config(REPO / "config" / "config.yaml")
    paper = load_config(REPO / "config" / "paper.yaml")
    assert demo["dataset"]["kind"] == "phantom"
    assert paper["dataset"]["image_size"] == 128 and paper["dataset"]["channels"] == 3
    assert paper["generators"]["catvae"]["epochs"] == 500
    assert paper["classifier"]["image_size"] == 224 and paper["classifier"]["paper_protocol"] is True
    assert paper["synthesis"]["targets"] == ["balance", 1000, 2000]  # Table 7 (tests/classifier/test_paper_protocol.py)
    assert paper["generators"]["models"][-1] == "ddpm"  # the diffusion comparator (ours), sized for a GPU
    diffusion = load_config(REPO / "config" / "diffusion_phantom.yaml")
    assert diffusion["generators"]["models"] == ["vae", "ddpm"] and diffusion["dataset"]["image_size"] == 64


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
    assert generators["models"]["default"] == [name for name, spec in GENERATORS.items() if spec.default]
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


# --- Snakemake's --config: nested scalars arrive as strings (YAML BaseLoader) ----------------------------------------


def test_command_line_strings_become_the_schema_types():
    given = {
        "generators": {"catvae": {"lr": "0.0005", "amp": "true", "epochs": "3"}, "cvae": {"lr": "5e-4"}},
        "classifier": {"paper_protocol": "False", "batch_size": "1e3"},
        "synthesis": {"targets": ["40", "balance"]},
        "seeds": ["0", "1"],
        "dataset": {"phantom": {"shape": ["40", "48", "32"]}, "split": {"train": "0.5"}},
    }
    got = coerce_command_line(given)
    assert got["generators"]["catvae"] == {"lr": 0.0005, "amp": True, "epochs": 3}
    assert got["generators"]["cvae"]["lr"] == 0.0005 and isinstance(got["generators"]["cvae"]["lr"], float)
    assert got["classifier"] == {"paper_protocol": False, "batch_size": 1000}
    assert got["synthesis"]["targets"] == [40, "balance"]
    assert got["seeds"] == [0, 1]
    assert got["dataset"]["phantom"]["shape"] == [40, 48, 32] and got["dataset"]["split"]["train"] == 0.5
    assert all(type(v) is int for v in got["seeds"] + got["dataset"]["phantom"]["shape"])


def test_command_line_strings_stay_strings_where_the_schema_takes_text():
    given = {
        "config_name": "2024",
        "dataset": {"name": "7", "root": "123", "folder": {"classes": ["1", "2"], "exclude_pattern": "true"}},
        "generators": {"catvae": {"attention": "fused"}},
    }
    assert coerce_command_line(given) == given


def test_command_line_null_where_the_schema_takes_null():
    got = coerce_command_line(
        {
            "dataset": {"root": "null", "folder": {"classes": "~", "id_pattern": ""}},
            "quality": {"inception_weights": "NULL"},
        }
    )
    assert got == {"dataset": {"root": None, "folder": {"classes": None, "id_pattern": None}},
                   "quality": {"inception_weights": None}}
    assert coerce_command_line({"config_name": "null"}) == {"config_name": "null"}  # text only: stays text


@pytest.mark.parametrize(
    "given, message",
    [
        ({"generators": {"catvae": {"lr": "fast"}}},
         "config key 'generators.catvae.lr': expected a number, got the string 'fast'"),
        ({"generators": {"vae": {"epochs": "2.5"}}},
         "config key 'generators.vae.epochs': expected an integer, got the string '2.5'"),
        ({"classifier": {"paper_protocol": "maybe"}},
         "config key 'classifier.paper_protocol': expected true or false, got the string 'maybe'"),
        ({"generators": {"models": "catvae"}},
         "config key 'generators.models': expected a list, got the string 'catvae'"),
        ({"seeds": ["0", "one"]}, "config key 'seeds.1': expected an integer, got the string 'one'"),
        ({"dataset": {"folder": {"classes": "benign"}}},
         "config key 'dataset.folder.classes': expected a list or null, got the string 'benign'"),
        ({"generators": {"catvae": {"lr": "nan"}}},
         "config key 'generators.catvae.lr': expected a number, got the string 'nan'"),
    ],
)
def test_command_line_string_that_fits_no_type_names_key_and_value(given, message):
    with pytest.raises(CatvaeError) as info:
        validate_config(given, command_line=given)
    assert str(info.value) == message


def test_command_line_values_are_validated_as_typed_values():
    lr = {"generators": {"catvae": {"lr": "-1"}}}
    with pytest.raises(CatvaeError, match=r"generators\.catvae\.lr': -1 is less than or equal to the minimum of 0"):
        validate_config(lr, command_line=lr)
    attention = {"generators": {"catvae": {"attention": "1"}}}
    with pytest.raises(CatvaeError, match=r"'1' is not one of"):
        validate_config(attention, command_line=attention)
    unknown = {"generators": {"catvae": {"speed": "1"}}}
    with pytest.raises(CatvaeError, match=r"config key 'generators\.catvae\.speed': unknown key"):
        validate_config(unknown, command_line=unknown)


def test_only_command_line_values_are_coerced():
    """A string in a config file is the user's typo, not Snakemake's parsing: it is reported, not reinterpreted."""
    from_file = {"generators": {"catvae": {"lr": "0.5", "epochs": 2}}}
    with pytest.raises(CatvaeError, match="'0.5' is not of type 'number'"):
        validate_config(from_file)
    merged = {"generators": {"catvae": {"lr": "0.5", "epochs": 2}}, "seeds": ["3"]}
    cfg = validate_config(merged, command_line={"generators": {"catvae": {"lr": "0.5"}}, "seeds": ["3"]})
    assert cfg["generators"]["catvae"]["lr"] == 0.5 and cfg["generators"]["catvae"]["epochs"] == 2
    assert cfg["seeds"] == [3] and cfg["generators"]["vae"]["lr"] == 0.001


def test_coercion_follows_refs_combinators_and_tuples():
    schema = {
        "$defs": {"rate": {"type": "number", "exclusiveMinimum": 0}},
        "type": "object",
        "properties": {
            "rate": {"$ref": "#/$defs/rate"},
            "flag": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}], "items": {"type": "string"}},
            "size": {"oneOf": [{"type": "integer"}, {"enum": ["auto", "12"]}]},
        },
        "additionalProperties": {"type": "integer"},
    }
    got = coerce_command_line({"rate": "2e-3", "flag": "on", "pair": ["5", "6"], "size": "12", "extra": "9"}, schema)
    assert got == {"rate": 0.002, "flag": True, "pair": [5, "6"], "size": "12", "extra": 9}
    assert coerce_command_line({"size": "13", "flag": "~"}, schema) == {"size": 13, "flag": None}


def test_dataset_root_must_be_a_folder(tmp_path):
    missing = tmp_path / "BraTS2020"
    for kind in ("brats", "folder"):
        message = re.escape(f"config key 'dataset.root': folder not found: {missing}") + "$"
        with pytest.raises(CatvaeError, match=message):
            check_dataset_root({"kind": kind, "root": str(missing)})
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CatvaeError, match="config key 'dataset.root': not a folder: .*file.txt"):
        check_dataset_root({"kind": "brats", "root": str(tmp_path / "file.txt")})
    missing.mkdir()
    check_dataset_root({"kind": "brats", "root": str(missing)})
    check_dataset_root({"kind": "phantom", "root": str(tmp_path / "nowhere")})  # the phantom writes its own cohort


def test_a_key_given_twice_is_an_error_not_a_silent_override(tmp_path):
    """Plain YAML keeps the last of two `evaluation:` blocks; the loader refuses, naming the file and the key."""
    from catvae.config import check_config_files

    path = tmp_path / "twice.yaml"
    path.write_text("evaluation: {folds: 5}\nseeds: [0]\nevaluation: {bootstrap: 200}\n")
    with pytest.raises(CatvaeError, match=r"twice.yaml.*'evaluation' is given twice"):
        load_config(path)
    with pytest.raises(CatvaeError, match="'evaluation' is given twice"):
        check_config_files([path])
    shipped = [REPO / "config" / name for name in ("config.yaml", "paper.yaml", "busi.yaml", "medmnist_cvae.yaml",
                                                            "table7_phantom.yaml", "diffusion_phantom.yaml")]
    check_config_files([*shipped, REPO / ".test" / "config" / "config.yaml"])


def test_schema_enum_names_a_bad_key():
    with pytest.raises(CatvaeError, match="'classifier.nope'"):
        schema_enum("classifier", "nope")
    with pytest.raises(CatvaeError, match="no enum"):
        schema_enum("classifier", "epochs")
