"""Study configuration: one schema, one validator, used by Snakemake and by the CLI alike.

The schema (`catvae/schemas/config.schema.yaml`) carries the defaults, so a config file only states what it
changes. It ships inside the package (package data), so an installed `catvae` validates a config the same way as a
checkout, and the Snakefile reads the same file through this module. Validation errors name the offending key (e.g. `dataset.kind`), because that is what a researcher has to
fix.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import jsonschema
import yaml

from catvae.errors import CatvaeError
from catvae.registry import generator

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error.

    Plain YAML keeps the last value of a repeated key without a word, so a second `evaluation:` block would silently
    replace the first one's settings.
    """

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` merges; an explicit key may override
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML file, refusing a key repeated within one mapping (see `_UniqueKeyLoader`)."""
    return yaml.load(Path(path).read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def check_config_files(paths: Iterable[str | os.PathLike]) -> None:
    """Re-read the config files Snakemake loaded, which its own YAML reader accepts with a key given twice."""
    for path in paths:
        try:
            read_yaml(path)
        except yaml.YAMLError as exc:
            raise CatvaeError(f"config file {path} is not valid YAML: {exc}") from exc


def load_schema(path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Read the YAML schema (YAML so that it can carry comments and shared blocks)."""
    return copy.deepcopy(_read_schema(str(path)))


@functools.lru_cache(maxsize=4)
def _read_schema(path: str) -> dict:
    return read_yaml(path)


def _schema_of(keys: Sequence[str]) -> dict:
    """The schema of one config key (`keys` the path to it); CatvaeError naming the first key the schema lacks."""
    schema = _read_schema(str(SCHEMA_PATH))
    for depth, key in enumerate(keys):
        try:
            schema = schema["properties"][key]
        except KeyError:
            raise CatvaeError(f"config key '{'.'.join(keys[: depth + 1])}' is not in the schema") from None
    return schema


def defaults(*keys: str) -> dict:
    """The schema's defaults for one config block, e.g. `defaults("generators", "cvae")`.

    The schema is the only place a default is written down: library functions that can be called without a
    validated config (tests, benchmarks, the CLI) merge their options over this, so the two can never drift apart.
    """
    schema = _schema_of(keys)
    block: dict = {}
    for err in _Validator(schema).iter_errors(block):  # fills defaults as it walks; {} is always valid here
        raise CatvaeError(f"schema defaults of '{'.'.join(keys)}' do not validate: {err.message}")
    return block


def schema_enum(*keys: str) -> tuple:
    """The values the schema accepts for one key, e.g. `schema_enum("classifier", "baselines")` (a list's items'),
    so that code names a set of choices without writing it again."""
    schema = _schema_of(keys)
    schema = schema.get("items", schema)
    if "enum" not in schema:
        raise CatvaeError(f"config key '{'.'.join(keys)}' has no enum in the schema")
    return tuple(schema["enum"])


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


def validate_config(
    config: Mapping[str, Any], schema: dict | None = None, command_line: Mapping[str, Any] | None = None
) -> dict:
    """Return a validated copy of `config` with every default filled in.

    `command_line` is the part of `config` that came from Snakemake's `--config` (already merged into `config`):
    its strings are read as the schema's types first (see `coerce_command_line`). Cross-key rules that a JSON schema
    cannot state (split fractions sum to one, a root for kinds that read files) are checked here too. Every problem
    of the file is reported in one CatvaeError, one line per key: three wrong values should take one run to find,
    not three.
    """
    schema = schema or load_schema()
    data = copy.deepcopy(dict(config))
    if command_line:
        data = deep_update(data, coerce_command_line(command_line, schema))
    validator = _Validator(schema)
    problems = _schema_problems(validator, data)
    if not problems:
        # Fill defaults a second time: defaults of objects that were themselves defaulted are now in place.
        problems = _schema_problems(validator, data)
    problems += [p for p in _semantic_problems(data) if p not in problems]
    raise_problems(problems)
    return data


def raise_problems(problems: list[str]) -> None:
    """Raise one CatvaeError listing every problem (a single one reads as before: `config key 'x': ...`)."""
    if len(problems) == 1:
        raise CatvaeError(problems[0])
    if problems:
        raise CatvaeError(f"{len(problems)} problems in the config:\n" + "\n".join(f"  - {p}" for p in problems))


def _schema_problems(validator: jsonschema.protocols.Validator, data: dict) -> list[str]:
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.path), list(map(str, e.path))))
    return [message for err in errors for message in _messages(err)]


def _messages(err: jsonschema.ValidationError) -> list[str]:
    """What one schema error means for the researcher, naming the key (and the nearest known one for a typo)."""
    key = _key(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = list(err.schema.get("properties", {}))
        out = []
        for name in sorted(set(err.instance) - set(known), key=str):
            where = _key([*err.absolute_path, name])
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            hint = f"; did you mean '{_key([*err.absolute_path, close[0]])}'?" if close else ""
            out.append(f"config key '{where}': unknown key{hint}")
        return out
    if err.validator == "uniqueItems":
        twice = [v for i, v in enumerate(err.instance) if v in err.instance[:i]]
        return [
            f"config key '{key}': {twice[0]!r} is given more than once in {err.instance!r}; a repeated entry would "
            "be counted twice (e.g. one classifier run entering the pooled metrics and the bootstrap twice)"
        ]
    return [f"config key '{key}': {err.message}"]


# --- Values from Snakemake's --config -------------------------------------------------------------------------------
# Snakemake reads a top-level `--config key=value` as int, float, bool or text, but parses a nested value
# (`generators={catvae: {lr: 0.0005}}`) with YAML's BaseLoader, which returns every scalar as a string. The schema
# knows what each key holds, so a string is read as the type the schema asks for.

_NULLS = {"", "~", "null"}
_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}  # YAML 1.1 words
_INTEGER = re.compile(r"[-+]?[0-9]+")
_EXPECTED = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def coerce_command_line(values: Mapping[str, Any], schema: dict | None = None) -> dict:
    """Return `values` (Snakemake's parsed `--config`) with strings turned into the types the schema asks for.

    A string stays a string wherever the schema accepts it as one (a class name or a path that looks like a number
    stays text); the one exception is YAML's null (`null`, `~`, empty) where the schema also accepts null, because
    that is what the same text means in a config file. Where the schema accepts no string, a string is read as
    null, a boolean (YAML's true/false/yes/no/on/off), an integer or a number, the first that the key accepts; one
    that none of them fits raises CatvaeError naming the key and what was received. `$ref`, `allOf`, `anyOf` and
    `oneOf` are followed (targets: an integer or `balance`), and so are list items; keys the schema does not know
    are left for the validator to report.
    """
    schema = schema or load_schema()
    coerced = _Coercion(schema).value(dict(values), schema, [])
    assert isinstance(coerced, dict)
    return coerced


class _Coercion:
    """Walks a value and the schema side by side (one instance per root schema, for `$ref` and validity checks)."""

    def __init__(self, root: dict) -> None:
        self.root = root
        self.checker = jsonschema.Draft202012Validator(root)

    def value(self, value: Any, schema: dict | None, path: list) -> Any:
        if schema is None:  # a key the schema does not know: the validator reports it
            return value
        if isinstance(value, Mapping):
            return {k: self.value(v, self._property(schema, str(k)), [*path, k]) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, self._item(schema, i), [*path, i]) for i, v in enumerate(value)]
        if isinstance(value, str):
            return self._string(value, schema, path)
        return value

    def _string(self, text: str, schema: dict, path: list) -> Any:
        types = self._types(schema)
        if types is None:  # the schema says nothing about the type: nothing to read the string as
            return text
        check = self.checker.evolve(schema=schema)
        is_null = "null" in types and text.strip().lower() in _NULLS
        if "string" in types and check.is_valid(text) and not is_null:
            return text
        candidates = [typed for kind, typed in _readings(text) if kind in types]
        for typed in candidates:
            if check.is_valid(typed):
                return typed
        if candidates:  # the right type but out of range: the validator names the key and the typed value
            return candidates[0]
        if "string" in types:  # e.g. not one of an enum: the validator says so
            return text
        if "number" in types:
            types.discard("integer")
        expected = " or ".join(_EXPECTED[t] for t in _EXPECTED if t in types)
        raise CatvaeError(f"config key '{_key(path)}': expected {expected}, got the string {text!r}")

    def _branches(self, schema: dict) -> Iterator[dict]:
        """`schema` and every subschema that also applies to the same value ($ref, allOf, anyOf, oneOf)."""
        yield schema
        if "$ref" in schema:
            yield from self._branches(self._lookup(schema["$ref"]))
        for keyword in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(keyword, []):
                yield from self._branches(sub)

    def _lookup(self, ref: str) -> dict:
        if not ref.startswith("#"):
            raise CatvaeError(f"config schema: only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _types(self, schema: dict) -> set[str] | None:
        """JSON types the schema accepts, or None when it does not constrain the type."""
        types: set[str] = set()
        constrained = False
        for branch in self._branches(schema):
            if "type" in branch:
                constrained = True
                types.update([branch["type"]] if isinstance(branch["type"], str) else branch["type"])
            fixed = ([branch["const"]] if "const" in branch else []) + list(branch.get("enum", []))
            constrained = constrained or bool(fixed)
            types.update(_json_type(v) for v in fixed)
        if "number" in types:  # an integer is a number
            types.add("integer")
        return types if constrained else None

    def _property(self, schema: dict, name: str) -> dict | None:
        found = []
        for branch in self._branches(schema):
            if name in branch.get("properties", {}):
                found.append(branch["properties"][name])
                continue
            matched = [sub for pattern, sub in branch.get("patternProperties", {}).items() if re.search(pattern, name)]
            if not matched and isinstance(branch.get("additionalProperties"), dict):
                matched = [branch["additionalProperties"]]
            found.extend(matched)
        return _all_of(found)

    def _item(self, schema: dict, index: int) -> dict | None:
        found = []
        for branch in self._branches(schema):
            prefix = branch.get("prefixItems", [])
            if index < len(prefix):
                found.append(prefix[index])
            elif isinstance(branch.get("items"), dict):
                found.append(branch["items"])
        return _all_of(found)


def _all_of(schemas: list[dict]) -> dict | None:
    if not schemas:
        return None
    return schemas[0] if len(schemas) == 1 else {"allOf": schemas}


def _readings(text: str) -> Iterator[tuple[str, Any]]:
    """Every non-string meaning of `text`, as (JSON schema type, value), in YAML's order of preference."""
    word = text.strip().lower()
    if word in _NULLS:
        yield "null", None
    if word in _BOOLEANS:
        yield "boolean", _BOOLEANS[word]
    try:
        number = float(word)
    except ValueError:
        return
    if not math.isfinite(number):
        return
    if _INTEGER.fullmatch(word):
        yield "integer", int(word)
    else:
        yield "number", number
        if number.is_integer():  # 1e3 or 2.0 where a count is wanted
            yield "integer", int(number)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def check_dataset_root(dataset: Mapping[str, Any]) -> None:
    """Stop when a dataset kind that reads files has no folder at `dataset.root`.

    Snakemake calls this when it parses the workflow, so `snakemake -n` already says what is missing instead of
    planning jobs that fail inside `extract`. A relative root is read from the working directory, as the jobs do.
    """
    from catvae.data.kinds import KINDS  # the kinds' readers import this module

    if not KINDS[dataset["kind"]].needs_root or not dataset.get("root"):
        return
    root = Path(dataset["root"])
    if not root.is_dir():
        what = "not a folder" if root.exists() else "folder not found"
        raise CatvaeError(f"config key 'dataset.root': {what}: {root.absolute()}")


def _semantic_problems(cfg: dict) -> list[str]:
    """Cross-key rules, each checked on its own: a value the schema already refused (a wrong type) skips its rule."""
    problems: list[str] = []
    for rule in (_kind_problems, _split_fractions, _percentiles, _image_size_multiple):
        try:
            problems += rule(cfg)
        except (KeyError, TypeError, AttributeError):  # the schema's message names that key already
            continue
    return problems


def _kind_problems(cfg: dict) -> list[str]:
    """What the dataset kind needs beyond the schema (`dataset.root`, MedMNIST files; catvae.data.kinds)."""
    from catvae.data.kinds import KINDS  # the kinds' readers import this module

    return KINDS[cfg["dataset"]["kind"]].problems(cfg["dataset"])


def _split_fractions(cfg: dict) -> list[str]:
    split = cfg["dataset"]["split"]
    total = split["train"] + split["val"] + split["test"]
    if abs(total - 1.0) > 1e-6:
        return [f"config keys 'dataset.split.train/val/test' must sum to 1, got {total:g}"]
    if split["train"] <= 0:
        return ["config key 'dataset.split.train' must be > 0"]
    return []


def _percentiles(cfg: dict) -> list[str]:
    norm = cfg["dataset"]["normalization"]
    if norm["lower_percentile"] >= norm["upper_percentile"]:
        return ["config key 'dataset.normalization.lower_percentile' must be below upper_percentile"]
    return []


def _image_size_multiple(cfg: dict) -> list[str]:
    # The (CAT-)VAE decoder up-samples 3 times by 2 from a dense map; the conditional VAE pads its way to any size.
    size = cfg["dataset"]["image_size"]
    return [
        f"config key 'dataset.image_size' must be a multiple of {multiple} for {name}, got {size}"
        for name in cfg["generators"]["models"]
        if size % (multiple := generator(name).size_multiple)
    ][:1]


def load_config(path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> dict:
    """Load a YAML config file (plus optional overrides) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise CatvaeError(f"config file not found: {path}")
    try:
        raw = read_yaml(path) or {}
    except yaml.YAMLError as exc:
        raise CatvaeError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatvaeError(f"config file {path} must hold a mapping at the top level")
    if overrides:
        raw = deep_update(raw, overrides)
    return validate_config(raw)


def dump_config(cfg: Mapping[str, Any], config_files: Iterable[str | os.PathLike] = ()) -> str:
    """The validated config as YAML in the schema's key order, headed by the files it came from.

    One format for `catvae validate-config --show` and a run's `config.resolved.yaml`, so the two can be compared
    line for line: what a file means is what the workflow runs.
    """
    header = "".join(f"# from {os.fspath(p)}\n" for p in config_files)
    return header + yaml.safe_dump(dict(cfg), sort_keys=False)


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
