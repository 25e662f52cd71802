"""Figures of the problem analysis (notebook 01; ALGORITHMS.md 2.9). Every figure names its dataset in the title."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from snnbp.analysis import LOG_BIN_EDGES, histogram_fractions, median_bin

if TYPE_CHECKING:  # types only: figures import no method at run time
    from snnbp.problem_analysis.theory import SpikeTimeSweep

#: One colour per kernel (and the ANN), the same in every figure.
COLORS: dict[str, str] = {"ReL-PSP": "C0", "alpha-PSP": "C1", "ANN": "C2"}


def _color(label: str) -> str | None:
    return next((color for name, color in COLORS.items() if label.startswith(name)), None)


def spike_function_figure(
    sweeps: Mapping[str, SpikeTimeSweep], near: Mapping[str, SpikeTimeSweep], title: str
) -> plt.Figure:
    """Spike indicator, its derivative, spike time and ``|dt/dw|`` of one neuron against one weight.

    ``sweeps`` hold wide sweeps, drawn against ``w / w*`` (``w*``: each kernel's critical
    weight): ``s(w) = 1[t(w) < T]`` (a step); ``ds/dw`` (zero almost everywhere, a Dirac at
    ``w*``, drawn as an arrow); ``t(w)`` (exact, dotted beyond the window ``T``). ``near`` hold
    sweeps (same labels) just above ``w*``: ``|dt/dw|`` against ``(w - w*) / |w*|`` on log-log axes.
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    (ax_s, ax_ds), (ax_t, ax_g) = axes
    ax_ds.axhline(0.0, color="0.3", lw=1)
    for label, sweep in sweeps.items():
        x = (sweep.values / abs(sweep.critical)).numpy()
        t = sweep.t_out.numpy()
        fired = sweep.fired.numpy()
        color = _color(label)
        ax_s.step(x, fired.astype(float), where="mid", color=color, label=label)
        ax_t.plot(x, np.where(fired, t, np.nan), color=color, label=f"{label}: spike before T")
        late = ~fired & np.isfinite(t)
        if late.any():
            ax_t.plot(x, np.where(late, t, np.nan), color=color, ls=":", label=f"{label}: spike after T")
    ax_ds.annotate("", xy=(1.0, 1.0), xytext=(1.0, 0.0), arrowprops={"arrowstyle": "-|>", "color": "0.2", "lw": 2})
    ax_ds.text(1.03, 0.9, "Dirac at w = w*\n(both kernels)", fontsize=9)
    for label, sweep in near.items():
        critical = sweeps[label].critical
        offset = ((sweep.values - critical) / abs(critical)).numpy()
        g = np.abs(sweep.dtdw.numpy())
        ax_g.plot(offset, np.where(sweep.fired.numpy() & (g > 0), g, np.nan), color=_color(label), label=label)
    window = next(iter(sweeps.values())).window
    ax_t.axhline(window, color="0.3", ls="--", lw=1, label=f"window T = {window:g} ms")
    ax_t.set_ylim(0, 2.5 * window)
    ax_s.set(xlabel="w / w*", ylabel="spike indicator s(w)", title="spike before T: a step in w", ylim=(-0.1, 1.2))
    ax_ds.set(
        xlabel="w / w*",
        ylabel="ds/dw (1 per unit weight)",
        title="its derivative: 0 almost everywhere",
        ylim=(-0.1, 1.2),
        xlim=ax_s.get_xlim(),
    )
    ax_t.set(
        xlabel="w / w*",
        ylabel="spike time t (ms)",
        title="spike time: continuous where it exists",
        xlim=ax_s.get_xlim(),
    )
    ax_g.set(
        xlabel="(w - w*) / |w*|",
        ylabel="|dt/dw| (ms per unit weight)",
        xscale="log",
        yscale="log",
        title="spike-time gradient just above w*",
    )
    for ax in (ax_s, ax_t, ax_g):
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def histogram_panels(
    panels: Mapping[str, Mapping[str, Sequence[float] | torch.Tensor]],
    title: str,
    xlabel: str | Mapping[str, str],
    styles: Mapping[str, dict] | None = None,
    *,
    aligned: Sequence[str] = (),
    edges: Sequence[float] = LOG_BIN_EDGES,
) -> plt.Figure:
    """Log-binned histograms as fractions per bin on log-log axes, one panel per entry of ``panels``.

    Args:
        panels: ``{panel title: {curve label: counts}}`` (counts on ``edges``).
        title: figure title (name the dataset).
        xlabel: the magnitude and its unit (one for all panels, or one per panel title).
        styles: optional matplotlib keyword arguments per curve label.
        aligned: titles of the panels where each curve's bin edges are divided by the lower edge
            of its median bin, so the x axis is the magnitude relative to the curve's median
            (shapes compared, not scales).
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(max(8.0, 5.2 * len(panels)), 3.9), sharey=True, squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items()):
        for label, counts in curves.items():
            fractions = histogram_fractions(counts)
            if float(fractions.sum()) == 0:
                continue
            x = np.asarray(edges, dtype=float)
            if panel in aligned:
                x = x / x[median_bin(counts)]
            style = {"color": _color(label), **((styles or {}).get(label, {}))}
            ax.stairs(fractions.numpy(), x, label=label, lw=1.6, **style)
        ax.set(xscale="log", yscale="log", xlabel=xlabel if isinstance(xlabel, str) else xlabel[panel], title=panel)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("fraction per quarter decade")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def epoch_curves(series: Mapping[str, Sequence[float]], title: str, ylabel: str, *, logy: bool = False) -> plt.Figure:
    """One line per entry of ``series`` against the epoch (1, 2, ...)."""
    fig, ax = plt.subplots(figsize=(8.0, 3.8))
    for label, values in series.items():
        ax.plot(range(1, len(values) + 1), list(values), marker="o", color=_color(label), label=label)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logy:
        ax.set_yscale("symlog", linthresh=1e-4)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def timing_figure(
    median_hidden: Mapping[str, torch.Tensor],
    decision: Mapping[str, torch.Tensor],
    lags: Mapping[str, torch.Tensor],
    title: str,
    window: float,
) -> plt.Figure:
    """Per-sample median hidden spike time against decision time; cumulative distribution of the
    hidden spikes' times relative to the decision."""
    fig, (ax_sc, ax_cdf) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in median_hidden:
        color = _color(label)
        ax_sc.scatter(median_hidden[label].numpy(), decision[label].numpy(), s=8, alpha=0.5, color=color, label=label)
        lag = np.sort(lags[label].numpy())
        ax_cdf.plot(lag, np.arange(1, lag.size + 1) / max(lag.size, 1), color=color, label=label)
    ax_sc.plot([0, window], [0, window], color="0.3", ls="--", lw=1, label="decision = median hidden time")
    ax_sc.set(
        xlim=(0, window),
        ylim=(0, window),
        xlabel="median hidden spike time (ms)",
        ylabel="decision time: first output spike (ms)",
        title="per test image",
    )
    ax_cdf.axvline(0.0, color="0.3", ls="--", lw=1)
    ax_cdf.set(
        xlim=(-window, window),
        ylim=(0, 1),
        xlabel="hidden spike time minus decision time (ms)",
        ylabel="fraction of hidden spikes",
        title="hidden spikes relative to the decision",
    )
    ax_sc.legend(fontsize=8)
    ax_cdf.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
