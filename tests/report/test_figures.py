"""Figures: each writes a readable PNG of plausible size from tiny fixture data; bad input is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from catvae.errors import CatvaeError
from catvae.report.figures import (
    confusion_grid, effects_forest, latent_space, learning_curves, read_history, sample_grid,
)


def _metrics(arm, method, target, seed, confusion):
    return {"arm": arm, "method": method, "target": target, "seed": seed, "classes": ["NoTumor", "Tumor"],
            "confusion": confusion}


def _png_size(path):
    assert path.exists() and path.stat().st_size > 5_000  # a drawn figure, not an empty canvas
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_confusion_grid(tmp_path):
    metrics = [_metrics("none", "none", None, 0, [[5, 3], [1, 20]]),
               _metrics("vae@437", "vae", 437, 0, [[6, 2], [2, 19]]),
               _metrics("vae@437", "vae", 437, 1, [[7, 1], [3, 18]]),
               _metrics("oversample@437", "oversample", 437, 0, [[4, 4], [0, 21]])]
    out = confusion_grid(metrics, tmp_path / "figures" / "confusion.png")
    width, height = _png_size(out)
    assert width > 400 and height > 200


def test_confusion_grid_rejects_wrong_shape(tmp_path):
    with pytest.raises(CatvaeError, match="does not match classes"):
        confusion_grid([_metrics("none", "none", None, 0, [[1, 2, 3]])], tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_learning_curves(tmp_path):
    epochs = np.arange(1, 6)
    histories = {
        arm: pd.DataFrame({"epoch": epochs, "train_loss": 1 / epochs + shift, "train_acc": 1 - 0.5 / epochs - shift,
                           "val_loss": 1.2 / epochs + shift, "val_acc": 0.9 - 0.5 / epochs - shift, "seconds": 1.0})
        for arm, shift in (("none/seed0", 0.0), ("vae@437/seed0", 0.1), ("classic@437/seed0", 0.2))
    }
    width, height = _png_size(learning_curves(histories, tmp_path / "curves.png"))
    assert width > 800 and height > 300


def test_learning_curves_one_panel_per_method_mean_over_runs(tmp_path, monkeypatch):
    """Twelve arms were 24 lines on one pair of axes: now a column per method, a line pair per target, runs averaged."""
    import matplotlib.pyplot as plt

    drawn = {}
    monkeypatch.setattr("catvae.report.figures._save", lambda fig, out: drawn.setdefault("fig", fig))
    epochs = np.arange(1, 4)

    def run(level):
        return pd.DataFrame({"epoch": epochs, "train_loss": level, "train_acc": level, "val_loss": level,
                             "val_acc": level, "seconds": 1.0})

    arms = ["none", "weighted", "vae@437", "vae@1000", "oversample@437", "oversample@1000"]
    histories = {arm: pd.concat([run(0.2), run(0.4)], ignore_index=True) for arm in arms}  # two seeds each
    learning_curves(histories, tmp_path / "c.png", method_order=["vae", "oversample"])
    axes = drawn["fig"].axes
    assert len(axes) == 2 * 4  # accuracy and loss rows x none, weighted, VAE, oversampling
    assert [ax.get_title() for ax in axes[:4]] == ["None (real only)", "Class-weighted loss", "VAE",
                                                    "Random oversampling"]
    assert max(len(ax.lines) for ax in axes) == 4  # two targets x train/val
    assert np.allclose(axes[2].lines[0].get_ydata(), 0.3)  # the mean of the two runs per epoch
    plt.close(drawn["fig"])


def test_read_history_checks_columns(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,train_loss\n1,0.5\n")
    with pytest.raises(CatvaeError, match="history.csv: missing column"):
        read_history(path)


def test_sample_grid(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    blob = np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 80.0)[None]  # a bright disc, like a brain slice
    real = {cls: np.clip(blob[None] * rng.uniform(0.6, 1, (4, 1, 1, 1)), 0, 1) for cls in ("NoTumor", "Tumor")}
    generated = {"vae": {cls: rng.uniform(0, 1, (5, 1, 32, 32)) for cls in real},
                 "catvae": {"Tumor": rng.uniform(0, 1, (3, 1, 32, 32))}}  # catvae/NoTumor missing: a note
    width, height = _png_size(sample_grid(real, generated, tmp_path / "samples.png", n_per_row=4))
    assert height > width / 2  # six rows (2 classes x real + 2 generators) of four images


def test_sample_grid_rejects_bad_images(tmp_path):
    with pytest.raises(CatvaeError, match=r"\[N, C, H, W\]"):
        sample_grid({"Tumor": np.zeros((2, 32, 32))}, {}, tmp_path / "s.png")
    with pytest.raises(CatvaeError, match=r"\[0, 1\]"):
        sample_grid({"Tumor": np.full((2, 1, 8, 8), 255.0)}, {}, tmp_path / "s.png")


def test_latent_space(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 40)
    modalities = np.tile([0, 1], 60)
    mu = rng.normal(size=(120, 16)) + 3 * np.eye(16)[labels] + 1.5 * np.eye(16)[modalities + 5]
    path = tmp_path / "latents.npz"
    np.savez(path, mu=mu, labels=labels, modalities=modalities,
             class_names=np.array(["NoTumor", "Tumor", "Other"]), modality_names=np.array(["flair", "t1"]))
    width, height = _png_size(latent_space(path, tmp_path / "latent.png"))
    assert width > 800 and height > 300


def test_latent_space_one_modality_draws_no_modality_panel(tmp_path):
    """A by-modality panel of one modality is one colour: only the class panel is drawn."""
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 30)
    path = tmp_path / "latents.npz"
    np.savez(path, mu=rng.normal(size=(60, 8)) + 2 * np.eye(8)[labels], labels=labels, modalities=np.zeros(60, int),
             class_names=np.array(["NoTumor", "Tumor"]), modality_names=np.array(["flair"]))
    width, height = _png_size(latent_space(path, tmp_path / "latent.png"))
    assert width < 900 and height > 300  # one panel (two were ~1,300 px wide)


def test_latent_space_rejects_bad_npz(tmp_path):
    path = tmp_path / "latents.npz"
    np.savez(path, mu=np.zeros((4, 3)), labels=np.zeros(4, int))
    with pytest.raises(CatvaeError, match="latents.npz: missing array"):
        latent_space(path, tmp_path / "l.png")
    np.savez(path, mu=np.zeros((4, 3)), labels=np.array([0, 0, 1, 5]), modalities=np.zeros(4, int),
             class_names=np.array(["a", "b"]), modality_names=np.array(["flair"]))
    with pytest.raises(CatvaeError, match="class codes outside"):
        latent_space(path, tmp_path / "l.png")


def _comparisons():
    rows = []
    for arm, versus, reference, diff, low, high, p_holm in (
        ("vae@437", "real only", "none", 0.10, -0.05, 0.24, 0.40),
        ("catvae@437", "real only", "none", 0.30, 0.12, 0.45, 0.004),
        ("catvae@1000", "real only", "none", -0.20, -0.35, -0.06, 0.03),
        ("oversample@437", "real only", "none", 0.25, 0.10, 0.40, 0.01),
        ("vae@437", "random oversampling", "oversample@437", -0.15, -0.30, 0.01, 0.20),
        ("catvae@437", "random oversampling", "oversample@437", 0.05, -0.08, 0.18, 0.90),
        ("catvae@437", "VAE", "vae@437", 0.20, 0.02, 0.35, 0.04),  # the CAT-VAE paper's claim: its own panel
    ):
        for metric in ("balanced_accuracy", "macro_f1"):
            rows.append({"arm": arm, "reference": reference, "versus": versus, "metric": metric,
                         "difference": diff, "low": low, "high": high, "p": p_holm / 2, "p_holm": p_holm})
    return pd.DataFrame(rows)


def test_effects_forest(tmp_path):
    out = effects_forest(_comparisons(), tmp_path / "figures" / "effects.png", alpha=0.05,
                         method_order=["vae", "catvae", "oversample"], note="95% CI: cluster bootstrap")
    width, height = _png_size(out)
    assert width > 800 and height > 200
    two_panels = effects_forest(_comparisons().query("versus != 'VAE'"), tmp_path / "two.png", alpha=0.05)
    assert width > 1.3 * _png_size(two_panels)[0]  # one panel per reference: the VAE panel is drawn


def test_effects_forest_rejects_bad_input(tmp_path):
    with pytest.raises(CatvaeError, match="no comparisons of auroc"):
        effects_forest(_comparisons(), tmp_path / "e.png", metric="auroc")
    with pytest.raises(CatvaeError, match="lack column.*p_holm"):
        effects_forest(_comparisons().drop(columns="p_holm"), tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()
