"""The results layout and the replicate-seed rule (catvae/vocabulary/layout.py)."""

from __future__ import annotations

import pytest

from catvae.errors import CatvaeError


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
