"""Classifier arm names: one parse, one format, one kind, one label, one arm list.

An arm name is `none`, `weighted`, `<generator>@<target>`, `oversample@<target>` or `classic@<target>`, where the
target is a per-class image count or `balance` (the majority class's real training count). `none` and `weighted`
train on the real images alone (`weighted` weighs the loss by inverse class frequency); every other arm fills each
class up to its target, from a generator's synthetic images or by resampling the real ones.

The baselines a config may ask for are the schema's `classifier.baselines` enum; `weighted` is the one among them
without a target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from catvae.config import schema_enum
from catvae.errors import CatvaeError
from catvae.registry import GENERATORS

#: The real-only arm: the real training images, nothing else.
NONE = "none"
#: The class-weighted loss: the real training images, the loss weighed by inverse class frequency.
WEIGHTED = "weighted"
#: Arms without a target (the real training images only; `weighted` changes the loss, not the images).
REAL_ONLY: tuple[str, ...] = (NONE, WEIGHTED)
#: The baselines `classifier.baselines` accepts (the schema's enum).
BASELINES: tuple[str, ...] = schema_enum("classifier", "baselines")
#: The baselines that resample real training images up to a target (`classic` also augments them).
RESAMPLING: tuple[str, ...] = tuple(b for b in BASELINES if b not in REAL_ONLY)
#: The target that fills every class up to the majority class's real training count.
BALANCE = "balance"

#: Method kinds, in the tables' row order: real only, the weighted loss, generators, resampling baselines.
KINDS: tuple[str, ...] = ("real", "loss", "generator", "resampling")

_METHOD = re.compile(r"^[A-Za-z0-9_\-]+$")
#: The `{arm}` wildcard of the Snakemake rules: the arm names the study plans.
ARM_WILDCARD = r"[A-Za-z]+(@[A-Za-z0-9]+)?"

#: How the tables print the methods that are not generators (a generator prints its registry label).
_METHOD_LABELS: dict[str, str] = {
    NONE: "None (real only)",
    "oversample": "Random oversampling",
    "classic": "Classical augmentation",
    WEIGHTED: "Class-weighted loss",
}
#: How the comparisons name a reference method that is not a generator (a generator: its registry label).
_REFERENCE_LABELS: dict[str, str] = {
    NONE: "real only",
    "oversample": "random oversampling",
    "classic": "classical augmentation",
}


def method_kind(method: str) -> str:
    """`real` (`none`), `loss` (`weighted`), `resampling` (`oversample`, `classic`) or `generator` (any other)."""
    if method == NONE:
        return "real"
    if method == WEIGHTED:
        return "loss"
    if method in RESAMPLING:
        return "resampling"
    return "generator"


def method_label(method: str) -> str:
    """How the tables print a method (an unknown one prints as it is)."""
    if method in GENERATORS:
        return GENERATORS[method].label
    return _METHOD_LABELS.get(method, method)


def reference_labels() -> dict[str, str]:
    """The methods a comparison may take as its reference (`evaluation.compare`), with how the tables name them."""
    return {**_REFERENCE_LABELS, **{name: spec.label for name, spec in GENERATORS.items()}}


@dataclass(frozen=True)
class Arm:
    """One classifier arm: its method and its target (`None` for the real-only arms)."""

    method: str
    target: int | str | None = None

    @classmethod
    def parse(cls, name: str) -> "Arm":
        """The arm a name stands for, raising CatvaeError on anything malformed.

        `"none"` -> `Arm("none")`; `"catvae@1000"` -> `Arm("catvae", 1000)`; `"classic@balance"` ->
        `Arm("classic", "balance")`. Method names are restricted to `[A-Za-z0-9_-]` because they name folders.
        """
        if not isinstance(name, str) or not name:
            raise CatvaeError(f"classifier arm must be a non-empty string, got {name!r}")
        if name in REAL_ONLY:
            return cls(name)
        parts = name.split("@")
        if len(parts) != 2:
            raise CatvaeError(
                f"classifier arm {name!r} must be one of {list(REAL_ONLY)} or '<method>@<target>' (one '@')"
            )
        method, target = parts
        if not _METHOD.match(method) or method in REAL_ONLY:
            raise CatvaeError(
                f"classifier arm {name!r}: method {method!r} must be a generator name or one of {RESAMPLING}"
            )
        if target == BALANCE:
            return cls(method, BALANCE)
        if not re.fullmatch(r"[0-9]+", target) or int(target) < 1:
            raise CatvaeError(f"classifier arm {name!r}: target {target!r} must be a positive integer or 'balance'")
        return cls(method, int(target))

    @staticmethod
    def split(name: str) -> tuple[str, str | None]:
        """Method and target as written in a name, unchecked: `"vae@437"` -> `("vae", "437")`; `"none"` ->
        `("none", None)` (the report reads names back from finished runs)."""
        method, _, target = name.partition("@")
        return method, (target or None)

    @property
    def name(self) -> str:
        """The arm's name: `none`, `weighted` or `<method>@<target>` (its folder under `classifier/fold<f>/`)."""
        return self.method if self.target is None else f"{self.method}@{self.target}"

    def __str__(self) -> str:
        return self.name

    @property
    def kind(self) -> str:
        """The method's kind (:func:`method_kind`)."""
        return method_kind(self.method)

    @property
    def label(self) -> str:
        """The method as the tables print it."""
        return method_label(self.method)


def arm_generator(name: str, models: Sequence[str]) -> str | None:
    """The generator among `models` that arm `name` draws synthetic images from, or None."""
    method = Arm.split(name)[0]
    return method if method in models else None


def reference_arm(name: str, reference: str) -> str:
    """The arm a comparison sets arm `name` against: `none`, or `reference` at `name`'s target."""
    if reference == NONE:
        return NONE
    return f"{reference}@{Arm.split(name)[1]}"


def study_arms(models: Sequence[str], targets: Sequence[Any], baselines: Sequence[str]) -> list[str]:
    """Classifier arms: real only (plus the class-weighted loss), every generator x target, and the resampling
    baselines x target (the names the Snakefile's `train_classifier` jobs take)."""
    out = [NONE] + [b for b in baselines if b in REAL_ONLY]
    out += [f"{m}@{t}" for m in models for t in targets]
    out += [f"{b}@{t}" for b in baselines if b not in REAL_ONLY for t in targets]
    return out
