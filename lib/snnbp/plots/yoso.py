"""Figures of the YOSO study (``notebooks/30_yoso.ipynb``); each takes a frame of
:mod:`snnbp.yoso.study` and a title that names the dataset. Energy in µJ, time in ms, power in mW."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

GROUP_LABELS = {
    "weight_sram": "weight SRAM",
    "state_sram": "neuron-state SRAM",
    "route_sram": "routing-table SRAM",
    "fifo": "input FIFO",
    "compute": "compute (adds, compares)",
    "routing": "NoC (hops, delivery)",
    "leakage": "leakage",
}
"""Display names of the energy groups."""


def energy_breakdown(breakdown_uj: Mapping[str, float], title: str) -> plt.Figure:
    """Horizontal bars: energy per image of each group (µJ), labelled with its share."""
    groups = list(GROUP_LABELS)
    values = np.array([breakdown_uj[g] for g in groups])
    total = values.sum()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    bars = ax.barh([GROUP_LABELS[g] for g in groups], values, color=plt.cm.tab10(np.arange(len(groups))))
    for bar, value in zip(bars, values):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {100 * value / total:.1f} %",
            va="center",
            fontsize=9,
        )
    ax.invert_yaxis()
    ax.set_xlim(0, values.max() * 1.18)
    ax.set(xlabel="energy per image (µJ)", title=f"{title}\ntotal {total:.3g} µJ per image")
    fig.tight_layout()
    return fig


def mesh_sweep(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Energy per image (µJ), latency (ms) and power (mW) against the mesh's PE count, one line per
    placement (compact: the fewest PEs that hold the network; spread: the whole mesh)."""
    fits = frame[frame["fits"]]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, column, label in zip(
        axes,
        ("energy_per_image_uj", "latency_ms", "power_mw"),
        ("energy per image (µJ)", "latency per image (ms)", "power (mW)"),
    ):
        for placement, part in fits.groupby("placement", sort=False):
            part = part.sort_values("n_pes")
            ax.plot(part["n_pes"], part[column], marker="o", label=f"{placement} mapping")
        ax.set(xlabel="PEs in the mesh (log scale)", ylabel=label)
        ax.set_xscale("log", base=2)
        ticks = fits.groupby("n_pes", sort=True)["mesh"].agg(lambda meshes: "/".join(dict.fromkeys(meshes)))
        ax.set_xticks(ticks.index, [f"{mesh}\n({n})" for n, mesh in ticks.items()], fontsize=8)
        ax.minorticks_off()
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def size_sweep(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Energy per image (µJ), latency (ms) and accelerator accuracy (%) against the hidden width."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, column, label, scale in zip(
        axes,
        ("energy_per_image_uj", "latency_ms", "accuracy"),
        ("energy per image (µJ)", "latency per image (ms)", "accuracy (%)"),
        (1, 1, 100),
    ):
        ax.plot(frame["hidden"], scale * frame[column], marker="o")
        ax.set(xlabel="hidden neurons (truncated trained network)", ylabel=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(frame["hidden"], [str(h) for h in frame["hidden"]])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def spike_scatter(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Energy per image (µJ) against its input spikes and its hidden spikes (processed before the
    first output spike); misclassified images in red."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = np.where(frame["correct"].to_numpy(), "tab:blue", "tab:red")
    for ax, column, label in zip(
        axes,
        ("input_spikes_processed", "hidden_spikes"),
        ("input spikes processed per image", "hidden spikes per image"),
    ):
        ax.scatter(frame[column], frame["energy_uj"], c=colours, s=8, alpha=0.6, linewidths=0)
        ax.set(xlabel=label, ylabel="energy per image (µJ)")
    axes[0].scatter([], [], c="tab:blue", s=8, label="correct")
    axes[0].scatter([], [], c="tab:red", s=8, label="misclassified")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def rate_vs_temporal(frame: pd.DataFrame, title: str) -> plt.Figure:
    """The temporal and the rate-coded network: each group's share of the energy per image
    (stacked to 100 %) and the total energy per image (µJ, log scale)."""
    groups = list(GROUP_LABELS)
    codings = frame["coding"].tolist()
    totals = frame["energy_per_image_uj"].to_numpy(float)
    fig, (ax_share, ax_total) = plt.subplots(1, 2, figsize=(12, 4.2))
    bottom = np.zeros(len(frame))
    for index, group in enumerate(groups):
        share = 100 * frame[f"{group}_uj"].to_numpy(float) / totals
        ax_share.bar(codings, share, bottom=bottom, label=GROUP_LABELS[group], color=plt.cm.tab10(index))
        bottom += share
    ax_share.set(ylabel="share of the energy per image (%)", title="by group", ylim=(0, 100))
    ax_share.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    bars = ax_total.bar(codings, totals, color=["0.55", "0.3"])
    for bar, value in zip(bars, totals):
        ax_total.text(bar.get_x() + bar.get_width() / 2, value, f"{value:.3g} µJ", ha="center", va="bottom", fontsize=9)
    ax_total.set_yscale("log")
    ax_total.set_ylim(totals.min() / 4, totals.max() * 3)
    ax_total.set(
        ylabel="energy per image (µJ, log scale)", title=f"total: rate / temporal = {totals[1] / totals[0]:.3g} x"
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def quantization_sweep(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Accuracy (%), energy per image (µJ) and latency (ms) against the weight width, one line per
    time step; the float64 accuracy of each time step as a dashed line of the same colour.

    Args:
        frame: :func:`snnbp.yoso.deployment.quantization_sweep`.
    """
    fixed = frame[frame["arithmetic"] == "fixed"]
    ref = frame[frame["arithmetic"] == "float64"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for index, (dt, part) in enumerate(fixed.groupby("dt_ms", sort=True)):
        colour = plt.cm.tab10(index)
        part = part.sort_values("weight_bits")
        for ax, column, scale in zip(axes, ("test_accuracy", "energy_per_image_uj", "latency_ms"), (100, 1, 1)):
            ax.plot(part["weight_bits"], scale * part[column], marker="o", color=colour, label=f"dt {dt:g} ms")
        reference = ref[np.isclose(ref["dt_ms"], dt)]["test_accuracy"]
        if not reference.empty:
            axes[0].axhline(100 * float(reference.iloc[0]), color=colour, ls="--", lw=1)
    for ax, label in zip(
        axes, ("accuracy (%; dashed: float64 weights)", "energy per image (µJ)", "latency per image (ms)")
    ):
        ax.set(xlabel="weight width (bits)", ylabel=label)
        ax.set_xticks(sorted(set(fixed["weight_bits"])))
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


KIND_STYLE = {"published": ("o", "0.45"), "paper": ("*", "tab:orange"), "simulated": ("D", "tab:blue")}
"""Marker and colour of each ``kind`` of :func:`snnbp.yoso.deployment.chip_comparison`."""


def energy_vs_accuracy(frame: pd.DataFrame, title: str) -> plt.Figure:
    """Energy per image (µJ, log scale) against MNIST accuracy (%): published chips, the YOSO paper
    and this project's model, each point labelled with its chip and network.

    Args:
        frame: :func:`snnbp.yoso.deployment.chip_comparison`.
    """
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for kind, (marker, colour) in KIND_STYLE.items():
        part = frame[frame["kind"] == kind]
        if part.empty:
            continue
        ax.scatter(
            100 * part["accuracy"],
            part["energy_per_image_uj"],
            marker=marker,
            s=90 if kind != "published" else 40,
            color=colour,
            label={
                "published": "published chips (Renner et al. 2024, Table 1)",
                "paper": "YOSO + STDBP, the paper (accuracy unverified)",
                "simulated": "this project's YOSO model",
            }[kind],
            zorder=3,
        )
        for row in part.itertuples():
            ax.annotate(
                f"{row.chip}\n{row.network}",
                (100 * row.accuracy, row.energy_per_image_uj),
                fontsize=7,
                xytext=(5, 3),
                textcoords="offset points",
            )
    ax.set_yscale("log")
    ax.set(xlabel="MNIST test accuracy (%)", ylabel="energy per image (µJ, log scale)", title=title)
    ax.set_xlim(100 * frame["accuracy"].min() - 1.0, 100.4)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def calibration(frame: pd.DataFrame, bands: Mapping[str, tuple[float, float]], title: str) -> plt.Figure:
    """The fitted timing quantity and leakage per KB of every calibration hypothesis against the
    plausible bands (grey; left: clock in MHz or time-step period in ms; right: µW/KB; log scales).
    Green: every fitted value of the hypothesis within its band; red: not.

    Args:
        frame: :func:`snnbp.yoso.calibration.calibrate`.
        bands: ``[low, high]`` for ``clock_mhz``, ``step_period_ms`` and ``sram_leak_uw_per_kb``.
    """
    labels = [f"{r.timing}\n{r.mesh}, {'gated' if r.power_gating else 'all powered'}" for r in frame.itertuples()]
    y = np.arange(len(frame))
    clock = (frame["fitted"] == "clock_mhz").to_numpy()
    value = np.where(clock, frame["clock_mhz"], frame["step_period_ms"])
    colours = np.where(frame["plausible"], "tab:green", "tab:red")
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(13, 0.42 * len(frame) + 1.8), sharey=True)
    for yi, is_clock in zip(y, clock):
        low, high = bands["clock_mhz" if is_clock else "step_period_ms"]
        ax_t.plot([low, high], [yi, yi], color="0.8", lw=6, solid_capstyle="butt", zorder=1)
    ax_t.scatter(value, y, c=colours, zorder=3)
    ax_t.set_xscale("log")
    ax_t.set(xlabel="fitted clock (MHz) or time-step period (ms)", yticks=y)
    ax_t.set_yticklabels(labels, fontsize=7)
    ax_l.axvspan(*bands["sram_leak_uw_per_kb"], color="0.9")
    ax_l.scatter(frame["sram_leak_uw_per_kb"].clip(lower=1e-6), y, c=colours, zorder=3)
    ax_l.set_xscale("log")
    ax_l.set(xlabel="fitted leakage (µW per KB of powered SRAM)")
    ax_t.invert_yaxis()
    fig.suptitle(title)
    fig.tight_layout()
    return fig
