"""Exact neurons of both kernels and the theory of notebook 01 (ALGORITHMS.md 2.2, 2.3, 2.9).

The ReL-PSP and alpha-PSP spike times and ``dt/dw`` behind one interface (:data:`KernelName`); section a,
a neuron whose one weight is swept through its critical value (:class:`SpikeTimeSweep`); section b,
random neurons whose ``|dt/dw|`` distributions are summarised (:class:`GradientSummary`). No data,
no training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from snnbp.analysis import LOG_BIN_EDGES, log_histogram
from snnbp.stdbp.alpha import alpha_kernel_derivative, alpha_spike_times, alpha_time_weight_gradient
from snnbp.stdbp.relpsp import relpsp_spike_times, relpsp_time_weight_gradient

KernelName = Literal["relpsp", "alpha"]

#: Display names of the two kernels.
KERNEL_LABELS: dict[str, str] = {"relpsp": "ReL-PSP", "alpha": "alpha-PSP"}


# --------------------------------------------------------------------------------------------
# Exact neurons of both kernels (ALGORITHMS.md 2.2, 2.3)
# --------------------------------------------------------------------------------------------


def kernel_spike_times(
    kernel: KernelName, t_in: torch.Tensor, weight: torch.Tensor, theta: float, *, tau: float
) -> torch.Tensor:
    """Exact first-spike times of a layer of ``kernel`` neurons (``inf`` = never), no gradient.

    ReL-PSP: ``V_j(t) = sum_i w_ji max(0, t - t_i)``; alpha-PSP: ``V_j(t) = sum_i w_ji K(t - t_i)``,
    ``K(x) = (x / tau) exp(1 - x / tau) H(x)`` (ALGORITHMS.md 2.2); ``t_j`` = first ``V_j = theta``.

    Shape:
        - t_in: ``[B, N]``; weight: ``[M, N]``; Output: ``[B, M]``
    """
    with torch.no_grad():
        if kernel == "relpsp":
            return relpsp_spike_times(t_in, weight, theta)
        if kernel == "alpha":
            return alpha_spike_times(t_in, weight, theta, tau=tau)
    raise ValueError(f"unknown kernel {kernel!r}; expected 'relpsp' or 'alpha'")


def time_weight_gradient(
    kernel: KernelName, t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor, *, tau: float
) -> torch.Tensor:
    """Every exact ``dt_j/dw_ji = -(dV_j/dw_ji) / (dV_j/dt)`` at the crossing (ALGORITHMS.md 2.3).

    ReL-PSP: ``(t_i - t_j) / sum_C w``; alpha-PSP: ``-K(t_j - t_i) / V'(t_j)``. Zero for
    non-causal inputs, silent neurons and non-positive slopes.

    Shape:
        - t_in: ``[B, N]``; weight: ``[M, N]``; t_out: ``[B, M]``; Output: ``[B, M, N]``
    """
    if kernel == "relpsp":
        return relpsp_time_weight_gradient(t_in, weight, t_out)
    if kernel == "alpha":
        return alpha_time_weight_gradient(t_in, weight, t_out, tau)
    raise ValueError(f"unknown kernel {kernel!r}; expected 'relpsp' or 'alpha'")


def crossing_slope(
    kernel: KernelName, t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor, *, tau: float
) -> torch.Tensor:
    """``dV_j/dt`` at each neuron's spike time (``nan`` for silent neurons), in threshold units per ms.

    ReL-PSP: ``sum_{i: t_i < t_j} w_ji``; alpha-PSP: ``sum_i w_ji K'(t_j - t_i)`` (ALGORITHMS.md 2.3).
    The factor ``1 / (dV/dt)`` multiplies every spike-time gradient of the neuron.

    Shape:
        - t_in: ``[B, N]``; weight: ``[M, N]``; t_out: ``[B, M]``; Output: ``[B, M]``
    """
    fired = torch.isfinite(t_out)
    t_safe = torch.where(fired, t_out, torch.zeros_like(t_out))
    lag = (t_safe[:, :, None] - t_in[:, None, :]).nan_to_num(nan=0.0, neginf=0.0)  # silent inputs: no contribution
    if kernel == "relpsp":
        slope = (weight[None] * (lag > 0)).sum(dim=2)
    elif kernel == "alpha":
        slope = (weight[None] * alpha_kernel_derivative(lag, tau)).sum(dim=2)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; expected 'relpsp' or 'alpha'")
    return torch.where(fired, slope, torch.full_like(slope, math.nan))


def within_window(values: torch.Tensor, t_out: torch.Tensor, window: float) -> torch.Tensor:
    """``values`` of the neurons that fire before ``window`` (ms), 0 for the others.

    The STDBP loss reads output times through the decision window ``t_silent``
    (:mod:`snnbp.stdbp.loss`): a spike at or after it carries no gradient.

    Shape:
        - values: ``[B, M, ...]``; t_out: ``[B, M]``; Output: like ``values``.
    """
    keep = (t_out < window).reshape(*t_out.shape, *([1] * (values.dim() - t_out.dim())))
    return torch.where(keep, values, torch.zeros_like(values))


# --------------------------------------------------------------------------------------------
# Section a: the spike function around threshold
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeTimeSweep:
    """One neuron whose weight ``index`` takes each of ``values``; the other weights fixed.

    Attributes:
        values: ``[S]`` the swept weight.
        t_out: ``[S]`` exact spike time in ms (``inf`` = never).
        dtdw: ``[S]`` exact ``dt_j/dw`` of the swept weight (0 where silent or non-causal).
        window: observation window in ms: a spike at or after it counts as "no spike".
        critical: the weight where the spike indicator steps (:func:`critical_weight`), ``nan``
            when it does not step inside the sweep.
    """

    values: torch.Tensor
    t_out: torch.Tensor
    dtdw: torch.Tensor
    window: float
    critical: float

    @property
    def fired(self) -> torch.Tensor:
        """``[S]`` the spike indicator ``s(w) = 1[t_j(w) < window]``."""
        return self.t_out < self.window


def _fires(
    kernel: KernelName,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    value: float,
    theta: float,
    tau: float,
    window: float,
) -> bool:
    trial = weight.clone()
    trial[index] = value
    return bool(kernel_spike_times(kernel, t_in[None], trial[None], theta, tau=tau)[0, 0] < window)


def critical_weight(
    kernel: KernelName,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    low: float,
    high: float,
    *,
    theta: float,
    tau: float,
    window: float,
    iterations: int = 100,
) -> float:
    """The weight ``w*`` in ``[low, high]`` where the spike indicator ``1[t_j(w) < window]`` steps, by bisection.

    ``nan`` when the indicator is the same at both ends. ReL-PSP: ``w*`` puts the spike exactly
    at the window's end (the neuron still fires later); alpha-PSP: ``w*`` makes the potential's
    peak touch the threshold (no spike below it).

    Shape:
        - t_in, weight: ``[N]``
    """
    fires_low = _fires(kernel, t_in, weight, index, low, theta, tau, window)
    if fires_low == _fires(kernel, t_in, weight, index, high, theta, tau, window):
        return math.nan
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if _fires(kernel, t_in, weight, index, middle, theta, tau, window) == fires_low:
            low = middle
        else:
            high = middle
    return high if not fires_low else low


def sweep_weight(
    kernel: KernelName,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    values: torch.Tensor,
    *,
    theta: float,
    tau: float,
    window: float,
) -> SpikeTimeSweep:
    """Spike time and ``dt/dw_index`` of one neuron as its weight ``index`` sweeps ``values`` (ascending).

    Each swept value is one neuron of a layer with the same inputs (ALGORITHMS.md 2.2, 2.3); the
    critical weight is searched between the first and last value.

    Shape:
        - t_in: ``[N]``; weight: ``[N]``; values: ``[S]``
    """
    weights = weight.expand(values.shape[0], -1).clone()
    weights[:, index] = values
    t_out = kernel_spike_times(kernel, t_in[None], weights, theta, tau=tau)
    dtdw = time_weight_gradient(kernel, t_in[None], weights, t_out, tau=tau)[0, :, index]
    critical = critical_weight(
        kernel, t_in, weight, index, float(values[0]), float(values[-1]), theta=theta, tau=tau, window=window
    )
    return SpikeTimeSweep(values, t_out[0], dtdw, window, critical)


def threshold_sweeps(
    kernel: KernelName,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    *,
    theta: float,
    tau: float,
    window: float,
    points: int,
    near_decades: int,
    bracket: tuple[float, float] = (0.0, 10.0),
) -> tuple[SpikeTimeSweep, SpikeTimeSweep]:
    """A wide sweep ``w = w* x [-1, 3]`` and a near-threshold sweep ``w = w* + |w*| x 10^[-near_decades, 0]``.

    ``w*`` is the critical weight in ``bracket`` (:func:`critical_weight`); the near sweep starts
    on the firing side, ten points per decade.

    Raises:
        ValueError: when the spike indicator does not step inside ``bracket``.

    Shape:
        - t_in, weight: ``[N]``
    """
    critical = critical_weight(kernel, t_in, weight, index, *bracket, theta=theta, tau=tau, window=window)
    if not math.isfinite(critical):
        raise ValueError(f"the {kernel} neuron's spike indicator does not step for weight {index} in {bracket}")
    options = {"theta": theta, "tau": tau, "window": window}
    wide = sweep_weight(
        kernel, t_in, weight, index, critical * torch.linspace(-1.0, 3.0, points, dtype=t_in.dtype), **options
    )
    offsets = torch.logspace(-near_decades, 0, 10 * near_decades + 1, dtype=t_in.dtype)
    near = sweep_weight(kernel, t_in, weight, index, critical + abs(critical) * offsets, **options)
    return SpikeTimeSweep(wide.values, wide.t_out, wide.dtdw, window, critical), SpikeTimeSweep(
        near.values, near.t_out, near.dtdw, window, critical
    )


def gradient_at_offsets(sweep: SpikeTimeSweep, offsets: Sequence[float]) -> list[float]:
    """``|dt/dw|`` at the sweep points nearest (in log distance) to ``(w - w*) / |w*| = offsets``.

    Shape:
        - sweep: a sweep above ``w*`` (:func:`threshold_sweeps`' near sweep)
    """
    relative = ((sweep.values - sweep.critical) / abs(sweep.critical)).clamp(min=1e-300).log10()
    return [float(sweep.dtdw[torch.argmin((relative - math.log10(o)).abs())].abs()) for o in offsets]


# --------------------------------------------------------------------------------------------
# Section b, theory: random neurons
# --------------------------------------------------------------------------------------------


def random_neurons(
    *,
    patterns: int,
    inputs: int,
    neurons: int,
    mean_low: float,
    mean_high: float,
    t_max: float,
    theta: float,
    generator: torch.Generator,
    excitatory: bool = False,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random input patterns and random neurons with a spread of drives.

    ``t_i ~ U(0, t_max)`` (one spike per input, like the latency code), ``z ~ N(0, 1)``,
    ``mu_j ~ U(mean_low, mean_high)`` (one per neuron, so the population covers neurons that
    barely reach threshold and neurons driven far past it). Weights:

    * mixed sign: ``w_ji = (theta / t_max) (mu_j + z_ji) / sqrt(N)``, the learner's
      initialisation (:func:`snnbp.stdbp.model.init_weights`) with one mean per neuron;
    * ``excitatory``: ``w_ji = (theta / t_max) mu_j |z_ji| / sqrt(N)`` (all non-negative).

    Shape:
        - Output: ``t_in [patterns, inputs]``, ``weight [neurons, inputs]``
    """
    t_in = t_max * torch.rand(patterns, inputs, generator=generator, dtype=dtype)
    mu = mean_low + (mean_high - mean_low) * torch.rand(neurons, 1, generator=generator, dtype=dtype)
    z = torch.randn(neurons, inputs, generator=generator, dtype=dtype)
    drive = mu * z.abs() if excitatory else mu + z
    return t_in, (theta / t_max) * drive / math.sqrt(inputs)


@dataclass(frozen=True)
class GradientSummary:
    """Log-binned ``|dt/dw|`` of a set of neurons, all spikes and spikes before the window.

    Attributes:
        all_spikes: counts on :data:`snnbp.analysis.LOG_BIN_EDGES`, every nonzero entry.
        before_window: the same for neurons that fire before the window's end.
        fired: fraction of (pattern, neuron) pairs that fire at all.
        fired_before_window: fraction that fire before the window's end.
        max_all, max_before_window: largest ``|dt/dw|`` (0 when none).
    """

    all_spikes: torch.Tensor
    before_window: torch.Tensor
    fired: float
    fired_before_window: float
    max_all: float
    max_before_window: float


def summarise_gradients(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], window: float) -> GradientSummary:
    """:class:`GradientSummary` of one or more layers' ``(dt/dw [B, M, N], t_out [B, M])``.

    Shape:
        - layers: pairs of ``[B, M, N]`` and ``[B, M]`` tensors (sizes may differ per layer).
    """
    hist_all = torch.zeros(len(LOG_BIN_EDGES) - 1, dtype=torch.long)
    hist_window = torch.zeros_like(hist_all)
    fired = before = total = 0
    max_all = max_window = 0.0
    for dtdw, t_out in layers:
        windowed = within_window(dtdw, t_out, window)
        hist_all += log_histogram(dtdw)
        hist_window += log_histogram(windowed)
        fired += int(torch.isfinite(t_out).sum())
        before += int((t_out < window).sum())
        total += t_out.numel()
        max_all = max(max_all, float(dtdw.abs().max()) if dtdw.numel() else 0.0)
        max_window = max(max_window, float(windowed.abs().max()) if windowed.numel() else 0.0)
    return GradientSummary(hist_all, hist_window, fired / max(total, 1), before / max(total, 1), max_all, max_window)
