"""Figures for the exact spike-time neurons (ReL-PSP, alpha-PSP; ALGORITHMS.md 2.2, 2.3). Times in ms.

Same look as the rest of :mod:`snnbp.plots` (the package sets the seaborn theme; save with :func:`snnbp.plots.save`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown")


def membrane_traces(
    t: torch.Tensor,
    potentials: Mapping[str, torch.Tensor],
    spike_times: Mapping[str, torch.Tensor],
    theta: float,
    input_times: torch.Tensor,
    weight: torch.Tensor,
    title: str,
    *,
    panel_titles: Sequence[str] | None = None,
    columns: int = 2,
    ylim: tuple[float, float] | None = None,
) -> plt.Figure:
    """One panel per neuron: ``V(t)`` of each model, the threshold, the exact spike times, the inputs.

    Each model (key of ``potentials``) is one line style; its spike time is a marker on the
    threshold line (a silent neuron says "no spike" in the legend). Input spikes are grey
    vertical lines labelled with their weight (negative weights in red).

    Shape:
        - t: ``[T]``; potentials[name]: ``[N, T]``; spike_times[name]: ``[N]`` (``inf`` = none)
        - input_times: ``[N_in]``; weight: ``[N, N_in]``
    """
    n_neurons = weight.shape[0]
    rows = (n_neurons + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.4 * rows), squeeze=False, sharex=True)
    x = t.numpy()
    for j, ax in enumerate(axes.flat):
        if j >= n_neurons:
            ax.axis("off")
            continue
        for (name, v), colour, style in zip(potentials.items(), _COLOURS, ("-", "--", ":", "-.")):
            t_j = float(spike_times[name][j])
            fired = math.isfinite(t_j)
            label = f"{name}: spike at {t_j:.3f} ms" if fired else f"{name}: no spike"
            ax.plot(x, v[j].numpy(), style, color=colour, label=label)
            if fired:
                ax.plot([t_j], [theta], "o", color=colour, markersize=7, markeredgecolor="black")
        ax.axhline(theta, color="black", linewidth=1.0, linestyle=(0, (4, 3)), label=f"threshold θ = {theta:g}")
        for t_i, w_i in zip(input_times.tolist(), weight[j].tolist()):
            if math.isfinite(t_i):
                ax.axvline(t_i, color="grey", linewidth=0.8, alpha=0.6)
                ax.annotate(
                    f"{w_i:+.2f}",
                    (t_i, 0.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(2, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color="tab:red" if w_i < 0 else "dimgrey",
                )
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set(
            xlabel="time (ms)",
            ylabel="membrane potential V(t)",
            title=panel_titles[j] if panel_titles else f"neuron {j}",
        )
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def exact_vs_grid(
    exact: torch.Tensor, grids: Mapping[float, torch.Tensor], title: str, *, amplification: torch.Tensor | None = None
) -> plt.Figure:
    """Clock-driven spike times against the exact ones, one colour per time step ``dt``.

    Left: ``t_grid`` against ``t_exact`` (the diagonal is agreement). Right: the error in units
    of the step, ``(t_grid - t_exact) / dt``, against ``t_exact``, or, if ``amplification``
    (``A = sum_C |w| / sum_C w`` per neuron, :func:`snnbp.stdbp.spike_time_checks.grid_error_bounds`) is
    given, against ``A`` with the first-order bounds ``-(A - 1) / 2`` and ``(A + 3) / 2``. Only
    neurons that fire in both solutions are drawn.

    Shape:
        - exact: any; grids[dt]: same shape as ``exact``; amplification: same shape or None.
    """
    fig, (ax_times, ax_error) = plt.subplots(1, 2, figsize=(10.4, 4.2))
    finite_exact = torch.isfinite(exact)
    for (dt, grid), colour in zip(sorted(grids.items(), reverse=True), _COLOURS):
        both = finite_exact & torch.isfinite(grid)
        ax_times.scatter(
            exact[both].numpy(), grid[both].numpy(), s=10, alpha=0.7, color=colour, label=f"dt = {dt:g} ms"
        )
        x = (exact if amplification is None else amplification)[both].numpy()
        ax_error.scatter(x, ((grid - exact)[both] / dt).numpy(), s=10, alpha=0.7, color=colour, label=f"dt = {dt:g} ms")
    shown = exact[finite_exact]
    if shown.numel():
        lo, hi = float(shown.min()), float(shown.max())
        ax_times.plot([lo, hi], [lo, hi], color="black", linewidth=1.0, label="t_grid = t_exact")
    ax_error.axhline(0.0, color="black", linewidth=1.0)
    if amplification is not None and bool(torch.isfinite(amplification[finite_exact]).any()):
        a = np.geomspace(1.0, float(amplification[finite_exact & torch.isfinite(amplification)].max()), 100)
        ax_error.plot(a, (a + 3) / 2, color="grey", linestyle=(0, (4, 3)), label="first-order bounds")
        ax_error.plot(a, -(a - 1) / 2, color="grey", linestyle=(0, (4, 3)))
        ax_error.set_yscale("symlog", linthresh=1.0, linscale=2.0)
        ax_error.set(xscale="log", xlabel="Σ_C |w| / Σ_C w at the exact spike")
    else:
        ax_error.set(xlabel="exact spike time (ms)")
    ax_times.set(xlabel="exact spike time (ms)", ylabel="time-grid spike time (ms)", title="spike times")
    ax_error.set(ylabel="(t_grid − t_exact) / dt", title="error in time steps")
    ax_times.legend(fontsize=8)
    ax_error.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def error_vs_dt(dts: Sequence[float], errors: Mapping[str, Sequence[float]], title: str) -> plt.Figure:
    """Log-log error against the time step, with the ``error = dt`` line for reference.

    Shape:
        - dts: ``[S]``; errors[name]: ``[S]`` in ms.
    """
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    for (name, values), colour in zip(errors.items(), _COLOURS):
        ax.plot(dts, np.abs(np.asarray(values, dtype=float)), "o-", color=colour, label=name)
    ax.plot(dts, dts, color="black", linestyle=(0, (4, 3)), linewidth=1.0, label="dt (first order)")
    ax.set(xscale="log", yscale="log", xlabel="time step dt (ms)", ylabel="spike-time error (ms)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gradient_agreement(
    pairs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    title: str,
    *,
    xlabel: str = "reference",
    ylabel: str = "estimate",
    columns: int = 2,
) -> plt.Figure:
    """One log-log scatter of magnitudes per entry ``name -> (reference, estimate)``, with the diagonal.

    Derivatives span many decades, so ``|estimate|`` is drawn against ``|reference|``; the colour
    says whether the signs agree. Entries that are 0 in both are omitted.

    Shape:
        - reference, estimate: the same shape (any).
    """
    rows = (len(pairs) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.0 * rows), squeeze=False)
    for ax, (name, (reference, estimate)) in zip(axes.flat, pairs.items()):
        keep = ((reference != 0) | (estimate != 0)) & torch.isfinite(reference) & torch.isfinite(estimate)
        ref, est = reference[keep].numpy(), estimate[keep].numpy()
        same = np.sign(ref) == np.sign(est)
        for mask, colour, label in ((same, "tab:blue", "same sign"), (~same, "tab:red", "opposite sign")):
            if mask.any():
                ax.scatter(
                    np.abs(ref[mask]),
                    np.abs(est[mask]),
                    s=8,
                    alpha=0.6,
                    color=colour,
                    label=f"{label} ({int(mask.sum())})",
                )
        positive = np.abs(np.concatenate([ref, est]))
        positive = positive[positive > 0]
        if positive.size:
            lo, hi = float(positive.min()), float(positive.max())
            ax.plot([lo, hi], [lo, hi], color="black", linewidth=1.0, label="equal")
            ax.set(xscale="log", yscale="log")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=name)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(pairs) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
