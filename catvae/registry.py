"""The one list of generators: what each is called, how it is built, whether it is conditional, how it groups classes.

Everything that needs to know "which generators exist" reads this module: the config check, the Snakefile (which
jobs to plan), the CLI (choices), training, synthesis, evaluation and the tables. Adding a generator is one entry
here, one model class, and one block in the config schema (a test checks that the schema's model list equals this
registry). The module imports no torch, so the Snakefile can read it cheaply when it plans the DAG; the model class
is imported only when a model is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from catvae.errors import CatvaeError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from catvae.models.vae import GenerativeModel

#: The group name of a conditional generator: one model over every class.
ALL_CLASSES = "all"


@dataclass(frozen=True)
class GeneratorSpec:
    """What the pipeline needs to know about one generator.

    `conditional`: one model over all classes (group `all`), conditioned on class and modality; otherwise one model
    per class. `keras`: ported from the reference's Keras code, so trained with Keras' Adam (epsilon 1e-7).
    `size_multiple`: `dataset.image_size` must be a multiple of it (the VAE decoders up-sample 3 times by 2).
    `default`: in the schema's default `generators.models`; the diffusion comparator is not (a config lists it, sized
    for its machine: its schema defaults are for a GPU).
    """

    name: str
    label: str
    model_class: str  # "module:Class", imported on demand
    conditional: bool = False
    keras: bool = False
    size_multiple: int = 1
    default: bool = True

    def groups(self, classes: Sequence[str]) -> list[str]:
        """The training jobs' groups: every class for a per-class generator, `all` for a conditional one."""
        return [ALL_CLASSES] if self.conditional else list(classes)

    def group_of(self, class_name: str) -> str:
        """The group whose model generates `class_name`."""
        return ALL_CLASSES if self.conditional else class_name

    def model_type(self) -> type["GenerativeModel"]:
        module, _, attr = self.model_class.partition(":")
        return getattr(importlib.import_module(module), attr)


GENERATORS: dict[str, GeneratorSpec] = {
    spec.name: spec
    for spec in (
        GeneratorSpec("vae", "VAE", "catvae.models.vae:VAE", keras=True, size_multiple=8),
        GeneratorSpec("catvae", "CAT-VAE", "catvae.models.vae:CatVAE", keras=True, size_multiple=8),
        GeneratorSpec("cvae", "Conditional VAE", "catvae.models.cvae:ConditionalVAE", conditional=True),
        # this project's comparator (neither reference has one): a per-class DDPM on MONAI, sampled with DDIM
        GeneratorSpec("ddpm", "Diffusion (DDPM, ours)", "catvae.models.diffusion:DiffusionModel", default=False),
    )
}


def generator(name: str, key: str = "generators.models") -> GeneratorSpec:
    """The spec of generator `name`; an unknown name raises CatvaeError naming the config key and the known ones."""
    try:
        return GENERATORS[name]
    except KeyError:
        raise CatvaeError(
            f"config key '{key}' names unknown generator {name!r}; known: {', '.join(GENERATORS)}"
        ) from None


def conditional_generators(names: Sequence[str]) -> list[str]:
    """The conditional generators among `names`, in order."""
    return [n for n in names if generator(n).conditional]
