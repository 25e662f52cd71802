"""Exact first-spike times of the alpha-PSP neuron, the comparison model of ALGORITHMS.md 2.2/2.9.

Kernel choice: ``K(x) = (x / tau) * exp(1 - x / tau) * H(x)``, the normalised alpha function
(peak value 1 at ``x = tau``), one of the two alpha forms ALGORITHMS.md 2.2 lists for the
paper's alpha-PSP baseline. The neuron is otherwise the ReL-PSP one (non-leaky sum of PSPs,
single spike, ``V_j(t) = sum_i w_ji K(t - t_i)``), so the two kernels can be trained the same way
and compared (gradient distributions and dead neurons, ALGORITHMS.md 2.9).

Forward, exact: on the segment after the ``k``-th sorted input, with ``s = t - t_(k)``,

    V(s) = (e / tau) exp(-s / tau) (s B_k + D_k),
    B_k = sum_{m<=k} w_(m) exp(-(t_(k) - t_(m)) / tau),
    D_k = sum_{m<=k} w_(m) (t_(k) - t_(m)) exp(-(t_(k) - t_(m)) / tau),

updated input by input with decaying factors only (``D <- e^{-d/tau} (D + d B)``,
``B <- e^{-d/tau} B + w``), so nothing overflows. ``V`` is unimodal on a segment: with ``B > 0`` it
peaks at ``s_p = tau - D / B``; with ``B <= 0`` it cannot rise above 0. The first segment whose
maximum ``V(clip(s_p, 0, t_(k+1) - t_(k)))`` reaches ``theta`` holds the first crossing, and
``V`` is increasing and concave on ``[0, clip(s_p, ...)]``; the root is found there by Newton's
method safeguarded by bisection, to machine precision.

Backward, by the implicit-function rule at ``V(t_j) = theta`` (ALGORITHMS.md 2.3):

    dt_j/dw_ji = -K(t_j - t_i) / V'(t_j),      dt_j/dt_i = w_ji K'(t_j - t_i) / V'(t_j),

for inputs of the causal prefix. ``V'(t_j) -> 0`` when the threshold is reached near the
potential's peak: the gradient explosion the ReL-PSP paper attributes to such kernels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from snnbp.stdbp.events import (
    SortedInputs,
    inverse_slope,
    padded_weight_columns,
    retirement_schedule,
    sort_spike_times,
    unsort_rows,
)

NEWTON_MAX_ITERATIONS = 200


def alpha_kernel(x: torch.Tensor, tau: float) -> torch.Tensor:
    """``K(x) = (x / tau) exp(1 - x / tau)`` for ``x > 0``, else 0 (peak 1 at ``x = tau``).

    Shape:
        - x: any; Output: same.
    """
    positive = x.clamp(min=0.0)
    return positive / tau * torch.exp(1.0 - positive / tau)


def alpha_kernel_derivative(x: torch.Tensor, tau: float) -> torch.Tensor:
    """``K'(x) = (1 / tau) (1 - x / tau) exp(1 - x / tau)`` for ``x > 0``, else 0.

    Shape:
        - x: any; Output: same.
    """
    positive = x.clamp(min=0.0)
    return torch.where(x > 0, (1.0 - positive / tau) / tau * torch.exp(1.0 - positive / tau), torch.zeros_like(x))


def _segment_potential(
    s: torch.Tensor, b: torch.Tensor, d: torch.Tensor, tau: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``V(s)`` and ``V'(s)`` on a segment with state ``(B, D)`` (module docstring).

    Shape:
        - all inputs the same shape; Output: two tensors of that shape.
    """
    envelope = math.e / tau * torch.exp(-s / tau)
    u = s * b + d
    return envelope * u, envelope * (b - u / tau)


def _first_root(b: torch.Tensor, d: torch.Tensor, s_hi: torch.Tensor, theta: float, tau: float) -> torch.Tensor:
    """The root of ``V(s) = theta`` on ``[0, s_hi]`` where ``V`` increases (safeguarded Newton).

    Newton steps that leave the bracket ``(lo, hi)`` are replaced by bisection; iteration stops
    when no estimate moves by more than a few ulps.

    Shape:
        - b, d, s_hi: ``[P]``; Output: ``[P]``
    """
    lo = torch.zeros_like(s_hi)
    hi = s_hi.clone()
    s = lo.clone()
    eps = torch.finfo(s.dtype).eps
    for _ in range(NEWTON_MAX_ITERATIONS):
        value, slope = _segment_potential(s, b, d, tau)
        below = value < theta
        lo = torch.where(below, s, lo)
        hi = torch.where(below, hi, s)
        newton = s + (theta - value) / torch.where(slope > 0, slope, torch.ones_like(slope))
        inside = (slope > 0) & (newton > lo) & (newton < hi)
        updated = torch.where(inside, newton, 0.5 * (lo + hi))
        if bool(((updated - s).abs() <= 4 * eps * (s.abs() + eps)).all()):
            return updated
        s = updated
    return s


