"""Figures of the HM2-BP S-PSP notebook (``notebooks/02_hm2bp_spsp.ipynb``; ALGORITHMS.md 1.3-1.7).

The numbers come from :mod:`snnbp.hm2bp.spsp_examples`; these functions only draw them. Times are in
ms (one simulation step = 1 ms), counts in spikes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

if TYPE_CHECKING:  # types only: figures import no method at run time
    from snnbp.hm2bp.spsp_examples import CountSweep


POST_COLOUR = "tab:red"
PRE_COLOUR = "black"


def spsp_pair(
    pre_train: torch.Tensor,
    post_train: torch.Tensor,
    contributions: torch.Tensor,
    weight: float,
    vth: float,
    *,
    t_ref: int,
    lookback_steps: int,
    title: str,
) -> plt.Figure:
    """One pre -> post pair: spike trains, every pre spike's PSP share, and the kernel's membrane model.

    Top: pre and post spike trains. Middle: ``eps(s(t), u_g(t))`` of every pre spike ``g`` (grey),
    the counted terms at each post firing ``tau_f`` (dots), refractory windows shaded, the
    look-back window of the last firing marked. Bottom: ``w * sum_g eps`` (the potential as the
    S-PSP kernel models it), the threshold, and its value at each firing (its sum over firings is
    ``w e_{i|j}``).

    Shape:
        - pre_train, post_train: ``[T]`` binary; contributions: ``[T, o_j]`` (:func:`membrane_contributions`).
    """
    steps = post_train.shape[0]
    time = np.arange(steps)
    pre_times, post_times = np.flatnonzero(pre_train.numpy() > 0), np.flatnonzero(post_train.numpy() > 0)
    shares = contributions.numpy()
    fig, (ax_trains, ax_shares, ax_v) = plt.subplots(
        3, 1, figsize=(10, 7.5), sharex=True, gridspec_kw={"height_ratios": [1, 2.2, 2.2]}
    )
    ax_trains.eventplot([post_times, pre_times], lineoffsets=[0, 1], linelengths=0.7, colors=[POST_COLOUR, PRE_COLOUR])
    ax_trains.set(yticks=[0, 1], yticklabels=["post i", "pre j"], title="spike trains", ylim=(-0.6, 1.6))
    for ax in (ax_shares, ax_v):
        for tau in post_times:
            ax.axvline(tau, color=POST_COLOUR, lw=0.8, ls=":")
            ax.axvspan(tau, tau + t_ref, color=POST_COLOUR, alpha=0.15, lw=0)
    ax_shares.plot(time, shares, color="0.55", lw=0.7)
    at_firing = shares[post_times]
    counted = at_firing > 0
    ax_shares.scatter(
        np.broadcast_to(post_times[:, None], at_firing.shape)[counted],
        at_firing[counted],
        s=9,
        color=POST_COLOUR,
        zorder=3,
        label=r"terms $\varepsilon(s_f, u_{fg})$ summed by the S-PSP",
    )
    if len(post_times):
        last = post_times[-1]
        ax_shares.axvspan(
            max(1, last - lookback_steps),
            last,
            ymin=0.96,
            ymax=1.0,
            color="tab:blue",
            alpha=0.5,
            lw=0,
            label=f"look-back window of the last firing ({lookback_steps} ms)",
        )
    ax_shares.set(
        ylabel=r"$\varepsilon$ per pre spike (per unit weight)",
        title="every pre spike's share of the potential (restarted at each reset, shifted by $T_{ref}$)",
    )
    ax_shares.legend(loc="upper left", fontsize=8)
    potential = weight * shares.sum(axis=1)
    ax_v.plot(time, potential, color="tab:blue", lw=1.2, label=r"$w_{ij}\sum_g \varepsilon$ (kernel model)")
    ax_v.axhline(vth, color="0.3", ls="--", lw=1, label=rf"threshold $\nu$ = {vth:g}")
    ax_v.scatter(post_times, potential[post_times], color=POST_COLOUR, zorder=3, s=18, label="value at a post firing")
    ax_v.set(
        xlabel="time (ms)",
        ylabel=r"potential (units of $\nu$)",
        xlim=(0, steps),
        title="post potential as the S-PSP kernel models it (post spikes from simulate_lif)",
    )
    ax_v.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def macro_relation(counts: torch.Tensor, predicted: torch.Tensor, title: str) -> plt.Figure:
    """``a_i / vth`` against the count ``o_i`` (identity line) and the deviation against ``o_i`` (ALGORITHMS.md 1.4).

    Shape:
        - counts, predicted: ``[P]`` (one point per firing post neuron and sample).
    """
    x, y = counts.numpy(), predicted.numpy()
    top = float(max(x.max(), y.max())) * 1.05
    fig, (ax, ax_dev) = plt.subplots(1, 2, figsize=(10, 4))
    ax.scatter(x, y, s=10, alpha=0.6)
    ax.plot([0, top], [0, top], color="0.3", ls="--", lw=1, label="identity")
    ax.set(
        xlabel=r"output count $o_i$ (spikes)",
        ylabel=r"total PSP / threshold $a_i/\nu$ (spikes)",
        xlim=(0, top),
        ylim=(0, top),
        title=r"macro relation $o_i \approx a_i/\nu$",
    )
    ax.legend(loc="upper left")
    ax_dev.scatter(x, y - x, s=10, alpha=0.6)
    ax_dev.axhline(0.0, color="0.3", ls="--", lw=1)
    ax_dev.set(xlabel=r"output count $o_i$ (spikes)", ylabel=r"$a_i/\nu - o_i$ (spikes)", title="deviation")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def effect_ratio(
    e_row: torch.Tensor,
    pre_counts: torch.Tensor,
    alpha: float,
    post_label: str,
    post_counts: torch.Tensor,
    ratio_mean: torch.Tensor,
    ratio_std: torch.Tensor,
    title: str,
) -> plt.Figure:
    """The decoupled micro model ``e_{i|j} ~ alpha_ij o_j`` (ALGORITHMS.md 1.6).

    Left: ``e_{i|j}`` of one post neuron (``post_label``) against the pre counts ``o_j``, with the
    line ``alpha o_j``. Right: the effect ratio ``e_{i|j} / o_j`` of every post neuron (mean and
    spread over its pre neurons) against its own count ``o_i``.

    Shape:
        - e_row, pre_counts: ``[N_in]``; post_counts, ratio_mean, ratio_std: ``[P]``.
    """
    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = pre_counts.numpy()
    ax.scatter(x, e_row.numpy(), s=10, alpha=0.6)
    ax.plot(
        [0, x.max()],
        [0, alpha * x.max()],
        color="0.3",
        ls="--",
        lw=1,
        label=rf"$\hat\alpha\, o_j$, $\hat\alpha$ = mean $e_{{i|j}}/o_j$ = {alpha:.3f}",
    )
    ax.set(xlabel=r"pre count $o_j$ (spikes)", ylabel=r"S-PSP $e_{i|j}$", title=f"{post_label}, every pre neuron")
    ax.legend(loc="upper left")
    ax_ratio.errorbar(post_counts.numpy(), ratio_mean.numpy(), yerr=ratio_std.numpy(), fmt="o", ms=3, lw=0.6, alpha=0.7)
    ax_ratio.set(
        xlabel=r"post count $o_i$ (spikes)",
        ylabel=r"$e_{i|j}/o_j$ (mean $\pm$ sd over j)",
        title="effect ratio of every post neuron",
    )
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def weight_staircase(
    sweep: CountSweep, base: int, vth: float, predictions: dict[str, torch.Tensor], title: str
) -> plt.Figure:
    """The count of one post neuron against one of its weights: a staircase (ALGORITHMS.md 1.4, 1.7).

    Drawn with ``a_i / vth`` (S-PSPs recomputed at every weight) and the first-order predictions
    from the base weight (``predictions``: label -> ``[K]``).
    """
    values = sweep.values.numpy()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.step(values, sweep.counts.numpy(), where="mid", color="black", lw=1.5, label=r"$o_i$ (simulate_lif)")
    ax.plot(
        values, (sweep.total_psp / vth).numpy(), color="tab:blue", lw=1.2, label=r"$a_i/\nu$ (S-PSPs at each weight)"
    )
    for (label, line), style in zip(predictions.items(), ["--", ":"]):
        ax.plot(values, line.numpy(), color="tab:orange", ls=style, lw=1.5, label=label)
    ax.scatter([values[base]], [float(sweep.counts[base])], color=POST_COLOUR, zorder=3, label="current weight")
    low, high = float(sweep.counts.min()), float(sweep.counts.max())
    ax.set(
        xlabel=r"weight $w_{ij}$ (potential units, as $\nu$)",
        ylabel=r"output count $o_i$ (spikes)",
        ylim=(low - 0.1 * (high - low) - 1, high + 0.1 * (high - low) + 1),
        title=title,
    )
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    return fig
