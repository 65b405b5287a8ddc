"""Protocol inflation: per arm and target, the reference's protocol beside what held-out subjects say.

The CAT-VAE paper's Table 7 (BraTS) reports accuracy rising with the target: 79.6% without augmentation, 84.0%
(VAE, 830 per class), 85.2% (CAT-VAE, 830), 88.0% (CAT-VAE, 1000), 93.6% (CAT-VAE, 2000). Its protocol scored a
random 20% of a pool that held every real image and the synthetic ones (catvae.classifier.paper_protocol). This
module puts, for every arm, the paper-protocol accuracy (mean over classifier seeds), the share of synthetic
images in its scored 20%, and the held-out balanced accuracy with its subject-bootstrap interval side by side,
and measures how much of the rise (from real only to the largest target, and from the smallest target to the
largest) the held-out estimate keeps, in balanced accuracy on both sides.

Targets are matched to Table 7 by rank: a config's three targets in increasing order (by the count the paper
protocol resolved on the whole cohort) stand for the paper's 830 / 1000 / 2000. config/paper.yaml's targets
resolve to exactly those counts on BraTS 2020; on another cohort the paper's values are drawn at the same rank for
orientation only, not as a prediction.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from catvae.errors import CatvaeError
from catvae.report.figures import _save, plt
from catvae.report.statistics import Interval, SubjectBootstrap
from catvae.report.tables import MeanStd, label, order_arms
from catvae.vocabulary.arms import Arm

#: The paper's BraTS targets (Table 7), per class, real images included.
PAPER_TARGETS: tuple[int, ...] = (830, 1000, 2000)
#: Table 7's accuracies: (method, rank of the target in PAPER_TARGETS or None for no augmentation) -> accuracy.
PAPER_TABLE7: dict[tuple[str, int | None], float] = {
    ("none", None): 0.796,
    ("vae", 0): 0.840,
    ("catvae", 0): 0.852,
    ("catvae", 1): 0.880,
    ("catvae", 2): 0.936,
}
COLUMNS = ("Method", "Target", "Pool target", "Paper-protocol accuracy", "Paper-protocol balanced accuracy",
           "Synthetic share of scored 20%", "Held-out balanced accuracy", "Held-out accuracy",
           "Paper − held-out", "Paper Table 7")
METRIC = "balanced_accuracy"


def _paper_runs(paper: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    by_arm: dict[str, list[Mapping[str, Any]]] = {}
    for record in paper:
        for key in ("arm", "method", "target", "target_count", "seed", "accuracy", "balanced_accuracy", "n_test",
                    "n_test_synthetic"):
            if key not in record:
                where = record.get("_path", f"paper-protocol metrics of arm {record.get('arm')}")
                raise CatvaeError(f"{where}: missing key {key!r}")
        by_arm.setdefault(str(record["arm"]), []).append(record)
    return by_arm


def target_ranks(paper: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Arm -> rank of its target among its method's targets (0 = smallest pool target), the position that stands
    for Table 7's 830 / 1000 / 2000; arms without a target get no rank."""
    counts: dict[str, dict[str, int]] = {}
    for record in paper:
        if record["target_count"] is not None:
            counts.setdefault(str(record["method"]), {})[str(record["arm"])] = int(record["target_count"])
    ranks = {}
    for arms in counts.values():
        for rank, arm in enumerate(sorted(arms, key=lambda a: arms[a])):
            ranks[arm] = rank
    return ranks


def paper_value(method: str, rank: int | None) -> float:
    """Table 7's accuracy for `method` at target rank `rank` (None: no augmentation), NaN where it has none."""
    return PAPER_TABLE7.get((method, rank), math.nan)


def _table_order(paper: Sequence[Mapping[str, Any]], method_order: Sequence[str] | None,
                 ranks: Mapping[str, int]) -> list[str]:
    """The tables' arm order (catvae.report.tables.order_arms), a method's targets by their pool count, so that
    `balance` sits where its count puts it (first, on a cohort whose other targets exceed the majority)."""
    arms = order_arms(paper, method_order)
    methods = list(dict.fromkeys(Arm.split(arm)[0] for arm in arms))
    return sorted(arms, key=lambda a: (methods.index(Arm.split(a)[0]), ranks.get(a, -1)))