class AlphaCrossings(NamedTuple):
    """First crossings of alpha-PSP neurons, rows in :class:`SortedInputs` order.

    Attributes:
        t_out: ``[B, N_out]`` spike times (``inf`` = never).
        slope: ``[B, N_out]`` ``V'(t_j)`` (0 = never).
        count: ``[B, N_out]`` causal prefix length (0 = never).
    """

    t_out: torch.Tensor
    slope: torch.Tensor
    count: torch.Tensor


def scan_alpha_crossings(
    sorted_in: SortedInputs, weight_cols: torch.Tensor, theta: float, tau: float
) -> AlphaCrossings:
    """Visit the sorted inputs in time order; solve each neuron's first crossing exactly.

    Shape:
        - weight_cols: ``[N_in + 1, N_out]``
        - Output: :class:`AlphaCrossings` of ``[B, N_out]`` tensors.
    """
    times = sorted_in.times
    batch, n_sorted = times.shape
    n_out = weight_cols.shape[1]
    options = {"dtype": weight_cols.dtype, "device": weight_cols.device}
    t_next = torch.cat([times[:, 1:], torch.full((batch, 1), float("inf"), **options)], dim=1)
    span = t_next - times  # length of the segment after each input (inf after the last)
    gap = torch.cat([torch.zeros(batch, 1, **options), times[:, 1:] - times[:, :-1]], dim=1)
    b_acc = torch.zeros(batch, n_out, **options)
    d_acc = torch.zeros(batch, n_out, **options)
    fired = torch.zeros(batch, n_out, dtype=torch.bool, device=weight_cols.device)
    found: list[tuple[torch.Tensor, ...]] = []
    for k in range(n_sorted):
        r = sorted_in.alive[k]
        decay = torch.exp(-gap[:r, k, None] / tau)
        d_acc[:r].addcmul_(b_acc[:r], gap[:r, k, None]).mul_(decay)
        b_acc[:r].mul_(decay).add_(weight_cols.index_select(0, sorted_in.order[:r, k]))
        b, d = b_acc[:r], d_acc[:r]
        rising = b > 0
        s_peak = torch.where(rising, tau - d / torch.where(rising, b, torch.ones_like(b)), torch.zeros_like(b))
        s_peak = torch.minimum(s_peak.clamp(min=0.0), span[:r, k, None])
        new = rising & (_segment_potential(s_peak, b, d, tau)[0] >= theta) & ~fired[:r]
        if bool(new.any()):
            rows, cols = new.nonzero(as_tuple=True)
            found.append((rows, cols, b[rows, cols], d[rows, cols], s_peak[rows, cols], torch.full_like(rows, k)))
            fired[rows, cols] = True
            if bool(fired.all()):
                break
    t_out = torch.full((batch, n_out), float("inf"), **options)
    slope = torch.zeros(batch, n_out, **options)
    count = torch.zeros(batch, n_out, dtype=torch.long, device=weight_cols.device)
    if found:
        rows, cols, b, d, s_hi, position = (torch.cat(parts) for parts in zip(*found))
        s = _first_root(b, d, s_hi, theta, tau)
        t_out[rows, cols] = times[rows, position] + s
        slope[rows, cols] = _segment_potential(s, b, d, tau)[1]
        count[rows, cols] = position + 1
    return AlphaCrossings(t_out, slope, count)


