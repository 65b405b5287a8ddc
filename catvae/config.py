"""Study configuration: one schema, one validator, used by Snakemake and by the CLI alike.

The schema (`workflow/schemas/config.schema.yaml`) carries the defaults, so a config file only states what it
changes. Validation errors name the offending key (e.g. `dataset.kind`), because that is what a researcher has to
fix.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

from catvae.errors import CatvaeError

from catvae.registry import generator

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Read the YAML schema (YAML so that it can carry comments and shared blocks)."""
    return copy.deepcopy(_read_schema(str(path)))


@functools.lru_cache(maxsize=4)
def _read_schema(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def defaults(*keys: str) -> dict:
    """The schema's defaults for one config block, e.g. `defaults("generators", "cvae")`.

    The schema is the only place a default is written down: library functions that can be called without a
    validated config (tests, benchmarks, the CLI) merge their options over this, so the two can never drift apart.
    """
    schema = _read_schema(str(SCHEMA_PATH))
    for depth, key in enumerate(keys):
        try:
            schema = schema["properties"][key]
        except KeyError:
            raise CatvaeError(f"config key '{'.'.join(keys[: depth + 1])}' is not in the schema") from None
    block: dict = {}
    for err in _Validator(schema).iter_errors(block):  # fills defaults as it walks; {} is always valid here
        raise CatvaeError(f"schema defaults of '{'.'.join(keys)}' do not validate: {err.message}")
    return block


def _with_defaults(validator_class: type) -> type:
    """A jsonschema validator that fills in `default` values of every (nested) property as it validates."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key(path: Any) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(config: Mapping[str, Any], schema: dict | None = None) -> dict:
    """Return a validated copy of `config` with every default filled in.

    Raises CatvaeError naming the first offending key. Cross-key rules that a JSON schema cannot state
    (split fractions sum to one, a root for kinds that read files) are checked here too.
    """
    data = copy.deepcopy(dict(config))
    validator = _Validator(schema or load_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        err = errors[0]
        raise CatvaeError(f"config key '{_key(err.absolute_path)}': {err.message}")
    # Fill defaults a second time: defaults of objects that were themselves defaulted are now in place.
    for err in validator.iter_errors(data):
        raise CatvaeError(f"config key '{_key(err.absolute_path)}': {err.message}")
    _check_semantics(data)
    return data


def _check_semantics(cfg: dict) -> None:
    ds = cfg["dataset"]
    if ds["kind"] in ("brats", "folder") and not ds.get("root"):
        raise CatvaeError(f"config key 'dataset.root' is required for dataset.kind '{ds['kind']}'")
    if ds["kind"] == "medmnist" and not ds["medmnist"]["files"]:
        raise CatvaeError("config key 'dataset.medmnist.files' must list at least one .npz file for kind 'medmnist'")
    split = ds["split"]
    total = split["train"] + split["val"] + split["test"]
    if abs(total - 1.0) > 1e-6:
        raise CatvaeError(f"config keys 'dataset.split.train/val/test' must sum to 1, got {total:g}")
    if split["train"] <= 0:
        raise CatvaeError("config key 'dataset.split.train' must be > 0")
    norm = ds["normalization"]
    if norm["lower_percentile"] >= norm["upper_percentile"]:
        raise CatvaeError("config key 'dataset.normalization.lower_percentile' must be below upper_percentile")
    # The (CAT-)VAE decoder up-samples 3 times by 2 from a dense map; the conditional VAE pads its way to any size.
    for name in cfg["generators"]["models"]:
        multiple = generator(name).size_multiple
        if ds["image_size"] % multiple:
            raise CatvaeError(
                f"config key 'dataset.image_size' must be a multiple of {multiple} for {name}, got {ds['image_size']}"
            )


def load_config(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> dict:
    """Load a YAML config file (plus optional overrides) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise CatvaeError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CatvaeError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatvaeError(f"config file {path} must hold a mapping at the top level")
    if overrides:
        raw = deep_update(raw, overrides)
    return validate_config(raw)


def deep_update(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """Recursively merge `changes` into a copy of `base` (used for overrides and test configs)."""
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_block(values: Mapping[str, Any] | None, defaults: Mapping[str, Any], key: str) -> dict:
    """A config sub-block merged over its defaults, refusing keys the block does not have.

    Library functions accept these blocks directly (not only through the schema), so they check them the same way.
    """
    merged = {**defaults, **dict(values or {})}
    unknown = sorted(set(merged) - set(defaults))
    if unknown:
        raise CatvaeError(f"config key '{key}.{unknown[0]}': unknown key")
    return merged
