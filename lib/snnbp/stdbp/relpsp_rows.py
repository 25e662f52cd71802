"""Exact ReL-PSP spike times of many small neurons, compiled: the CPU engine of spiking convolutions.

A valid spiking convolution evaluates one ReL-PSP neuron per output channel over every receptive
field (:func:`snnbp.stdbp.layers.conv_spike_times`): ``B * H' * W'`` rows of only ``K = C k k``
inputs each (9 to a few hundred), where the vectorised scan of :mod:`snnbp.stdbp.relpsp` spends
its time in per-step tensor calls. Here every row is handled by plain loops (numba), with the
same mathematics (ALGORITHMS.md 2.2, 2.3):

* forward, per row: the finite input times sorted once, ``t_(1) <= ... <= t_(K)``,
  ``t_(K+1) = +inf``; per neuron, the slope ``W_k = sum_{m<=k} w_(m)`` and the potential
  ``V(t_(k))`` are carried in float64 along the sorted inputs; the first segment whose end
  potential ``V(t_(k)) + W_k (t_(k+1) - t_(k))`` reaches ``theta`` (with ``W_k > 0``) holds the
  crossing ``t_j = t_(k) + (theta - V(t_(k))) / W_k``, kept inside the segment; the slope and
  the causal prefix length ``k`` are kept for the backward;
* backward, per row: ``g_j = (dL/dt_j) / W_j`` (0 for silent neurons; ``1 / W`` capped at
  ``clip``), and over the causal prefix ``dL/dt_i += g_j w_ji``, ``dL/dw_ji += g_j (t_i - t_j)``.

With one torch thread the kernels run serially; with more, rows are spread over numba's threads
(``torch.get_num_threads()`` of them), each summing its own weight gradient, added up at the end. The results equal :func:`snnbp.stdbp.relpsp_spike_times`
up to float rounding (``tests/test_stdbp_relpsp_rows.py``).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange


@njit(cache=True, error_model="numpy")
def _row_crossings(t_sorted, order, weight, theta, t_out, slope_out, count_out):  # pragma: no cover - compiled
    """First crossings of every neuron of one row (see the module docstring).

    ``t_sorted``: the row's finite input times in order; ``order``: their input indices.
    """
    k_in = t_sorted.shape[0]
    for j in range(weight.shape[0]):
        slope = 0.0
        potential = 0.0
        for k in range(k_in):
            t_k = t_sorted[k]
            slope += weight[j, order[k]]
            t_next = t_sorted[k + 1] if k + 1 < k_in else np.inf
            if slope > 0.0:
                end = potential + slope * (t_next - t_k) if t_next < np.inf else np.inf
                if end >= theta:
                    t_cross = t_k + (theta - potential) / slope
                    t_out[j] = min(max(t_cross, t_k), t_next)
                    slope_out[j] = slope
                    count_out[j] = k + 1
                    break
                potential = end
            elif t_next < np.inf:
                potential += slope * (t_next - t_k)


def _forward_rows(times, weight, theta):  # pragma: no cover - compiled below
    """Every row's inputs sorted in time (stable), then its crossings: ``(t_out, slope, count, order)``."""
    rows, n_in = times.shape
    n_out = weight.shape[0]
    t_out = np.full((rows, n_out), np.inf, dtype=np.float64)
    slope_out = np.zeros((rows, n_out), dtype=np.float64)
    count_out = np.zeros((rows, n_out), dtype=np.int64)
    order = np.empty((rows, n_in), dtype=np.int64)
    for row in prange(rows):
        order[row] = np.argsort(times[row], kind="mergesort")
        finite = 0
        while finite < n_in and times[row, order[row, finite]] < np.inf:
            finite += 1
        _row_crossings(
            times[row][order[row, :finite]], order[row], weight, theta, t_out[row], slope_out[row], count_out[row]
        )
    return t_out, slope_out, count_out, order


