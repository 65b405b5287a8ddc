"""Typed model options: each generator's class reads its `generators.<name>` block once and builds its model.

One options class per model (the habit of pythae's one config per model), defined beside the model and named by
the model class's `options_type`, so adding a generator is one registry entry (`catvae.registry`), one model class
with its options class, and one schema block: `build_generator` has no per-model branch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from catvae.config import defaults
from catvae.errors import CatvaeError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from catvae.models.vae import GenerativeModel


def positive_int(block: Mapping[str, Any], key: str, name: str) -> int:
    """`block[key]` as a positive integer, or CatvaeError naming `generators.<name>.<key>`."""
    value = block[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CatvaeError(f"config key 'generators.{name}.{key}' must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class GeneratorOptions:
    """The model keys of one `generators.<name>` block, checked (keys a model does not read, epochs, lr, ..., belong
    to training). A subclass adds its fields, `from_block` and `build`."""

    name: str

    @classmethod
    def read(cls, name: str, options: Mapping[str, Any] | None) -> "GeneratorOptions":
        """The options of `options` (the config's block) merged over the schema's defaults, the only place they
        are written."""
        return cls.from_block(name, {**defaults("generators", name), **dict(options or {})})

    @classmethod
    def from_block(cls, name: str, block: Mapping[str, Any]) -> "GeneratorOptions":
        raise NotImplementedError

    def build(self, *, image_size: int, channels: int, n_classes: int = 1,
              n_modalities: int = 1) -> "GenerativeModel":
        raise NotImplementedError