class AlphaSpikeTimes(torch.autograd.Function):
    """Exact alpha-PSP first-spike times; backward by the implicit-function rule.

    With ``g_bj = (dL/dt_bj) / V'(t_bj)`` (0 for silent neurons or ``V' <= 0``; optionally capped
    at ``clip``) and ``x = t_bj - t_bi`` over the causal prefix:

        dL/dt_bi = sum_j g_bj w_ji K'(x),      dL/dw_ji = -sum_b g_bj K(x).
    """

    @staticmethod
    def forward(ctx, t_in, weight, theta, tau, clip):  # noqa: D102 - see the class docstring
        sorted_in = sort_spike_times(t_in.detach())
        crossings = scan_alpha_crossings(sorted_in, padded_weight_columns(weight.detach()), float(theta), float(tau))
        ctx.save_for_backward(weight, sorted_in.times, sorted_in.order, sorted_in.rows, *crossings)
        ctx.alive, ctx.tau, ctx.clip, ctx.n_in = sorted_in.alive, float(tau), clip, t_in.shape[1]
        return unsort_rows(crossings.t_out, sorted_in.rows)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102 - see the class docstring
        weight, times, order, rows, t_out, slope, count = ctx.saved_tensors
        weight_cols = padded_weight_columns(weight.detach())
        fired = count > 0
        g = torch.where(fired, grad_out[rows], torch.zeros_like(t_out)) * inverse_slope(slope, ctx.clip)
        t_fired = torch.where(fired, t_out, torch.zeros_like(t_out))
        grad_sorted = torch.zeros_like(times)
        grad_cols = torch.zeros_like(weight_cols)
        retiring, bounds = retirement_schedule(count)
        g_flat = g.view(-1)
        for k in range(len(bounds) - 1):
            r = ctx.alive[k]
            index = order[:r, k]
            lag = t_fired[:r] - times[:r, k, None]
            grad_sorted[:r, k] = (
                g[:r] * weight_cols.index_select(0, index) * alpha_kernel_derivative(lag, ctx.tau)
            ).sum(dim=1)
            grad_cols.index_add_(0, index, -g[:r] * alpha_kernel(lag, ctx.tau))
            g_flat.index_fill_(0, retiring[bounds[k] : bounds[k + 1]], 0.0)
        grad_in = torch.zeros(times.shape[0], ctx.n_in + 1, dtype=times.dtype, device=times.device)
        grad_in.scatter_add_(1, order, grad_sorted)
        return unsort_rows(grad_in[:, :-1], rows), grad_cols[:-1].t().contiguous(), None, None, None


def alpha_spike_times(
    t_in: torch.Tensor, weight: torch.Tensor, theta: float, *, tau: float = 1.0, clip: float | None = None
) -> torch.Tensor:
    """First time each alpha-PSP neuron's potential reaches ``theta``, exactly.

    ``V_j(t) = sum_i w_ji K(t - t_i)``, ``K(x) = (x / tau) exp(1 - x / tau) H(x)`` (module
    docstring; ALGORITHMS.md 2.2, 2.9). Same interface as
    :func:`snnbp.stdbp.relpsp.relpsp_spike_times`; differentiable in ``t_in`` and ``weight`` by the
    implicit-function rule (:class:`AlphaSpikeTimes`).

    Args:
        t_in: input spike times in ms (``inf`` = no spike).
        weight: synaptic weights.
        theta: firing threshold (> 0).
        tau: time to the PSP peak in ms.
        clip: optional cap on ``1 / V'(t_j)`` in the backward.

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``
        - Output: ``[B, N_out]``
    """
    if not theta > 0:
        raise ValueError(f"theta must be positive (the potential starts at 0), got {theta}")
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    return AlphaSpikeTimes.apply(t_in, weight, theta, tau, clip)


def alpha_time_weight_gradient(
    t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor, tau: float
) -> torch.Tensor:
    """Every ``dt_j/dw_ji = -K(t_j - t_i) / V'(t_j)`` of an alpha-PSP layer, dense.

    For the gradient statistics of a few samples (ALGORITHMS.md 2.9); entries of non-causal
    inputs, silent neurons and ``V' <= 0`` are 0.

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``; t_out: ``[B, N_out]``
        - Output: ``[B, N_out, N_in]``
    """
    fired = torch.isfinite(t_out)[:, :, None]
    lag = torch.where(
        fired, t_out[:, :, None] - t_in[:, None, :], torch.zeros((), dtype=t_in.dtype, device=t_in.device)
    )
    lag = lag.nan_to_num(nan=0.0, neginf=0.0)  # silent inputs: t_j - inf -> -inf, no contribution
    slope = (weight[None] * alpha_kernel_derivative(lag, tau)).sum(dim=2)
    return -alpha_kernel(lag, tau) * inverse_slope(slope, None)[:, :, None]
