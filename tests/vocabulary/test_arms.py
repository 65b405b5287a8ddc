"""Arm names (catvae/vocabulary/arms.py): one parse, format, kind and label, the arm list, the baselines from the schema."""

from __future__ import annotations

import pytest

from catvae.config import schema_enum
from catvae.errors import CatvaeError
from catvae.vocabulary.arms import (
    BASELINES,
    RESAMPLING,
    WEIGHTED,
    Arm,
    arm_generator,
    method_kind,
    method_label,
    reference_arm,
    study_arms,
)


def test_baselines_are_the_schema_enum():
    assert BASELINES == schema_enum("classifier", "baselines")
    assert WEIGHTED in BASELINES and WEIGHTED not in RESAMPLING
    assert RESAMPLING == ("oversample", "classic")


@pytest.mark.parametrize("name", ["none", "weighted", "vae@437", "classic@balance", "my-gen_2@1"])
def test_an_arm_formats_back_to_its_name(name):
    assert Arm.parse(name).name == name == str(Arm.parse(name))


def test_parse_types_the_target_and_split_keeps_the_text():
    assert Arm.parse("vae@437") == Arm("vae", 437)
    assert Arm.split("vae@437") == ("vae", "437")
    assert Arm.split("none") == ("none", None)
    with pytest.raises(CatvaeError, match="positive integer"):
        Arm.parse("vae@0")


def test_kinds_labels_and_references():
    assert [method_kind(m) for m in ("none", "weighted", "vae", "oversample", "classic", "ddpm")] == [
        "real", "loss", "generator", "resampling", "resampling", "generator"]
    assert Arm.parse("catvae@10").label == "CAT-VAE" and method_label("weighted") == "Class-weighted loss"
    assert method_label("unknown") == "unknown"
    assert reference_arm("catvae@10", "vae") == "vae@10" and reference_arm("catvae@10", "none") == "none"
    assert arm_generator("cvae@balance", ["vae", "cvae"]) == "cvae"
    assert arm_generator("oversample@10", ["vae"]) is None


def test_study_arms():
    assert study_arms(["vae"], [437], ["oversample", "weighted"]) == ["none", "weighted", "vae@437", "oversample@437"]


def test_the_reports_vocabulary_agrees_with_the_schema():
    """The interval kinds and metrics the statistics label are the schema's enums; the comparisons' default is the
    schema's default."""
    from catvae.config import defaults
    from catvae.report.statistics import DEFAULT_COMPARE, INTERVALS, METRICS

    assert tuple(INTERVALS) == schema_enum("evaluation", "interval")
    assert set(schema_enum("evaluation", "primary")) <= set(METRICS)
    assert list(DEFAULT_COMPARE) == defaults("evaluation")["compare"] == ["none", "oversample", "vae"]
