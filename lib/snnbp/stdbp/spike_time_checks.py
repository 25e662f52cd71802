"""Checks that make the exact spike-time neurons visible (ALGORITHMS.md 2.2, 2.3).

Pure functions for the explanatory notebook ``03_relpsp_stdbp``: membrane trajectories from the
kernel definition, a clock-driven (time-grid) simulation of the ReL-PSP neuron to compare with
the exact event-driven solution, and finite-difference / autograd Jacobians of the spike times
with respect to weights and input times. All times are in ms.

A *neuron function* maps ``(t_in [B, N_in], weight [N_out, N_in])`` to first-spike times
``[B, N_out]`` (``inf`` = never), e.g. ``functools.partial(relpsp_spike_times, theta=1.0)`` or
:func:`snnbp.stdbp.layers.neuron_function`. Two facts of single-spike layers keep the Jacobians
cheap: ``t_bj`` depends on row ``w_j`` only (so one column ``w_:i`` can be perturbed for all
neurons at once), and samples are independent (so ``t_:i`` can be perturbed for all samples at
once).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from snnbp.stdbp.layers import NeuronFunction

PspKernel = Callable[[torch.Tensor], torch.Tensor]


def relpsp_kernel(x: torch.Tensor) -> torch.Tensor:
    """The rectified-linear PSP kernel ``K(x) = max(0, x)`` (ALGORITHMS.md 2.2).

    Shape:
        - x: any; Output: same.
    """
    return x.clamp(min=0.0)


def membrane_potential(
    t: torch.Tensor, t_in: torch.Tensor, weight: torch.Tensor, kernel: PspKernel = relpsp_kernel
) -> torch.Tensor:
    """``V_j(t) = sum_i w_ji K(t - t_i)`` evaluated at the times ``t`` (ALGORITHMS.md 2.2).

    Straight from the definition (no threshold, no reset: the potential a single-spike neuron
    would follow if it did not stop at its spike). Silent inputs (``t_i = inf``) contribute 0, so
    ``kernel`` must map ``-inf`` to 0 (:func:`relpsp_kernel` and
    :func:`snnbp.stdbp.alpha.alpha_kernel` do).

    Shape:
        - t: ``[T]``; t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``
        - Output: ``[B, N_out, T]``
    """
    response = kernel(t[None, None, :] - t_in[:, :, None])  # [B, N_in, T]
    return torch.einsum("oi,bit->bot", weight, response)


def relpsp_grid_spike_times(
    t_in: torch.Tensor, weight: torch.Tensor, theta: float, dt: float, t_max: float, *, chunk_steps: int = 2048
) -> torch.Tensor:
    """First-spike times of ReL-PSP neurons from a clock-driven simulation with step ``dt``.

    The ReL-PSP neuron is a perfect integrator of a non-decaying synaptic current
    (ALGORITHMS.md 2.2): ``dV/dt = I``, ``I`` jumps by ``w_ji`` when input ``i`` spikes. On the
    grid ``t_n = n dt`` an input spike is seen at the first step at or after it,
    ``k_i = ceil(t_i / dt)``, and

        I_n = I_{n-1} + sum_{i: k_i = n} w_ji,      V_{n+1} = V_n + dt I_n,      V_0 = 0,

    (forward Euler, exact for the grid-aligned inputs); the neuron spikes at the first ``t_n``
    with ``V_n >= theta``. Both the input rounding and the threshold test delay the spike by at
    most about ``dt`` (times a factor ``sum |w| / sum w`` for mixed-sign weights), so the error
    against the exact time is ``O(dt)``. Steps are processed ``chunk_steps`` at a time
    (vectorised cumulative sums); memory ``O(B * chunk_steps * N_out)``.

    Args:
        t_in: input spike times in ms, ``>= 0`` (``inf`` = no spike).
        weight: synaptic weights.
        theta: firing threshold (> 0).
        dt: time step in ms.
        t_max: end of the simulation in ms; a neuron that has not fired by then gets ``inf``.
        chunk_steps: steps per vectorised block (memory / speed only).

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``
        - Output: ``[B, N_out]`` (multiples of ``dt`` or ``inf``)
    """
    if not (theta > 0 and dt > 0 and t_max > 0):
        raise ValueError(f"theta, dt and t_max must be positive, got {theta}, {dt}, {t_max}")
    if bool((t_in < 0).any()):
        raise ValueError("input spike times must be >= 0 ms (the grid starts at 0)")
    batch, n_out = t_in.shape[0], weight.shape[0]
    options = {"dtype": weight.dtype, "device": weight.device}
    n_steps = int(math.ceil(t_max / dt)) + 1
    onset = torch.ceil(t_in / dt)  # grid step at which each input is seen (inf: never)
    onset = torch.where(onset < n_steps, onset, torch.full_like(onset, n_steps)).long()
    weight_cols = weight.t()  # [N_in, N_out]
    current = torch.zeros(batch, n_out, **options)
    potential = torch.zeros(batch, n_out, **options)
    t_out = torch.full((batch, n_out), math.inf, **options)
    for start in range(0, n_steps, chunk_steps):
        stop = min(n_steps, start + chunk_steps)
        jumps = torch.zeros(batch, stop - start, n_out, **options)
        b, i = torch.nonzero((onset >= start) & (onset < stop), as_tuple=True)
        jumps.index_put_((b, onset[b, i] - start), weight_cols[i], accumulate=True)
        i_steps = current[:, None, :] + jumps.cumsum(dim=1)  # I_n for n in [start, stop)
        increments = dt * i_steps
        v_steps = potential[:, None, :] + increments.cumsum(dim=1) - increments  # V_n
        reached = (v_steps >= theta) & torch.isinf(t_out)[:, None, :]
        first = reached.to(torch.uint8).argmax(dim=1)
        newly = reached.any(dim=1)
        t_out = torch.where(newly, (first + start).to(weight.dtype) * dt, t_out)
        current = i_steps[:, -1]
        potential = v_steps[:, -1] + increments[:, -1]
        if bool(torch.isfinite(t_out).all()):
            break
    return t_out


class GridErrorBounds(NamedTuple):
    """First-order bounds on the time-grid error of each neuron, in units of ``dt``.

    With ``P`` and ``N`` the summed magnitudes of the positive and negative weights of the
    causal set ``C_j = {i : t_i < t_j}`` and ``A = (P + N) / (P - N) = sum_C |w| / sum_C w``:
    rounding every input up by ``delta_i in [0, dt)`` moves the crossing by
    ``sum_C w_i delta_i / sum_C w``, in ``[-N dt / (P - N), P dt / (P - N)]``, and detecting it on
    the grid adds ``[0, dt)``, so (to first order in ``dt``)

        -(A - 1) / 2  <=  (t_grid - t_exact) / dt  <=  (A + 3) / 2.

    Attributes:
        amplification: ``[B, N_out]`` ``A`` (``inf`` for silent neurons; 1 if all weights are positive).
        lower: ``[B, N_out]`` ``-(A - 1) / 2``.
        upper: ``[B, N_out]`` ``(A + 3) / 2``.
    """

    amplification: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor


def grid_error_bounds(t_in: torch.Tensor, weight: torch.Tensor, t_exact: torch.Tensor) -> GridErrorBounds:
    """The first-order error bounds of :func:`relpsp_grid_spike_times` (:class:`GridErrorBounds`).

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``; t_exact: ``[B, N_out]``
        - Output: :class:`GridErrorBounds` of ``[B, N_out]`` tensors.
    """
    causal = (t_in[:, None, :] < t_exact[:, :, None]) & torch.isfinite(t_exact)[:, :, None]
    net = (weight[None] * causal).sum(dim=2)
    magnitude = (weight.abs()[None] * causal).sum(dim=2)
    amplification = torch.where(
        net > 0, magnitude / torch.where(net > 0, net, torch.ones_like(net)), torch.full_like(net, math.inf)
    )
    return GridErrorBounds(amplification, -(amplification - 1) / 2, (amplification + 3) / 2)


class GridErrors(NamedTuple):
    """Clock-driven simulation against the exact spike times, one entry per time step.

    Attributes:
        dt: the time steps (ms).
        max_error: ``max |t_grid - t_exact|`` over the neurons that fire in both (ms).
        mean_error: mean signed ``t_grid - t_exact`` over the same neurons (ms; > 0: late).
        within_bounds: how many of them lie inside :class:`GridErrorBounds`.
        compared: how many neurons fire in both.
        mismatched: neurons that fire in one solution but not the other (within ``t_max``).
    """

    dt: list[float]
    max_error: list[float]
    mean_error: list[float]
    within_bounds: list[int]
    compared: list[int]
    mismatched: list[int]


def grid_error_sweep(
    t_in: torch.Tensor, weight: torch.Tensor, theta: float, t_exact: torch.Tensor, dts: Sequence[float], t_max: float
) -> GridErrors:
    """Error of :func:`relpsp_grid_spike_times` against ``t_exact`` for each step in ``dts``.

    Exact spikes later than ``t_max`` count as silent (the grid cannot see them).

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``; t_exact: ``[B, N_out]``
        - Output: :class:`GridErrors` of ``len(dts)`` entries.
    """
    exact = torch.where(t_exact <= t_max, t_exact, torch.full_like(t_exact, math.inf))
    bounds = grid_error_bounds(t_in, weight, exact)
    errors = GridErrors([], [], [], [], [], [])
    for dt in dts:
        grid = relpsp_grid_spike_times(t_in, weight, theta, dt, t_max)
        both = torch.isfinite(grid) & torch.isfinite(exact)
        difference = (grid - exact)[both]
        in_steps = difference / dt
        slack = 1e-9  # rounding of the grid times
        inside = (in_steps >= bounds.lower[both] - slack) & (in_steps <= bounds.upper[both] + slack)
        errors.dt.append(float(dt))
        errors.max_error.append(float(difference.abs().max()) if difference.numel() else math.nan)
        errors.mean_error.append(float(difference.mean()) if difference.numel() else math.nan)
        errors.within_bounds.append(int(inside.sum()))
        errors.compared.append(int(both.sum()))
        errors.mismatched.append(int((torch.isfinite(grid) != torch.isfinite(exact)).sum()))
    return errors


def convergence_order(dts: Sequence[float], errors: Sequence[float]) -> float:
    """Least-squares slope of ``log(error)`` against ``log(dt)`` (1 for an ``O(dt)`` method).

    Shape:
        - dts, errors: ``[S]`` positive; Output: a float.
    """
    x = torch.log(torch.tensor(dts, dtype=torch.float64))
    y = torch.log(torch.tensor(errors, dtype=torch.float64))
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x * x).sum())


def _central_difference(neuron: NeuronFunction, t_plus, w_plus, t_minus, w_minus, eps: float) -> torch.Tensor:
    """``(t(+eps) - t(-eps)) / (2 eps)``; 0 where the neuron is silent on both sides.

    Shape:
        - Output: ``[B, N_out]``
    """
    plus, minus = neuron(t_plus, w_plus), neuron(t_minus, w_minus)
    silent = torch.isinf(plus) & torch.isinf(minus)
    return torch.where(silent, torch.zeros_like(plus), (plus - minus) / (2 * eps))


class SpikeTimeJacobians(NamedTuple):
    """Derivatives of every first-spike time of a layer.

    Attributes:
        weight: ``[B, N_out, N_in]`` ``dt_bj / dw_ji``.
        t_in: ``[B, N_out, N_in]`` ``dt_bj / dt_bi``.
    """

    weight: torch.Tensor
    t_in: torch.Tensor


@torch.no_grad()
def central_difference_jacobians(
    neuron: NeuronFunction, t_in: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6
) -> SpikeTimeJacobians:
    """Central finite differences of the spike times in every weight and every input time.

    ``dt_bj/dw_ji ~ (t_bj(w_ji + eps) - t_bj(w_ji - eps)) / (2 eps)``, and the same for
    ``t_bi``. Column ``i`` of the weights (all neurons) and of the input times (all samples) is
    perturbed at once (module docstring): ``4 N_in`` calls of ``neuron``. Silent neurons (``inf``
    on both sides) and silent inputs get 0; a perturbation that switches a neuron on or off
    leaves a non-finite entry. Use float64 and an ``eps`` far below the gaps between input
    times, or a perturbation may move the crossing into another segment (a kink).

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``
        - Output: :class:`SpikeTimeJacobians` of two ``[B, N_out, N_in]`` tensors.
    """
    n_in = weight.shape[1]
    d_weight = torch.zeros(t_in.shape[0], weight.shape[0], n_in, dtype=weight.dtype, device=weight.device)
    d_times = torch.zeros_like(d_weight)
    for i in range(n_in):
        w_plus, w_minus = weight.clone(), weight.clone()
        w_plus[:, i] += eps
        w_minus[:, i] -= eps
        d_weight[:, :, i] = _central_difference(neuron, t_in, w_plus, t_in, w_minus, eps)
        t_plus, t_minus = t_in.clone(), t_in.clone()
        t_plus[:, i] += eps
        t_minus[:, i] -= eps
        d_times[:, :, i] = _central_difference(neuron, t_plus, weight, t_minus, weight, eps)
    return SpikeTimeJacobians(d_weight, d_times)


def autograd_jacobians(neuron: NeuronFunction, t_in: torch.Tensor, weight: torch.Tensor) -> SpikeTimeJacobians:
    """The same Jacobians from the neuron's backward (STDBP, ALGORITHMS.md 2.3).

    One backward pass per sample gives ``dt_bj/dw_ji`` (``t_bj`` depends on ``w_j`` only), one
    per neuron gives ``dt_bj/dt_bi`` (samples are independent): ``B + N_out`` passes.

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[N_out, N_in]``
        - Output: :class:`SpikeTimeJacobians` of two ``[B, N_out, N_in]`` tensors.
    """
    t = t_in.detach().clone().requires_grad_(True)
    w = weight.detach().clone().requires_grad_(True)
    out = neuron(t, w)
    batch, n_out = out.shape
    d_weight = torch.zeros(batch, n_out, w.shape[1], dtype=w.dtype, device=w.device)
    d_times = torch.zeros_like(d_weight)
    for b in range(batch):
        upstream = torch.zeros_like(out)
        upstream[b] = 1.0
        (d_weight[b],) = torch.autograd.grad(out, w, upstream, retain_graph=True)
    for j in range(n_out):
        upstream = torch.zeros_like(out)
        upstream[:, j] = 1.0
        (d_times[:, j],) = torch.autograd.grad(out, t, upstream, retain_graph=True)
    return SpikeTimeJacobians(d_weight, d_times)


def max_relative_error(estimate: torch.Tensor, reference: torch.Tensor, floor: float = 1e-3) -> float:
    """``max |estimate - reference| / max(|reference|, floor * max |reference|)``.

    Relative per entry, with entries much smaller than the largest one measured against
    ``floor`` times the largest (tiny derivatives carry only the finite-difference noise).
    Non-finite entries make the result non-finite.

    Shape:
        - estimate, reference: the same shape; Output: a float.
    """
    scale = reference.abs().max().clamp(min=torch.finfo(reference.dtype).tiny)
    denominator = torch.maximum(reference.abs(), floor * scale)
    return float(((estimate - reference).abs() / denominator).max())