def protocol_inflation_table(paper: Sequence[Mapping[str, Any]], bootstrap: SubjectBootstrap,
                             heldout: Sequence[Mapping[str, Any]],
                             method_order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per arm that has both a paper-protocol run and held-out predictions.

    `paper` are the metrics_paper_protocol.json records, `heldout` the held-out metrics.json records and
    `bootstrap` the subject bootstrap over their predictions. Paper-protocol figures are MeanStd over classifier
    seeds (one pool, one split: the seeds move the weights only); the held-out balanced accuracy is the pooled
    point estimate with its percentile interval.
    """
    if not paper:
        raise CatvaeError("protocol inflation: no paper-protocol metrics given")
    by_arm = _paper_runs(paper)
    ranks = target_ranks(paper)
    heldout_acc: dict[str, list[float]] = {}
    for record in heldout:
        heldout_acc.setdefault(str(record["arm"]), []).append(float(record["accuracy"]))
    rows = []
    for arm in _table_order(paper, method_order, ranks):
        if arm not in bootstrap.arms:
            raise CatvaeError(f"protocol inflation: arm {arm} has paper-protocol runs but no held-out predictions")
        runs = by_arm[arm]
        first = runs[0]
        method, rank = str(first["method"]), ranks.get(arm)
        accuracy = MeanStd.of([float(r["accuracy"]) for r in runs])
        held = bootstrap.interval(arm, METRIC)
        rows.append({
            "Method": label(method),
            "Target": first["target"] if first["target"] is not None else "-",
            "Pool target": first["target_count"] if first["target_count"] is not None else "-",
            "Paper-protocol accuracy": accuracy,
            "Paper-protocol balanced accuracy": MeanStd.of([float(r["balanced_accuracy"]) for r in runs]),
            "Synthetic share of scored 20%": float(np.mean([r["n_test_synthetic"] / r["n_test"] for r in runs])),
            "Held-out balanced accuracy": held,
            "Held-out accuracy": MeanStd.of(heldout_acc.get(arm, [])),
            "Paper − held-out": accuracy.mean - held.estimate,
            "Paper Table 7": paper_value(method, rank),
            "_arm": arm, "_method": method, "_rank": rank,
        })
    frame = pd.DataFrame(rows)
    frame.attrs["formats"] = {c: "{:.3f}" for c in COLUMNS if c not in ("Method", "Target", "Pool target")}
    return frame


RISE_COLUMNS = ("method", "step", "from", "to", "paper rise", "paper accuracy rise", "held-out rise",
                "held-out rise CI", "protocol share")


def _rise_steps(frame: pd.DataFrame, method: str) -> list[tuple[str, pd.Series, pd.Series]]:
    """(step, from row, to row) for one method: real only -> its largest target (what augmenting does), and its
    smallest -> largest target (what Table 7 varies: the rise with the target), the latter only with two or more."""
    base = frame[frame["_method"] == "none"].iloc[0]
    group = frame[frame["_method"] == method].sort_values("_rank")
    low, top = group.iloc[0], group.iloc[-1]
    steps = [("augmentation", base, top)]
    if len(group) > 1:
        steps.append(("target", low, top))
    return steps


def rise_summary(frame: pd.DataFrame, bootstrap: SubjectBootstrap | None = None) -> pd.DataFrame:
    """Per method with targets and per step (real only -> largest target; smallest -> largest target): the rise
    under each protocol in the same metric, balanced accuracy, and the share of the paper protocol's rise that the
    held-out estimate does not keep (the protocol's part).

    Both rises are in balanced accuracy so that they measure the same thing (with imbalanced classes accuracy and
    balanced accuracy move apart: a CNN that never predicts the minority class keeps the majority's accuracy);
    `paper accuracy rise` is Table 7's own metric, given beside. `held-out rise CI` is the paired two-level
    bootstrap interval of the held-out difference (same test-subject resamples for both arms) when `bootstrap` is
    given. `protocol share` = 1 - held-out rise / paper rise, NaN when the paper protocol does not rise; it is
    negative when the held-out estimate rises more.
    """
    if frame[frame["_method"] == "none"].empty:
        raise CatvaeError("protocol inflation: no real-only arm ('none') to measure the rise from")
    out = []
    for method in dict.fromkeys(frame.loc[frame["_rank"].notna(), "_method"]):
        for step, start, end in _rise_steps(frame, method):
            paper_rise = end["Paper-protocol balanced accuracy"].mean - start["Paper-protocol balanced accuracy"].mean
            held_rise = end["Held-out balanced accuracy"].estimate - start["Held-out balanced accuracy"].estimate
            interval = None
            if bootstrap is not None:
                interval = bootstrap.compare(end["_arm"], start["_arm"], METRIC)[0]
            out.append({
                "method": method, "step": step, "from": "real only" if step == "augmentation" else start["Target"],
                "to": end["Target"], "paper rise": paper_rise,
                "paper accuracy rise": end["Paper-protocol accuracy"].mean - start["Paper-protocol accuracy"].mean,
                "held-out rise": held_rise, "held-out rise CI": interval,
                "protocol share": 1 - held_rise / paper_rise if paper_rise > 0 else math.nan,
            })
    return pd.DataFrame(out, columns=list(RISE_COLUMNS))


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _share_words(row: Mapping[str, Any]) -> str:
    if math.isnan(row["protocol share"]):
        return "no rise under the paper protocol"
    if row["protocol share"] <= 0:
        return "the held-out estimate keeps all of it"
    return f"{row['protocol share']:.0%} of it is the protocol"


def rise_note(summary: pd.DataFrame) -> str:
    """The line under the table: per method and step, the rise under both protocols in points of balanced accuracy
    (Table 7's accuracy beside), the held-out rise's paired interval where known, and the protocol's share."""
    parts = []
    for _, r in summary.iterrows():
        interval = r["held-out rise CI"]
        ci = "" if interval is None else f" [{_points(interval.low)}, {_points(interval.high)}]"
        parts.append(f"{label(r['method'])}, {r['from']} -> {r['to']}: paper protocol {_points(r['paper rise'])} "
                     f"points (accuracy {_points(r['paper accuracy rise'])}), held-out {_points(r['held-out rise'])}"
                     f"{ci} ({_share_words(r)})")
    return ("Rise in balanced accuracy under both protocols, from real only to the largest target and with the "
            "target (smallest to largest). " + "; ".join(parts) + ". Protocol share = 1 - held-out rise / "
            "paper-protocol rise; the held-out interval is the paired bootstrap interval of the difference.")


def table_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The table without its bookkeeping columns (what write_table prints)."""
    out = frame[list(COLUMNS)].copy()
    out.attrs.update(frame.attrs)
    return out


def protocol_inflation_figure(frame: pd.DataFrame, out_png: str | os.PathLike, *, note: str = "") -> Path:
    """One panel per method with targets: x = real only, then the method's targets in increasing order; lines:
    paper-protocol accuracy (± std over seeds, with the synthetic share of its scored 20% written beside each
    point) and its balanced accuracy (dotted: the same metric as the held-out line, which the rise note compares),
    held-out balanced accuracy with its CI, and the paper's Table 7 (dashed) where it has a value."""
    methods = list(dict.fromkeys(frame.loc[frame["_rank"].notna(), "_method"]))
    base = frame[frame["_method"] == "none"]
    if not methods or base.empty:
        raise CatvaeError(f"{out_png}: needs the real-only arm and at least one arm with a target")
    base = base.iloc[0]
    fig, axes = plt.subplots(1, len(methods), figsize=(max(6.5, 4.5 * len(methods)), 4.6), sharey=True,
                             squeeze=False)
    for ax, method in zip(axes[0], methods):
        group = frame[frame["_method"] == method].sort_values("_rank")
        rows = [base] + [r for _, r in group.iterrows()]
        x = np.arange(len(rows))
        paper = [r["Paper-protocol accuracy"] for r in rows]
        held: list[Interval] = [r["Held-out balanced accuracy"] for r in rows]
        ax.errorbar(x, [p.mean for p in paper], yerr=[0 if math.isnan(p.std) else p.std for p in paper], fmt="o-",
                    color="tab:red", capsize=3, label="paper protocol (accuracy)")
        balanced = [r["Paper-protocol balanced accuracy"] for r in rows]
        ax.plot(x, [b.mean for b in balanced], "o:", color="tab:red", alpha=0.6, markersize=4,
                label="paper protocol (balanced accuracy: the held-out line's metric)")
        for xi, r in zip(x, rows):
            ax.annotate(f"{r['Synthetic share of scored 20%']:.0%} syn.", (xi, r["Paper-protocol accuracy"].mean),
                        xytext=(4, 6), textcoords="offset points", fontsize=7, color="tab:red")
        ax.errorbar(x, [h.estimate for h in held],
                    yerr=[[h.estimate - h.low for h in held], [h.high - h.estimate for h in held]], fmt="s-",
                    color="tab:blue", capsize=3, label="held-out subjects (balanced accuracy, CI)")
        table7 = [paper_value(method, None if r["_method"] == "none" else int(r["_rank"])) for r in rows]
        if any(not math.isnan(v) for v in table7[1:]):
            ax.plot(x, table7, "D--", color="0.3", label="paper's Table 7 (accuracy)")
        ticks = ["real only"] + [f"{r['Target']}\npool {r['Pool target']}\npaper {PAPER_TARGETS[int(r['_rank'])]}"
                                 if int(r["_rank"]) < len(PAPER_TARGETS) else str(r["Target"]) for r in rows[1:]]
        ax.set_xticks(x, ticks, fontsize=8)
        ax.set_title(label(method), fontsize=10)
        ax.set_xlabel("target per class (real images counted in the pool)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("score")
    legend = axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.32), ncol=1, frameon=False)
    fig.suptitle("Protocol inflation: the reference's mixed 80/20 split vs held-out subjects", fontsize=10)
    fig.tight_layout()
    if note:  # just below the legend, which hangs under the first panel
        fig.canvas.draw()
        bottom = legend.get_window_extent().transformed(fig.transFigure.inverted()).y0
        fig.text(0.01, bottom - 0.02, textwrap.fill(note, 60 * len(methods) + 40), fontsize=7, ha="left", va="top")
    return _save(fig, out_png)
