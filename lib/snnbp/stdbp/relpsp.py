"""Exact spike times of the ReL-PSP neuron and their STDBP gradients (ALGORITHMS.md 2.2, 2.3).

The neuron is non-leaky and fires at most once; its potential is

    V_j(t) = sum_i w_ji * max(0, t - t_i)      (rectified-linear PSP kernel, ALGORITHMS.md 2.2)

so ``V_j`` is linear between consecutive input times. With the inputs sorted by time,
``t_(1) <= ... <= t_(K)``, ``t_(K+1) = +inf``, and the causal prefix sums ``W_k = sum_{m<=k} w_(m)``
and ``A_k = sum_{m<=k} w_(m) t_(m)``, the first crossing of ``theta`` lies in the first segment
``[t_(k), t_(k+1))`` whose end potential ``V(t_(k+1)) = t_(k+1) W_k - A_k`` reaches ``theta`` (a
linear piece attains its maximum at an end), and there

    t_j = (theta + A_k) / W_k,      dt_j/dw_ji = (t_i - t_j) / W_k,      dt_j/dt_i = w_ji / W_k

for the inputs of the causal prefix (zero for the others). A neuron whose total input weight is
positive therefore always fires eventually.

Two formulations of the same exact layer live here:

* :func:`relpsp_spike_times` (the fast path, event-driven): each sample's inputs are sorted once
  and silent inputs dropped; the sorted inputs are visited in time order, each visit updating the
  slope ``W`` and the potential ``V`` of every neuron of the still-active samples (samples whose
  inputs are exhausted leave the loop) and a running maximum of ``V``; every ``chunk`` inputs the
  few neurons whose maximum reached ``theta`` are resolved exactly (the crossing segment and
  ``t_j``); the visit stops when every neuron has fired. The backward
  (:class:`ReLPSPSpikeTimes`) walks the same order over the causal prefixes only. Work:
  ``O(B * N_out * K)`` with ``K`` the number of spiking inputs, memory ``O(B * (N_out + N_in))``.
* :func:`relpsp_spike_times_dense`: the dense vectorised ``B x N_in x N_out`` cumulative-sum
  form with plain autograd through the selected closed form (the benchmark baseline and an
  independent gradient reference).
"""

from __future__ import annotations

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


def _check_theta(theta: float) -> None:
    if not theta > 0:
        raise ValueError(f"theta must be positive (the potential starts at 0), got {theta}")


class Crossings(NamedTuple):
    """First threshold crossings, rows in :class:`SortedInputs` order.

    Attributes:
        t_out: ``[B, N_out]`` spike times (``inf`` = never).
        slope: ``[B, N_out]`` ``W_k = sum_C w`` at the crossing (0 = never).
        count: ``[B, N_out]`` causal prefix length ``k`` (0 = never).
    """

    t_out: torch.Tensor
    slope: torch.Tensor
    count: torch.Tensor


