"""Settings that would skew a study or cannot run are refused when the config is read, before any job.

Duplicates that would be counted twice, more folds than subjects, outputs beyond the free disk; every problem of a
file in one message. The workflow-level cases (`snakemake -n`) are in tests/workflow/test_command_line_config.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from catvae.config import validate_config
from catvae.errors import CatvaeError
from catvae.preflight import check_study, job_counts, plan, png_bytes, study_arms
from conftest import REPO, TINY_CONFIG

CLASSES = ["NoTumor", "Tumor"]


@pytest.mark.parametrize(
    "change, key, value",
    [
        ({"seeds": [0, 1, 0]}, "seeds", "0"),
        ({"synthesis": {"targets": [437, 1000, 437]}}, "synthesis.targets", "437"),
        ({"generators": {"models": ["vae", "cvae", "vae"]}}, "generators.models", "'vae'"),
        ({"classifier": {"baselines": ["classic", "classic"]}}, "classifier.baselines", "'classic'"),
        ({"dataset": {"modalities": ["flair", "flair"]}}, "dataset.modalities", "'flair'"),
        ({"dataset": {"kind": "folder", "root": ".", "folder": {"classes": ["a", "b", "a"]}}},
         "dataset.folder.classes", "'a'"),
        ({"dataset": {"kind": "medmnist", "medmnist": {"files": [{"path": "x.npz"}, {"path": "x.npz"}]}}},
         "dataset.medmnist.files", "'x.npz'"),
    ],
)
def test_a_duplicate_that_would_count_twice_is_refused_naming_key_and_value(change, key, value):
    with pytest.raises(CatvaeError) as err:
        validate_config(change)
    assert f"config key '{key}'" in str(err.value) and f"{value} is given more than once" in str(err.value)


def test_every_problem_of_a_file_in_one_message_with_the_nearest_key():
    """Three wrong values and a misspelt key: one run, one message naming all four."""
    bad = {"seeds": [0, 1, 0], "dataset": {"kind": "dicom"}, "classifier": {"epochs": 0},
           "evaluation": {"fodls": 5}}
    with pytest.raises(CatvaeError) as err:
        validate_config(bad)
    text = str(err.value)
    assert text.startswith("4 problems in the config:")
    for key in ("seeds", "dataset.kind", "classifier.epochs"):
        assert f"config key '{key}'" in text
    assert "config key 'evaluation.fodls': unknown key; did you mean 'evaluation.folds'?" in text


def test_a_single_problem_reads_as_one_line():
    with pytest.raises(CatvaeError, match=r"^config key 'device': 'tpu' does not match"):
        validate_config({"device": "tpu"})


def _tiny(**changes) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(TINY_CONFIG))
    for key, value in changes.items():
        block, _, name = key.rpartition(".")
        target = cfg
        for part in filter(None, block.split(".")):
            target = target.setdefault(part, {})
        target[name] = value
    return validate_config(cfg)


def test_folds_above_the_phantom_subjects_are_refused_before_extraction(tmp_path):
    cfg = _tiny(**{"evaluation.folds": 9, "results": str(tmp_path)})
    with pytest.raises(CatvaeError, match=r"'evaluation\.folds' is 9 but there are only 8 subjects"):
        check_study(cfg, CLASSES)


def test_folds_above_the_brats_subject_folders_are_refused_without_reading_a_file(tmp_path):
    root = tmp_path / "brats"
    for i in range(3):
        (root / f"BraTS20_Training_{i:03d}").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "name_mapping.csv").write_text("not a subject\n")
    cfg = _tiny(**{"evaluation.folds": 4, "results": str(tmp_path / "results"), "dataset.kind": "brats",
                   "dataset.root": str(root)})
    with pytest.raises(CatvaeError, match=r"'evaluation\.folds' is 4 but there are only 3 subjects"):
        check_study(cfg, CLASSES)
    cfg["evaluation"]["folds"] = 3
    check_study(cfg, CLASSES)


def test_outputs_beyond_the_free_space_are_refused_with_estimate_free_space_and_key(tmp_path):
    cfg = _tiny(results=str(tmp_path / "results"))
    need = plan(cfg, CLASSES).disk_bytes
    check_study(cfg, CLASSES, free_space=lambda _: need)  # exactly enough
    with pytest.raises(CatvaeError) as err:
        check_study(cfg, CLASSES, free_space=lambda _: need - 1)
    text = str(err.value)
    assert "config key 'synthesis.targets'" in text and "is free under" in text and "preflight.check_disk" in text
    cfg["preflight"]["check_disk"] = False
    check_study(cfg, CLASSES, free_space=lambda _: 0)


def test_an_oversized_target_is_refused_on_this_disk(tmp_path):
    """`synthesis.targets: [10**12]`: terabytes of PNGs per class and generator; no disk here holds them."""
    cfg = _tiny(**{"synthesis.targets": [10**12], "results": str(tmp_path)})
    with pytest.raises(CatvaeError, match=r"config key 'synthesis\.targets': the study needs an estimated"):
        check_study(cfg, CLASSES)


def test_files_a_previous_run_wrote_count_as_space_the_estimate_may_reuse(tmp_path):
    cfg = _tiny(results=str(tmp_path))
    need = plan(cfg, CLASSES).disk_bytes
    written = tmp_path / cfg["dataset"]["name"] / "synthetic" / "old.png"
    written.parent.mkdir(parents=True)
    written.write_bytes(b"\0" * 100)
    check_study(cfg, CLASSES, free_space=lambda _: need - 100)
    with pytest.raises(CatvaeError, match="is free under"):
        check_study(cfg, CLASSES, free_space=lambda _: need - 101)


def test_synthetic_count_is_the_largest_target_or_tstr_images_and_balance_is_bounded():
    cfg = validate_config({"synthesis": {"targets": [437, 1000]}, "quality": {"tstr_images": 500}})
    assert plan(cfg, CLASSES).synthetic_per_class == 1000
    cfg = validate_config({"synthesis": {"targets": [437]}, "quality": {"tstr_images": 500}})
    assert plan(cfg, CLASSES).synthetic_per_class == 500
    # balance on the phantom: at most every slice extraction can cut (8 subjects x 3 planes x 3 slices)
    cfg = _tiny()
    assert plan(cfg, CLASSES).slices == 8 * 3 * 3
    assert plan(cfg, CLASSES).synthetic_per_class == 8 * 3 * 3


def test_png_bound_holds_for_incompressible_images(tmp_path):
    """The estimate is an upper bound: a PNG of random pixels (which zlib cannot shrink) stays within it."""
    import numpy as np

    from catvae.data.images import save_png

    for size in (8, 16, 64, 128, 224, 300, 512):
        path = tmp_path / f"{size}.png"
        save_png(path, np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8))
        assert path.stat().st_size <= png_bytes(size)


def test_arms_are_the_workflow_s_arms():
    assert study_arms(["vae"], [437], ["oversample", "weighted"]) == ["none", "weighted", "vae@437", "oversample@437"]


def test_job_counts_of_the_paper_design():
    cfg = validate_config({"seeds": [0, 1], "evaluation": {"folds": 5}, "generators": {"replicates": 2}})
    jobs = job_counts(cfg, CLASSES)
    # 5 folds x 2 replicates x (vae 2 classes + catvae 2 classes + cvae 1 model)
    assert jobs["train_generator"] == 5 * 2 * 5
    # arms: none, weighted, 3 generators x 3 targets, 2 resampling baselines x 3 targets
    assert jobs["train_classifier"] == 5 * (2 + 9 + 6) * 2
    assert "paper_protocol_table" not in jobs


def test_validate_config_runs_the_workflow_s_checks(tmp_path):
    """A BraTS config whose root is missing is not 'valid' to the CLI while `snakemake -n` refuses it."""
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump({"dataset": {"kind": "brats", "root": str(tmp_path / "nowhere")}}))
    proc = subprocess.run([sys.executable, "-m", "catvae", "validate-config", "--config", str(bad)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and "config key 'dataset.root': folder not found" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "catvae", "validate-config", "--show", "--config",
                           str(REPO / ".test" / "config" / "config.yaml")], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "catvae pre-flight:" in proc.stderr and "disk estimate:" in proc.stderr
    assert "catvae pre-flight" not in proc.stdout  # stdout stays the resolved config alone


def test_checkpoint_estimate_matches_a_saved_generator_checkpoint(tmp_path):
    """A generator checkpoint holds its weights and Adam's two moments: the meta-device estimate is that size."""
    import torch

    from catvae.models.factory import build_generator
    from catvae.optim import build_adam
    from catvae.preflight import check_outputs_fit

    cfg = _tiny(**{"generators.models": ["vae"], "evaluation.folds": 1, "seeds": [0], "results": str(tmp_path)})
    model = build_generator("vae", image_size=16, channels=1, options=cfg["generators"]["vae"])
    optimiser = build_adam(model.parameters(), lr=1e-3)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    optimiser.step()
    path = tmp_path / "checkpoint.pt"
    torch.save({"model_state": model.state_dict(), "optimizer_state": optimiser.state_dict()}, path)
    sizes = check_outputs_fit(cfg, CLASSES, ["flair"], free_space=lambda _: 10**15)
    assert abs(sizes["generators"] / len(CLASSES) - path.stat().st_size) < 0.02 * path.stat().st_size
    # PNGs fit, PNGs and checkpoints do not: refused when a run starts, naming both
    pngs = plan(cfg, CLASSES).disk_bytes
    with pytest.raises(CatvaeError, match=r"of PNGs .* of checkpoints, plus preflight\.reserve_gb 0 GB, but only"):
        check_outputs_fit(cfg, CLASSES, ["flair"], free_space=lambda _: pngs + sum(sizes.values()) - 1)


def test_reserve_is_left_free(tmp_path):
    cfg = _tiny(**{"results": str(tmp_path), "preflight.reserve_gb": 2})
    need = plan(cfg, CLASSES).disk_bytes
    check_study(cfg, CLASSES, free_space=lambda _: need + 2 * 10**9)
    with pytest.raises(CatvaeError, match=r"plus preflight\.reserve_gb 2 GB"):
        check_study(cfg, CLASSES, free_space=lambda _: need + 2 * 10**9 - 1)


def test_balance_is_bounded_by_the_manifest_once_extraction_has_run(tmp_path):
    cfg = _tiny(**{"results": str(tmp_path), "quality.tstr_images": None})
    manifest = tmp_path / "tiny" / "data" / "manifest.csv"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("subject,class\n" + "s1,Tumor\n" * 5 + "s2,NoTumor\n" * 2)
    preflight = plan(cfg, CLASSES)
    assert preflight.synthetic_per_class == 5 and str(manifest) in preflight.synthetic_source
