"""Figures of the recorded results (``notebooks/90_results.ipynb``): they draw the tables of
:mod:`snnbp.results_view` and import no method. Accuracies in %, energy in µJ, time in ms.
"""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

PROVENANCE_COLOURS = {"V": "tab:green", "R": "tab:orange", "~": "0.45"}
"""Paper numbers by provenance: verified, from a review, recalled (first letter of the code)."""
KIND_COLOURS = {"published": "0.35", "paper": "black", "simulated": "tab:blue"}


def _wrap(text: str, width: int = 80) -> str:
    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())


def _provenance_colour(code: str) -> str:
    return PROVENANCE_COLOURS.get((code or "~").strip()[:1], PROVENANCE_COLOURS["~"])


def _percent_or_none(value: Any) -> float | None:
    """A fraction as percent, None when missing (an error bar that is not drawn)."""
    return None if value is None or pd.isna(value) else 100 * float(value)


def runs_vs_paper(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Every run's test accuracy (filled), its best over epochs (open) and its paper number (diamond,
    coloured by provenance, printed with its code); stand-in datasets flagged and shaded. A row of
    several seeds shows the means with ± one standard deviation as error bars and its seed count.

    Args:
        frame: :func:`snnbp.results_view.runs_table` or :func:`snnbp.results_view.by_seed`.
    """
    rows = frame.reset_index(drop=True)
    y = np.arange(len(rows))[::-1]
    fig, ax = plt.subplots(figsize=(11, 0.65 * len(rows) + 2.0), layout="constrained")
    for yi, row in zip(y, rows.to_dict("records")):
        if row["is_standin"]:
            ax.axhspan(yi - 0.5, yi + 0.5, color="tab:orange", alpha=0.08, lw=0)
        sd, best_sd = (_percent_or_none(row.get(key)) for key in ("test_accuracy_sd", "best_test_accuracy_sd"))
        ax.errorbar(100 * row["test_accuracy"], yi, xerr=sd, fmt="o", color="tab:blue", ms=8, capsize=3, zorder=3)
        if row["best_test_accuracy"] is not None and not pd.isna(row["best_test_accuracy"]):
            ax.errorbar(
                100 * row["best_test_accuracy"],
                yi,
                xerr=best_sd,
                fmt="o",
                mfc="none",
                mec="tab:blue",
                ecolor="tab:blue",
                ms=11,
                capsize=3,
                zorder=3,
            )
        if row.get("seeds", 1) > 1:
            ax.annotate(
                f"{row['seeds']} seeds",
                (100 * row["test_accuracy"], yi),
                xytext=(-8, 7),
                textcoords="offset points",
                fontsize=7,
                color="tab:blue",
                ha="right",
            )
        paper = row["paper_best"]
        if paper is not None and not pd.isna(paper):
            colour = _provenance_colour(row["paper_provenance"])
            ax.plot(100 * paper, yi, "D", color=colour, ms=8, zorder=3)
            ax.plot([100 * row["test_accuracy"], 100 * paper], [yi, yi], color="0.7", lw=1, zorder=2)
            ax.annotate(
                f"{100 * paper:.2f} % ({row['paper_provenance']})",
                (100 * paper, yi),
                xytext=(8, -3),
                textcoords="offset points",
                fontsize=8,
                color=colour,
            )
        else:
            ax.annotate(
                "no paper number (baseline)",
                (100 * row["test_accuracy"], yi),
                xytext=(10, -3),
                textcoords="offset points",
                fontsize=8,
                color="0.4",
            )
    labels = [
        (f"{r['label']} {r['network']}", f"{r['dataset']}{'  [stand-in]' if r['is_standin'] else ''}", str(r["run"]))
        for r in rows.to_dict("records")
    ]
    ax.set_yticks(
        y,
        [
            f"{textwrap.shorten(method, 60)}\n{textwrap.shorten(data, 70)}\nrun {textwrap.shorten(run, 60)}"
            for method, data, run in labels
        ],
        fontsize=7.5,
    )
    for tick, standin in zip(ax.get_yticklabels(), rows["is_standin"]):
        if standin:
            tick.set_color("tab:brown")
    low = 100 * float(np.nanmin(rows[["test_accuracy", "best_test_accuracy"]].to_numpy(dtype=float)))
    ax.set_xlim(max(0.0, low - 5), 104)
    ax.set(xlabel="test accuracy (%)", ylim=(-0.7, len(rows) - 0.3))
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            ls="",
            color="tab:blue",
            ms=8,
            label="this run (its model's test accuracy; mean ± sd over seeds)",
        ),
        plt.Line2D([], [], marker="o", ls="", mfc="none", mec="tab:blue", ms=11, label="this run, best epoch on test"),
        *[
            plt.Line2D([], [], marker="D", ls="", color=c, ms=8, label=f"paper best, provenance {k}")
            for k, c in PROVENANCE_COLOURS.items()
        ],
        plt.Rectangle((0, 0), 1, 1, color="tab:orange", alpha=0.15, label="stand-in dataset (not the paper's)"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, frameon=False)
    fig.suptitle(_wrap(title, 110))
    return fig


def curves_by_method(histories: pd.DataFrame, title: str, methods: tuple[str, ...] = ("hm2bp", "stdbp")) -> plt.Figure:
    """Test accuracy per epoch of every run, one panel per method side by side; a validation curve
    (dashed) and the epoch it selected (star) where the run held one out.

    Args:
        histories: :func:`snnbp.results_view.histories_table`.
    """
    fig, axes = plt.subplots(
        1, len(methods), figsize=(6.2 * len(methods), 4.6), sharey=True, squeeze=False, layout="constrained"
    )
    for ax, method in zip(axes[0], methods):
        part = histories[histories["method"] == method]
        names = {"hm2bp": "HM2-BP", "stdbp": "STDBP (ReL-PSP and alpha-PSP)"}
        for (_, group), colour in zip(part.groupby("run", sort=True), plt.cm.tab10(np.arange(10))):
            first = group.iloc[0]
            test = group[group["split"] == "test"]
            ax.plot(
                test["epoch"],
                100 * test["accuracy"],
                "o-",
                ms=3.5,
                color=colour,
                label=textwrap.shorten(f"{first['label']}, {first['dataset']}", 62),
            )
            validation = group[group["split"] == "validation"]
            if len(validation):
                ax.plot(
                    validation["epoch"],
                    100 * validation["accuracy"],
                    "--",
                    color=colour,
                    label="  its validation curve",
                )
                chosen = first["selected_epoch"]
                if chosen is not None and not pd.isna(chosen):
                    at = test[test["epoch"] == int(chosen)]
                    ax.plot(
                        at["epoch"],
                        100 * at["accuracy"],
                        "*",
                        ms=14,
                        color=colour,
                        mec="black",
                        label=f"  selected on validation (epoch {int(chosen)})",
                    )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel="epoch", title=names.get(method, method))
        if len(part):
            ax.legend(fontsize=7, loc="lower right")
        else:
            ax.text(0.5, 0.5, "no completed run recorded", transform=ax.transAxes, ha="center", color="0.4")
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle(_wrap(title, 110))
    return fig


def _plain(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def chips_comparison(chips: pd.DataFrame, title: str) -> plt.Figure:
    """Energy per image (µJ) and latency per image (ms) of every chip on log axes; a range is a bar,
    a number the source does not give says so.

    Args:
        chips: :func:`snnbp.results_view.chips_table`.
    """
    rows = chips.reset_index(drop=True)
    y = np.arange(len(rows))[::-1]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(rows) + 2.2), sharey=True, layout="constrained")
    for ax, (low_key, high_key, unit, label) in zip(
        axes,
        (
            ("energy_low_uj", "energy_high_uj", "µJ", "energy per image (µJ, log scale)"),
            ("latency_low_ms", "latency_high_ms", "ms", "latency per image (ms, log scale)"),
        ),
    ):
        for yi, row in zip(y, rows.to_dict("records")):
            colour = KIND_COLOURS.get(row["kind"], "0.35")
            low, high = row[low_key], row[high_key]
            if low is None or pd.isna(low):
                ax.annotate(
                    "not given", (0.02, yi), xycoords=("axes fraction", "data"), va="center", fontsize=8, color="0.5"
                )
                continue
            if high > low:
                ax.plot([low, high], [yi, yi], color=colour, lw=5, alpha=0.6, solid_capstyle="butt")
                text = f"{_plain(low)}-{_plain(high)} {unit}"
            else:
                ax.plot(low, yi, "o", color=colour, ms=8)
                text = f"{_plain(low)} {unit}"
            ax.annotate(text, (high, yi), xytext=(6, -3), textcoords="offset points", fontsize=8, color=colour)
        ax.set_xscale("log")
        ax.set(xlabel=label)
        lows = rows[low_key].dropna().astype(float)
        if len(lows):
            ax.set_xlim(lows.min() / 5, rows[high_key].dropna().astype(float).max() * 20)
    names = [f"{r['chip']}\n({r['provenance']}: {textwrap.shorten(r['source'], 45)})" for r in rows.to_dict("records")]
    axes[0].set_yticks(y, names, fontsize=8)
    for tick, kind in zip(axes[0].get_yticklabels(), rows["kind"]):
        tick.set_color(KIND_COLOURS.get(kind, "0.35"))
    fig.suptitle(_wrap(title, 110))
    return fig
