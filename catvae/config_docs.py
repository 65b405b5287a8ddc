"""`config/README.md`, written from the config schema: what every key means, its type and its default.

The schema is the one place where a key, its default and its description are written down; this page is rendered
from it (`python -m catvae.config_docs > config/README.md`) and a test compares the two, so the page can never
describe a key that is not there or miss one that is. The Snakemake workflow catalog shows this file as the
workflow's usage page.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterator, Mapping

from catvae.config import load_schema

HEADER = """\
# Configuration

Generated from `catvae/schemas/config.schema.yaml` by `python -m catvae.config_docs > config/README.md`: edit the
schema, not this page (a test checks the two agree).

A config file sets only what it changes; every other key takes the default below. Run one with
`snakemake --cores N --configfile FILE`: that file alone over these defaults (without `--configfile`, the demo
`config/config.yaml`). `catvae validate-config --config FILE --show` prints a file with every default filled in,
which is exactly what the workflow runs; a bad value stops the run before any job with a message naming the key.

| file | what |
|---|---|
| `config/config.yaml` | the embedded demo: a phantom cohort in BraTS layout, 64x64 grayscale, short training (70 jobs) |
| `config/paper.yaml` | the CAT-VAE paper's settings on BraTS 2020, 5-fold cross-validation x 3 seeds x 3 generator replicates |
| `config/busi.yaml` | the paper's breast-ultrasound study (class folders) |
| `config/medmnist_cvae.yaml` | the conditional-VAE report: PathMNIST + TissueMNIST + OCTMNIST, 28x28, 21 classes |

To run the demo's design on your own BraTS copy, keep `config/config.yaml` and point its dataset at your folder:
`snakemake --cores N --config dataset='{kind: brats, root: /data/BraTS2020, name: mybrats}'`.
"""


def _flow(value: Any) -> str:
    """A value as it would be written in a config file (YAML flow style, which JSON is)."""
    return json.dumps(value) if not isinstance(value, str) else value


def _type(spec: Mapping[str, Any]) -> str:
    """The accepted values of one key, compactly: its enum, its type(s) and bounds."""
    if "enum" in spec:
        return " \\| ".join(_flow(v) for v in spec["enum"])
    if "const" in spec:
        return _flow(spec["const"])
    if "oneOf" in spec:
        return " or ".join(_type(s) for s in spec["oneOf"])
    kinds = spec.get("type", "any")
    text = " or ".join(kinds) if isinstance(kinds, list) else kinds
    if "items" in spec:
        text += f" of ({_type(spec['items'])})"
    bounds = [f"{sign} {spec[key]}" for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                      ("maximum", "<="), ("exclusiveMaximum", "<")) if key in spec]
    return text + (f", {', '.join(bounds)}" if bounds else "")


def _rows(properties: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(dotted key, accepted values, default, description) of every key, parents before their children."""
    for name, spec in properties.items():
        key = f"{prefix}{name}"
        description = " ".join(str(spec.get("description", "")).split())
        if "properties" in spec:
            if description:
                yield key, "block", "", description
            yield from _rows(spec["properties"], f"{key}.")
        else:
            default = f"`{_flow(spec['default'])}`" if "default" in spec else "(required)"
            yield key, _type(spec), default, description


def render(schema: Mapping[str, Any] | None = None) -> str:
    """The whole page: the header, then one table per top-level block (keys of the top level first)."""
    schema = schema if schema is not None else load_schema()
    properties = schema["properties"]
    sections: list[tuple[str, Mapping[str, Any]]] = [
        ("Top level", {k: v for k, v in properties.items() if "properties" not in v})]
    sections += [(f"`{k}`", {k: v}) for k, v in properties.items() if "properties" in v]
    lines = [HEADER]
    for title, block in sections:
        lines += [f"## {title}", "", "| key | accepted values | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{key}` | {kind} | {default} | {text.replace('|', chr(92) + '|')} |"
                  for key, kind, default, text in _rows(block)]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