def _backward_rows(times, order, weight, t_out, count_out, g, threads):  # pragma: no cover - compiled below
    """``(dL/dt_in, dL/dw)`` from ``g = (dL/dt_out) / W`` (0 where no gradient flows)."""
    rows, n_in = times.shape
    n_out = weight.shape[0]
    grad_in = np.zeros((rows, n_in), dtype=np.float64)
    partial = np.zeros((threads, n_out, n_in), dtype=np.float64)
    per_thread = -(-rows // threads)
    for part in prange(threads):
        for row in range(part * per_thread, min(rows, (part + 1) * per_thread)):
            for j in range(n_out):
                gj = g[row, j]
                if gj == 0.0:
                    continue
                tj = t_out[row, j]
                for k in range(count_out[row, j]):
                    i = order[row, k]
                    grad_in[row, i] += gj * weight[j, i]
                    partial[part, j, i] += gj * (times[row, i] - tj)
    grad_w = np.zeros((n_out, n_in), dtype=np.float64)
    for part in range(threads):
        grad_w += partial[part]
    return grad_in, grad_w


# Each kernel twice: serial for one thread (no thread pool: a pool idling beside torch's OpenMP
# threads slows both on a busy machine), parallel over rows for several.
_FORWARD = {
    False: njit(cache=True, error_model="numpy")(_forward_rows),
    True: njit(parallel=True, cache=True, error_model="numpy")(_forward_rows),
}
_BACKWARD = {
    False: njit(cache=True, error_model="numpy")(_backward_rows),
    True: njit(parallel=True, cache=True, error_model="numpy")(_backward_rows),
}


def _threads() -> int:
    """Threads for the kernels: torch's intra-op threads (numba's pool is sized to match)."""
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if threads > 1:
        numba.set_num_threads(threads)
    return threads


class ReLPSPRowSpikeTimes(torch.autograd.Function):
    """:func:`relpsp_row_spike_times` with the STDBP backward of ALGORITHMS.md 2.3."""

    @staticmethod
    def forward(ctx, t_in, weight, theta, clip):  # noqa: D102 - see the class docstring
        times = t_in.detach().cpu().numpy().astype(np.float64)
        w = weight.detach().cpu().numpy().astype(np.float64)
        t_out, slope, count, order = _FORWARD[_threads() > 1](times, w, float(theta))
        ctx.save_for_backward(t_in, weight)
        ctx.arrays, ctx.clip = (times, order, w, t_out, slope, count), clip
        return torch.from_numpy(t_out).to(dtype=t_in.dtype, device=t_in.device)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102 - see the class docstring
        t_in, weight = ctx.saved_tensors
        times, order, w, t_out, slope, count = ctx.arrays
        inverse = np.where(slope > 0, 1.0 / np.where(slope > 0, slope, 1.0), 0.0)
        if ctx.clip is not None:
            inverse = np.minimum(inverse, ctx.clip)
        g = np.where(count > 0, grad_out.detach().cpu().numpy().astype(np.float64), 0.0) * inverse
        threads = _threads()
        grad_in, grad_w = _BACKWARD[threads > 1](times, order, w, t_out, count, g, threads)
        return (
            torch.from_numpy(grad_in).to(dtype=t_in.dtype, device=t_in.device),
            torch.from_numpy(grad_w).to(dtype=weight.dtype, device=weight.device),
            None,
            None,
        )


def relpsp_row_spike_times(
    t_in: torch.Tensor, weight: torch.Tensor, theta: float, *, clip: float | None = None
) -> torch.Tensor:
    """Exact first ReL-PSP spike times, every row by compiled loops (CPU; ALGORITHMS.md 2.2).

    The same function as :func:`snnbp.stdbp.relpsp_spike_times` (``inf`` in = no input spike,
    ``inf`` out = never reaches ``theta``), differentiable in ``t_in`` and ``weight`` with the
    gradients of ALGORITHMS.md 2.3 (``clip`` caps ``1 / sum_C w``). Computed in float64 and
    returned in ``t_in``'s dtype; fastest for many rows of few inputs (convolutions).

    Shape:
        - t_in: ``[R, K]``; weight: ``[N_out, K]``
        - Output: ``[R, N_out]``
    """
    if not theta > 0:
        raise ValueError(f"theta must be positive (the potential starts at 0), got {theta}")
    return ReLPSPRowSpikeTimes.apply(t_in, weight, theta, clip)
