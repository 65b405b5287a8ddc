"""Report figures: confusion matrices, learning curves, real-vs-generated samples, the cVAE latent space, and
the forest plot of paired effects.

Every function takes plain data (the contracts' JSON records, DataFrames, arrays, a .npz path), draws with
matplotlib's Agg backend (no display on a cluster node) and writes one PNG atomically.
"""

from __future__ import annotations

import logging
import math
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from catvae.errors import CatvaeError  # noqa: E402
from catvae.io import atomic_path  # noqa: E402
from catvae.report.statistics import METRICS, REFERENCES  # noqa: E402
from catvae.report.tables import arm_fields, arm_label, label, order_arms  # noqa: E402

log = logging.getLogger("catvae.report.figures")

HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


def _save(fig: plt.Figure, out_png: str | os.PathLike) -> Path:
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    log.info("wrote %s", out)
    return out


# ------------------------------------------------------------------------------------------ confusion


def confusion_grid(metrics: list[dict], out_png: str | os.PathLike,
                   method_order: Sequence[str] | None = None) -> Path:
    """One confusion-matrix panel per arm, in the classification table's row order.

    With several seeds (and folds) an arm's matrices are *summed* (counts stay whole numbers: each test image is
    counted once per seed, in the one fold that tests it) and the panel title says which seeds and how many folds. Colour is the row share (recall per true
    class), so arms with different test sizes compare; the cells are annotated with the counts.
    """
    if not metrics:
        raise CatvaeError(f"{out_png}: no metrics.json records to draw")
    by_arm: dict[str, list[dict]] = {}
    classes = None
    for record in metrics:
        where = record.get("_path", f"metrics.json of arm {record.get('arm')} seed {record.get('seed')}")
        for key in ("arm", "method", "target", "seed", "classes", "confusion"):
            if key not in record:
                raise CatvaeError(f"{where}: missing key {key}")
        classes = classes or list(record["classes"])
        matrix = np.asarray(record["confusion"], dtype=float)
        if list(record["classes"]) != classes or matrix.shape != (len(classes), len(classes)):
            raise CatvaeError(f"{where}: confusion of shape {matrix.shape} does not match classes {classes}")
        by_arm.setdefault(str(record["arm"]), []).append(record)

    arms = order_arms(metrics, method_order)
    ncols = min(4, len(arms))
    nrows = math.ceil(len(arms) / ncols)
    size = 1.0 + 0.9 * len(classes)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.5, size * nrows + 0.4), squeeze=False)
    for ax, arm in zip(axes.flat, arms):
        runs = sorted(by_arm[arm], key=lambda r: (r.get("fold", 0), r["seed"]))
        counts = sum(np.asarray(r["confusion"], dtype=float) for r in runs)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=9)
        seeds = ", ".join(str(s) for s in sorted({r["seed"] for r in runs}))
        folds = len({r.get("fold", 0) for r in runs})
        how = f"seed {seeds}" if len(runs) == 1 else f"sum of seeds {seeds}"
        how += f", {folds} folds" if folds > 1 else ""
        ax.set_title(f"{arm}\n({how})", fontsize=9)
        ax.set_xticks(range(len(classes)), classes, fontsize=8, rotation=30 if len(classes) > 3 else 0)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    for ax in list(axes.flat)[len(arms):]:
        ax.axis("off")
    fig.suptitle("Confusion matrices on the held-out test set (colour: share of the true class)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


# ------------------------------------------------------------------------------------ learning curves


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    """A classifier history.csv, checked against the contract's columns."""
    try:
        frame = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CatvaeError(f"{path}: cannot read history ({exc})") from exc
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise CatvaeError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def learning_curves(histories: Mapping[str, pd.DataFrame], out_png: str | os.PathLike,
                    method_order: Sequence[str] | None = None) -> Path:
    """Accuracy (top) and loss (bottom) per epoch, one column per method, one colour per target within it.

    Each arm's (key's) history may hold several runs (seeds, folds: rows repeating an epoch); the curve is their
    mean per epoch. One panel per method keeps each panel to a few lines: the demo's 12 arms drawn on one pair of
    axes were 24 overlapping lines. Solid = train, dashed = validation; a row's panels share their y axis.
    """
    if not histories:
        raise CatvaeError(f"{out_png}: no histories to draw")
    for name, frame in histories.items():
        missing = [c for c in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc") if c not in frame]
        if missing:
            raise CatvaeError(f"history of {name}: missing column(s) {', '.join(missing)}")
    arms = order_arms([arm_fields(arm) for arm in histories], method_order)
    methods = list(dict.fromkeys(arm_fields(arm)["method"] for arm in arms))
    fig, axes = plt.subplots(2, len(methods), figsize=(max(4.0, 2.7 * len(methods)), 5.6), sharey="row",
                             squeeze=False)
    colours = plt.get_cmap("tab10")
    for col, method in enumerate(methods):
        ax_acc, ax_loss = axes[0, col], axes[1, col]
        for k, arm in enumerate(a for a in arms if arm_fields(a)["method"] == method):
            mean = histories[arm].groupby("epoch").mean(numeric_only=True).reset_index()
            target = arm_fields(arm)["target"]
            for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
                ax.plot(mean["epoch"], mean[f"train_{metric}"], color=colours(k % colours.N), lw=1.4,
                        label=f"{target} train" if target is not None else "train")
                ax.plot(mean["epoch"], mean[f"val_{metric}"], color=colours(k % colours.N), lw=1.4, ls="--",
                        label=f"{target} val" if target is not None else "val")
        ax_acc.set_title(label(method), fontsize=9)
        ax_acc.legend(fontsize=6, loc="lower right")
        for ax in (ax_acc, ax_loss):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        ax_loss.set_xlabel("epoch")
    axes[0, 0].set_ylabel("accuracy")
    axes[1, 0].set_ylabel("loss")
    runs = max(int(frame["epoch"].value_counts().max()) for frame in histories.values())
    fig.suptitle("Learning curves per method and target (solid: train, dashed: validation"
                 + (f"; mean over up to {runs} runs: seeds x folds)" if runs > 1 else ")"), fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


# ---------------------------------------------------------------------------------------- sample grid


def _check_images(images: Any, name: str) -> np.ndarray:
    arr = np.asarray(images, dtype=float)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise CatvaeError(f"{name}: images must be [N, C, H, W] with C 1 or 3, got shape {arr.shape}")
    if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1):
        raise CatvaeError(f"{name}: image values must lie in [0, 1]")
    return arr


def sample_grid(real: Mapping[str, np.ndarray], generated: Mapping[str, Mapping[str, np.ndarray]],
                out_png: str | os.PathLike, n_per_row: int = 6) -> Path:
    """Rows: for each class, its real images then each generator's; up to `n_per_row` images a row.

    `generated` maps generator -> class -> images; a generator without images of a class leaves its row
    blank with a note, so a missing synthesis is visible rather than silently skipped.
    """
    if not real:
        raise CatvaeError(f"{out_png}: no real images to draw")
    if n_per_row < 1:
        raise CatvaeError(f"{out_png}: n_per_row must be >= 1, got {n_per_row}")
    rows: list[tuple[str, str, np.ndarray | None]] = []
    for cls, images in real.items():
        rows.append((cls, "real", _check_images(images, f"real images of {cls}")))
        for model, per_class in generated.items():
            images = per_class.get(cls)
            rows.append((cls, label(model),
                         None if images is None else _check_images(images, f"{model} images of {cls}")))
    fig, axes = plt.subplots(len(rows), n_per_row, figsize=(1.3 * n_per_row + 1.2, 1.35 * len(rows)),
                             squeeze=False)
    for r, (cls, source, images) in enumerate(rows):
        for c in range(n_per_row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if images is not None and c < len(images):
                image = images[c]
                if image.shape[0] == 1:
                    ax.imshow(image[0], cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(np.transpose(image, (1, 2, 0)))
            elif images is None and c == 0:
                ax.text(0.05, 0.5, "no images", fontsize=8, va="center", transform=ax.transAxes)
        axes[r, 0].set_ylabel(f"{cls}\n{source}", fontsize=9, rotation=0, ha="right", va="center")
    fig.suptitle("Real vs generated images", fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


# --------------------------------------------------------------------------------------- latent space


def latent_space(latents_npz: str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """PCA (2 components) of the conditional VAE's latent means, coloured by class and by modality.

    With one modality (every BraTS study: FLAIR only) the by-modality panel would be one colour, so only the
    by-class panel is drawn and the title names the modality.
    """
    from sklearn.decomposition import PCA  # scikit-learn is only needed for this figure

    try:
        with np.load(latents_npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("mu", "labels", "modalities", "class_names", "modality_names")}
    except FileNotFoundError as exc:
        raise CatvaeError(f"{latents_npz}: file not found") from exc
    except KeyError as exc:
        raise CatvaeError(f"{latents_npz}: missing array {exc}") from exc
    except (ValueError, OSError) as exc:
        raise CatvaeError(f"{latents_npz}: not a readable .npz ({exc})") from exc
    mu = np.asarray(arrays["mu"], dtype=float)
    labels, modalities = arrays["labels"].astype(int), arrays["modalities"].astype(int)
    if mu.ndim != 2 or mu.shape[0] < 2 or mu.shape[1] < 2:
        raise CatvaeError(f"{latents_npz}: mu must be [N>=2, D>=2], got shape {mu.shape}")
    if labels.shape != (mu.shape[0],) or modalities.shape != (mu.shape[0],):
        raise CatvaeError(f"{latents_npz}: labels/modalities must have one entry per row of mu ({mu.shape[0]})")
    groups = {"class": (labels, [str(n) for n in arrays["class_names"]]),
              "modality": (modalities, [str(n) for n in arrays["modality_names"]])}
    for what, (codes, names) in groups.items():
        if codes.size and (codes.min() < 0 or codes.max() >= len(names)):
            raise CatvaeError(f"{latents_npz}: {what} codes outside 0..{len(names) - 1}")

    only_modality = ""
    if len(groups["modality"][1]) == 1:
        only_modality = f", modality {groups.pop('modality')[1][0]}"
    pca = PCA(n_components=2)
    points = pca.fit_transform(mu)
    explained = pca.explained_variance_ratio_
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups) + 0.5, 4.6), squeeze=False)
    for ax, (what, (codes, names)) in zip(axes[0], groups.items()):
        colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
        for k, name in enumerate(names):
            chosen = codes == k
            if chosen.any():
                ax.scatter(points[chosen, 0], points[chosen, 1], s=8, alpha=0.7, color=colours(k % colours.N),
                           label=f"{name} ({chosen.sum()})")
        ax.set_title(f"coloured by {what}")
        ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({explained[1]:.0%} of variance)")
        ax.legend(fontsize=7, markerscale=2, loc="best")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Conditional VAE latent means (PCA of mu, N={mu.shape[0]}, D={mu.shape[1]}{only_modality})",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out_png)


# ---------------------------------------------------------------------------------------- forest plot


def effects_forest(comparisons: pd.DataFrame, out_png: str | os.PathLike, *, metric: str = "balanced_accuracy",
                   alpha: float = 0.05, method_order: Sequence[str] | None = None, note: str = "") -> Path:
    """Each arm's paired difference in `metric` with its CI: one panel per reference kind, in the order of the
    comparisons (real only, random oversampling and the VAE at the same target by default); a line at zero; a
    filled marker and ``*`` where Holm's p <= `alpha` (only the primary metric has Holm p-values).

    `comparisons` is :func:`catvae.report.statistics.compare_arms`'s long table; `note` (how the intervals
    were made) goes under the panels.
    """
    needed = ("arm", "reference", "versus", "metric", "difference", "low", "high", "p_holm")
    missing = [c for c in needed if c not in comparisons.columns]
    if missing:
        raise CatvaeError(f"{out_png}: comparisons lack column(s) {', '.join(missing)}")
    rows = comparisons[comparisons["metric"] == metric]
    if rows.empty:
        raise CatvaeError(f"{out_png}: no comparisons of {metric} to draw")
    arms = order_arms([arm_fields(a) for a in rows["arm"]], method_order)
    panels = list(dict.fromkeys(rows["versus"]))
    # one x scale for every panel, so effect sizes compare across them
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 1.2 + 0.38 * len(arms)), sharex=True,
                             sharey=True, squeeze=False)
    for ax, versus in zip(axes[0], panels):
        mine = rows[rows["versus"] == versus].set_index("arm")
        ax.axvline(0.0, color="0.35", lw=1, ls="--", zorder=1)
        for y, arm in enumerate(arms):
            if arm not in mine.index:
                continue
            r = mine.loc[arm]
            significant = bool(r["p_holm"] <= alpha)  # NaN (an exploratory metric): never
            colour = "tab:blue" if r["difference"] >= 0 else "tab:red"
            ax.errorbar(r["difference"], y, xerr=[[r["difference"] - r["low"]], [r["high"] - r["difference"]]],
                        fmt="o", color=colour, mfc=colour if significant else "white", ms=6, capsize=3, lw=1.4,
                        zorder=2)
            if significant:
                ax.annotate("*", (r["high"], y), xytext=(4, -4), textcoords="offset points", fontsize=12,
                            color=colour)
        if mine.empty:
            ax.text(0.5, 0.5, "no such arms", transform=ax.transAxes, ha="center", fontsize=9, color="0.4")
        reference = "" if versus == REFERENCES["none"] else " (same target)"
        ax.set_title(f"vs {versus}{reference}", fontsize=10)
        ax.set_xlabel(f"difference in {METRICS[metric].lower()} (arm - reference)")
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(range(len(arms)), [arm_label(a) for a in arms], fontsize=9)
    axes[0, 0].set_ylim(len(arms) - 0.5, -0.5)  # first arm on top, as in the tables
    fig.suptitle(f"Paired effects on {METRICS[metric].lower()} with CIs "
                 f"(filled, *: significant after Holm at {alpha:g})", fontsize=10)
    if note:
        fig.text(0.01, -0.02, textwrap.fill(note, 190), fontsize=7, ha="left", va="top")
    fig.tight_layout()
    return _save(fig, out_png)