def _resolve(
    crossed: torch.Tensor,
    start: int,
    stop: int,
    slope0: torch.Tensor,
    v0: torch.Tensor,
    sorted_in: SortedInputs,
    delta: torch.Tensor,
    weight_cols: torch.Tensor,
    theta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact crossing segment and time of the neurons whose potential reached ``theta`` in a chunk.

    ``slope0``/``v0`` are ``W`` and ``V`` at the chunk's first input time. The end potentials of
    the chunk's segments are recomputed for these ``P`` neurons only; the first segment whose end
    potential reaches ``min(theta, its maximum)`` (tolerant of rounding) holds the crossing and
    ``t = t_(k) + (theta - V(t_(k))) / W_k``, kept inside the segment.

    Shape:
        - crossed: ``[R, N_out]`` bool; slope0, v0: ``[R, N_out]``; delta: ``[B, K]``
        - Output: rows ``[P]``, neurons ``[P]``, times ``[P]``, slopes ``[P]``, counts ``[P]``.
    """
    b, j = crossed.nonzero(as_tuple=True)
    w = weight_cols[sorted_in.order[b, start:stop], j[:, None]]  # [P, C]
    slopes = w.cumsum(dim=1) + slope0[b, j][:, None]
    v_end = (slopes * delta[b, start:stop]).cumsum(dim=1) + v0[b, j][:, None]
    level = torch.minimum(v_end.nan_to_num(nan=float("-inf")).amax(dim=1), torch.full_like(v_end[:, 0], theta))
    first = (v_end >= level[:, None]).to(torch.uint8).argmax(dim=1, keepdim=True)
    v_start = torch.where(first > 0, v_end.gather(1, (first - 1).clamp(min=0)), v0[b, j][:, None]).squeeze(1)
    w_k = slopes.gather(1, first).squeeze(1)
    position = first.squeeze(1) + start
    t_lo = sorted_in.times[b, position]
    t_hi = t_lo + delta[b, position]
    safe_w = torch.where(w_k > 0, w_k, torch.ones_like(w_k))
    t_cross = torch.where(w_k > 0, t_lo + (theta - v_start) / safe_w, t_lo)
    t_cross = torch.minimum(torch.maximum(t_cross, t_lo), t_hi)
    return b, j, t_cross, w_k, position + 1


def scan_crossings(sorted_in: SortedInputs, weight_cols: torch.Tensor, theta: float, chunk: int) -> Crossings:
    """Event-driven first crossings of every neuron (the fast forward of ALGORITHMS.md 2.2).

    For each sorted input ``k`` of the active rows: ``W += w_(k)``, ``V += W * (t_(k+1) - t_(k))``
    (``V`` is then the potential at the next input time; ``inf`` after the last input, so a
    positive final slope fires eventually), ``M = max(M, V)`` (NaN-ignoring). Every ``chunk`` inputs, neurons
    with ``M >= theta`` that had not fired are resolved exactly by :func:`_resolve`.

    Shape:
        - weight_cols: ``[N_in + 1, N_out]``
        - Output: :class:`Crossings` of ``[B, N_out]`` tensors (rows in ``sorted_in`` order).
    """
    times = sorted_in.times
    batch, n_sorted = times.shape
    n_out = weight_cols.shape[1]
    options = {"dtype": weight_cols.dtype, "device": weight_cols.device}
    t_next = torch.cat([times[:, 1:], torch.full((batch, 1), float("inf"), **options)], dim=1)
    delta = t_next - times  # inf after the last spike of a row, nan on padding (never visited)
    slope = torch.zeros(batch, n_out, **options)
    potential = torch.zeros(batch, n_out, **options)
    peak = torch.full((batch, n_out), float("-inf"), **options)
    t_out = torch.full((batch, n_out), float("inf"), **options)
    slope_out = torch.zeros(batch, n_out, **options)
    count = torch.zeros(batch, n_out, dtype=torch.long, device=weight_cols.device)
    fired = torch.zeros(batch, n_out, dtype=torch.bool, device=weight_cols.device)
    for start in range(0, n_sorted, chunk):
        stop = min(n_sorted, start + chunk)
        rows = sorted_in.alive[start]
        slope0, v0 = slope[:rows].clone(), potential[:rows].clone()
        for k in range(start, stop):
            r = sorted_in.alive[k]
            slope[:r] += weight_cols.index_select(0, sorted_in.order[:r, k])
            potential[:r].addcmul_(slope[:r], delta[:r, k, None])
            torch.fmax(peak[:r], potential[:r], out=peak[:r])  # fmax: a final 0 * inf = nan must not hide a crossing
        crossed = (peak[:rows] >= theta) & ~fired[:rows]
        if bool(crossed.any()):
            b, j, t_cross, w_k, k_count = _resolve(
                crossed, start, stop, slope0, v0, sorted_in, delta, weight_cols, theta
            )
            t_out[b, j], slope_out[b, j], count[b, j] = t_cross, w_k, k_count
            fired[b, j] = True
        if bool(fired.all()):
            break
    return Crossings(t_out, slope_out, count)


class ReLPSPSpikeTimes(torch.autograd.Function):
    """Exact ReL-PSP first-spike times with the STDBP backward of ALGORITHMS.md 2.3.

    Backward, with ``g_bj = (dL/dt_bj) / W_bj`` (0 for silent neurons and non-positive slopes;
    ``1 / W`` optionally capped at ``clip``) and ``C_bj`` the causal prefix:

        dL/dt_bi = sum_j g_bj w_ji [i in C_bj],      dL/dw_ji = sum_b g_bj (t_bi - t_bj) [i in C_bj],

    accumulated by walking the sorted inputs in time order and retiring each neuron after its
    causal prefix.
    """

    @staticmethod
    def forward(ctx, t_in, weight, theta, clip, chunk):  # noqa: D102 - see the class docstring
        sorted_in = sort_spike_times(t_in.detach())
        crossings = scan_crossings(sorted_in, padded_weight_columns(weight.detach()), float(theta), chunk)
        ctx.save_for_backward(weight, sorted_in.times, sorted_in.order, sorted_in.rows, *crossings)
        ctx.alive, ctx.clip, ctx.n_in = sorted_in.alive, clip, t_in.shape[1]
        return unsort_rows(crossings.t_out, sorted_in.rows)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102 - see the class docstring
        weight, times, order, rows, t_out, slope, count = ctx.saved_tensors
        weight_cols = padded_weight_columns(weight.detach())
        fired = count > 0
        g = torch.where(fired, grad_out[rows], torch.zeros_like(t_out)) * inverse_slope(slope, ctx.clip)
        minus_gt = -g * torch.where(fired, t_out, torch.zeros_like(t_out))
        grad_sorted = torch.zeros_like(times)
        grad_cols = torch.zeros_like(weight_cols)
        retiring, bounds = retirement_schedule(count)
        g_flat, minus_gt_flat = g.view(-1), minus_gt.view(-1)
        for k in range(len(bounds) - 1):
            r = ctx.alive[k]
            index = order[:r, k]
            grad_sorted[:r, k] = (g[:r] * weight_cols.index_select(0, index)).sum(dim=1)
            grad_cols.index_add_(0, index, torch.addcmul(minus_gt[:r], g[:r], times[:r, k, None]))
            done = retiring[bounds[k] : bounds[k + 1]]
            g_flat.index_fill_(0, done, 0.0)
            minus_gt_flat.index_fill_(0, done, 0.0)
        grad_in = torch.zeros(times.shape[0], ctx.n_in + 1, dtype=times.dtype, device=times.device)
        grad_in.scatter_add_(1, order, grad_sorted)
        return unsort_rows(grad_in[:, :-1], rows), grad_cols[:-1].t().contiguous(), None, None, None


def relpsp_spike_times(
    t_in: torch.Tensor, weight: torch.Tensor, theta: float, *, clip: float | None = None, chunk: int = 16
) -> torch.Tensor:
    """First time each ReL-PSP neuron's potential reaches ``theta``, exactly (ALGORITHMS.md 2.2).

    ``V_j(t) = sum_i w_ji max(0, t - t_i)``; ``t_j = (theta + sum_C w t) / sum_C w`` over the
    causal prefix ``C`` of the first segment whose end potential reaches ``theta``. No time grid
    and no window: ``t_j`` is ``inf`` only when the potential never reaches ``theta``.

    Differentiable in ``t_in`` and ``weight`` with the STDBP gradients of ALGORITHMS.md 2.3
    (:class:`ReLPSPSpikeTimes`); silent inputs, silent outputs and non-positive slopes get zero
    gradient, so gradients are never NaN.

    Args:
        t_in: input spike times in ms (``inf`` = no spike).
        weight: synaptic weights.
        theta: firing threshold (> 0).
        clip: optional cap on ``1 / sum_C w`` in the backward (the largest gradient factor).
        chunk: inputs visited between two exact resolutions (a speed knob only).

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``
        - Output: ``[B, N_out]``
    """
    _check_theta(theta)
    return ReLPSPSpikeTimes.apply(t_in, weight, theta, clip, chunk)


def relpsp_spike_times_dense(t_in: torch.Tensor, weight: torch.Tensor, theta: float) -> torch.Tensor:
    """The same exact spike times, dense: ``B x N_in x N_out`` cumulative sums, plain autograd.

    Every input (spiking or not) and every prefix is evaluated at once (ALGORITHMS.md 2.10);
    gradients come from autograd through ``(theta + A_k) / W_k`` at the selected prefix, which
    equals ALGORITHMS.md 2.3 exactly (no clipping). The benchmark's "dense vectorised" baseline.

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``
        - Output: ``[B, N_out]``
    """
    _check_theta(theta)
    t_sorted, order = torch.sort(t_in, dim=1, stable=True)
    finite = torch.isfinite(t_sorted)
    weights = weight.t()[order] * finite[:, :, None]  # [B, N_in, N_out]
    t_weighted = torch.where(finite, t_sorted, torch.zeros_like(t_sorted))
    w_cum = weights.cumsum(dim=1)
    a_cum = (weights * t_weighted[:, :, None]).cumsum(dim=1)
    t_next = torch.cat([t_sorted[:, 1:], torch.full_like(t_sorted[:, :1], float("inf"))], dim=1)[:, :, None]
    reached = (w_cum * t_next - a_cum >= theta) & finite[:, :, None]
    first = reached.to(torch.uint8).argmax(dim=1, keepdim=True)
    fired = reached.gather(1, first).squeeze(1)
    w_k = w_cum.gather(1, first).squeeze(1)
    a_k = a_cum.gather(1, first).squeeze(1)
    valid = fired & (w_k > 0)
    t_cross = (theta + a_k) / torch.where(valid, w_k, torch.ones_like(w_k))
    return torch.where(valid, t_cross, torch.full_like(t_cross, float("inf")))


def relpsp_time_weight_gradient(t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor) -> torch.Tensor:
    """Every ``dt_j/dw_ji = (t_i - t_j) / sum_C w`` of a layer, dense (ALGORITHMS.md 2.3).

    For the gradient statistics of a few samples (ALGORITHMS.md 2.9); the causal set is
    ``C_j = {i : t_i < t_j}``; entries outside it, of silent neurons and of non-positive slopes
    are 0.

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``; t_out: ``[B, N_out]``
        - Output: ``[B, N_out, N_in]``
    """
    causal = (t_in[:, None, :] < t_out[:, :, None]) & torch.isfinite(t_out)[:, :, None]
    slope = (weight[None] * causal).sum(dim=2)
    lag = torch.where(
        causal, t_in[:, None, :] - t_out[:, :, None], torch.zeros((), dtype=t_in.dtype, device=t_in.device)
    )
    return lag * inverse_slope(slope, None)[:, :, None]
