"""The study's vocabulary (catvae/vocabulary/): one definition each of arm names, and enums read from the schema."""

from __future__ import annotations

import subprocess
import sys

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


def test_schema_enum_names_a_bad_key():
    with pytest.raises(CatvaeError, match="'classifier.nope'"):
        schema_enum("classifier", "nope")
    with pytest.raises(CatvaeError, match="no enum"):
        schema_enum("classifier", "epochs")


def test_the_vocabulary_imports_no_torch():
    """The Snakefile reads it when it plans the DAG."""
    code = "import sys, catvae.vocabulary.arms; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_step_settings_from_a_validated_config():
    """One config -> step-arguments mapping for the rules' params and the CLI (catvae/vocabulary/steps.py)."""
    from catvae.config import validate_config
    from catvae.vocabulary import steps

    cfg = validate_config({"generators": {"models": ["vae", "catvae", "ddpm"]}})
    assert steps.tstr_images(cfg) == "largest"
    assert steps.tstr_images(validate_config({"quality": {"tstr_images": 7}})) == 7
    assert steps.synthesis_option(cfg, "catvae", "context") == cfg["generators"]["catvae"]["context"]
    assert steps.synthesis_option(cfg, "ddpm", "context") == "mean"  # the CAT-VAE's schema default; unread there
    assert steps.synthesis_option(cfg, "ddpm", "sampling") == {}
    assert not set(steps.training_options(cfg, "catvae")) & set(steps.SYNTHESIS_ONLY_KEYS)
    assert steps.paper_training_options(cfg, "vae")["selection"] == "last"
    assert list(steps.classifier_options(cfg)) == list(steps.CLASSIFIER_KEYS)


def test_enums_and_the_sampling_default_come_from_the_schema():
    from catvae.config import defaults
    from catvae.data.policy import NONFINITE, ON_ERROR
    from catvae.data.brats.slicing import SELECTION_MODES
    from catvae.generators.latents import DEFAULT_SAMPLING, SAMPLING_MODES

    assert DEFAULT_SAMPLING == defaults("generators", "vae", "sampling") == {
        "mode": "prior", "components": 10, "covariance": "full"}
    assert SAMPLING_MODES == ("prior", "gmm")
    assert ON_ERROR == schema_enum("dataset", "on_error") and NONFINITE == schema_enum("dataset", "nonfinite")
    assert SELECTION_MODES == ("center", "all", "stride")


def test_layout_paths_and_seeds():
    from catvae.vocabulary.layout import Layout, arm_replicate, classifier_runs, replicate_seed

    layout = Layout.of({"results": "results", "dataset": {"name": "phantom"}})
    assert layout.generator_dir() == "results/phantom/generators/fold{fold}/{model}/rep{rep}/{group}"
    assert layout.synthetic_files(0, "vae", 1, "Tumor")["manifest"] == (
        "results/phantom/synthetic/fold0/vae/rep1/Tumor/manifest.csv")
    assert layout.classifier_files()["metrics"] == "results/phantom/classifier/fold{fold}/{arm}/seed{seed}/metrics.json"
    assert layout.latents(0, 0) == "results/phantom/generators/fold0/cvae/rep0/all/latents.npz"
    assert layout.log("split/fold{fold}") == "results/phantom/logs/split/fold{fold}.log"
    assert [replicate_seed(5, r) for r in range(3)] == [5, 6, 7] and arm_replicate(5, 3) == 2
    assert list(classifier_runs([0, 1], ["none"], [0])) == [(0, "none", 0), (1, "none", 0)]
    with pytest.raises(CatvaeError):
        replicate_seed(5, -1)


def test_dataset_kinds_are_the_schema_enum_and_declare_their_inputs():
    from catvae.data.kinds import KINDS, dataset_classes, dataset_kind

    assert tuple(KINDS) == schema_enum("dataset", "kind")
    assert dataset_kind({"kind": "phantom"}).inputs({"kind": "phantom"}, "results/x/phantom") == {
        "cohort": "results/x/phantom"}
    assert dataset_kind({"kind": "brats"}).inputs({"kind": "brats", "root": "/data/b"}, "c") == {"root": "/data/b"}
    assert [k for k, kind in KINDS.items() if kind.needs_root] == ["brats", "folder"]
    assert dataset_classes({"kind": "phantom"}) == ["NoTumor", "Tumor"]
    with pytest.raises(CatvaeError, match="dataset.kind"):
        dataset_kind({"kind": "gan"})


def test_the_kinds_and_their_readers_import_without_a_cycle():
    """Each module imports on its own, first, in a fresh interpreter (an import cycle fails one of them)."""
    for module in ("catvae.data.kinds", "catvae.data.folder", "catvae.data.medmnist", "catvae.config",
                   "catvae.vocabulary.steps", "catvae.vocabulary.layout", "catvae.preflight"):
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


def test_the_reports_vocabulary_agrees_with_the_schema():
    """The interval kinds and metrics the statistics label are the schema's enums; the comparisons' default is the
    schema's default."""
    from catvae.config import defaults
    from catvae.report.statistics import DEFAULT_COMPARE, INTERVALS, METRICS

    assert tuple(INTERVALS) == schema_enum("evaluation", "interval")
    assert set(schema_enum("evaluation", "primary")) <= set(METRICS)
    assert list(DEFAULT_COMPARE) == defaults("evaluation")["compare"] == ["none", "oversample", "vae"]


def test_the_brats_sequences_are_the_schema_enum():
    """The four canonical sequences and the 2023 aliases are `dataset.modalities`' enum; the phantom writes the four."""
    from catvae.data.brats import discover, phantom

    assert set(discover.MODALITIES) | set(discover.ALIASES) == set(schema_enum("dataset", "modalities"))
    assert phantom.MODALITIES is discover.MODALITIES


def test_medmnist_declares_the_files_it_reads(tmp_path):
    """Every configured file; under `on_error: skip` a missing file is left out, not declared (the run skips it)."""
    import numpy as np

    from catvae.data.kinds import dataset_kind

    for name in ("a", "b"):
        np.savez(tmp_path / f"{name}.npz", **{f"{part}_{kind}": (np.zeros((2, 4, 4), np.uint8) if kind == "images"
                                                                  else np.array([0, 1]))
                                            for part in ("train", "val", "test") for kind in ("images", "labels")})
    files = [{"path": str(tmp_path / f"{n}.npz"), "modality": n} for n in ("a", "b")]
    medmnist = {"kind": "medmnist", "medmnist": {"files": files}}
    assert dataset_kind(medmnist).inputs(medmnist, "c") == {"medmnist": [f["path"] for f in files]}
    skip = {**medmnist, "on_error": "skip", "medmnist": {"files": [*files, {"path": str(tmp_path / "gone.npz")}]}}
    assert dataset_kind(skip).inputs(skip, "c") == {"medmnist": [f["path"] for f in files]}
