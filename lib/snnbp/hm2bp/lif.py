"""Discrete-time LIF layers of HM2-BP, exactly as the official code simulates them (ALGORITHMS.md 1.2, 1.9).

Per neuron and step ``t = 0 .. T-1`` (all states start at 0)::

    v  <- v  - v / tau_m                  # membrane leak
    ep <- ep - ep / tau_s                 # synaptic current decay
    (t == 0: no spike, next step)
    ep <- ep + I(t)                       # I(t) = sum_j w_ij s_j(t-1)   (one-step delay)
    v  <- v + ep / tau_s
    if r > 0: v <- 0; r <- r - 1          # absolute refractory period
    if v > vth - margin: spike; r <- t_ref; v <- 0

``margin`` is 1e-6 for fully connected and pooling layers and 0 for convolutional layers (the
official threshold tests). The output layer adds lateral inhibition ``w_lat * sum_{l != i} s_l(t-1)``.
Rasters are time-major: ``[T, B, N]`` (convolutional: ``[T, B, C, H, W]``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FC_THRESHOLD_MARGIN = 1e-6


@dataclass(frozen=True)
class NeuronParams:
    """The LIF neuron's constants, shared by the forward pass, the S-PSP and the backward pass
    (ALGORITHMS.md 1.2, 1.3), in time steps.

    Attributes:
        tau_m: membrane time constant.
        tau_s: synaptic time constant.
        t_ref: absolute refractory period.
    """

    tau_m: float = 64.0
    tau_s: float = 8.0
    t_ref: int = 2


OFFICIAL_NEURON = NeuronParams()
"""The official HM2-BP constants: ``tau_m = 64``, ``tau_s = 8``, ``t_ref = 2`` steps."""


def with_constants(
    neuron: NeuronParams, *, tau_m: float | None = None, tau_s: float | None = None, t_ref: int | None = None
) -> NeuronParams:
    """``neuron`` with each constant given by keyword in its place (None: ``neuron``'s own).

    The stable functions :func:`simulate_lif` and :func:`snnbp.hm2bp.spsp.spsp` take the constants
    both ways: as one :class:`NeuronParams` or as the keywords ``tau_m``, ``tau_s``, ``t_ref``.
    """
    given = {k: v for k, v in (("tau_m", tau_m), ("tau_s", tau_s), ("t_ref", t_ref)) if v is not None}
    return dataclasses.replace(neuron, **given) if given else neuron


SPARSE_DENSITY_LIMIT = 0.15


def sparse_rows_matmul(rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``rows @ table`` for a binary ``rows`` matrix, as an event-driven gather-sum when it is sparse.

    Each row is a bag of the indices where it is 1; ``embedding_bag(mode="sum")`` adds the matching
    rows of ``table``. Above :data:`SPARSE_DENSITY_LIMIT` the dense product is faster.

    Shape:
        - rows: ``[R, K]`` binary.
        - table: ``[K, M]``.
        - Output: ``[R, M]``.
    """
    if rows.numel() == 0 or rows.float().mean().item() > SPARSE_DENSITY_LIMIT:
        return rows.to(table.dtype) @ table
    row_index, column_index = torch.nonzero(rows, as_tuple=True)
    counts = torch.bincount(row_index, minlength=rows.shape[0])
    offsets = torch.zeros_like(counts)
    offsets[1:] = counts.cumsum(0)[:-1]
    return F.embedding_bag(column_index, table, offsets, mode="sum")


def integrate_and_fire(
    currents: torch.Tensor,
    *,
    vth: float,
    neuron: NeuronParams = OFFICIAL_NEURON,
    margin: float = FC_THRESHOLD_MARGIN,
    lateral: float = 0.0,
) -> torch.Tensor:
    """Run the LIF recursion over precomputed input currents.

    Args:
        currents: ``I(t)`` for every step; ``currents[0]`` is ignored (step 0 never integrates).
        vth: firing threshold.
        neuron: the time constants and refractory period (:class:`NeuronParams`).
        margin: the neuron fires when ``v > vth - margin``.
        lateral: weight of the inhibition from every other neuron's spike at ``t-1`` (output layer: -1).

    Shape:
        - currents: ``[T, B, *N]``.
        - Output: ``[T, B, *N]`` binary spikes, same dtype as ``currents``.
    """
    steps = currents.shape[0]
    threshold = vth - margin
    v = torch.zeros_like(currents[0])
    ep = torch.zeros_like(currents[0])
    refractory = torch.zeros(currents.shape[1:], dtype=torch.int32, device=currents.device)
    spikes = torch.zeros_like(currents)
    for t in range(1, steps):
        v.sub_(v / neuron.tau_m)  # leak (the official v -= v / tau_m, bit for bit)
        ep.sub_(ep / neuron.tau_s)  # synaptic decay
        if lateral != 0.0:  # input spikes of step t-1, plus the other neurons' spikes of step t-1
            previous = spikes[t - 1]
            ep.add_(currents[t] + lateral * (previous.sum(dim=-1, keepdim=True) - previous))
        else:
            ep.add_(currents[t])  # input spikes of step t-1
        v.add_(ep / neuron.tau_s)
        in_refractory = refractory > 0
        v.masked_fill_(in_refractory, 0.0)  # absolute refractory: clamp, count down
        refractory.sub_(in_refractory.to(torch.int32))
        fired = v > threshold
        spikes[t] = fired
        v.masked_fill_(fired, 0.0)  # reset to 0
        refractory.masked_fill_(fired, neuron.t_ref)
    return spikes


def fc_currents(spikes_in: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``I(t) = W s(t-1)`` for a fully connected layer (event-driven when the input is sparse).

    Shape:
        - spikes_in: ``[T, B, N_in]``; weight: ``[N_out, N_in]``; output ``[T, B, N_out]``.
    """
    steps, batch, n_in = spikes_in.shape
    currents = torch.zeros(steps, batch, weight.shape[0], dtype=weight.dtype, device=weight.device)
    flat = spikes_in[:-1].reshape((steps - 1) * batch, n_in)
    currents[1:] = sparse_rows_matmul(flat, weight.t().contiguous()).reshape(steps - 1, batch, -1)
    return currents


def simulate_lif(
    spikes_in: torch.Tensor,
    weight: torch.Tensor,
    *,
    vth: float,
    neuron: NeuronParams = OFFICIAL_NEURON,
    lateral: float = 0.0,
    tau_m: float | None = None,
    tau_s: float | None = None,
    t_ref: int | None = None,
) -> torch.Tensor:
    """A fully connected LIF layer (ALGORITHMS.md 1.2): threshold test ``v > vth - 1e-6``.

    Args:
        spikes_in: binary input raster.
        weight: synaptic weights ``w_ij`` (post ``i``, pre ``j``).
        vth: threshold; neuron: as in :func:`integrate_and_fire`.
        lateral: lateral inhibition weight of the output layer (0 for hidden layers).
        tau_m, tau_s, t_ref: the neuron's constants one by one, in place of ``neuron``'s
            (:func:`with_constants`; None: ``neuron``'s).

    Shape:
        - spikes_in: ``[T, B, N_in]``; weight: ``[N_out, N_in]``; output ``[T, B, N_out]``.
    """
    return integrate_and_fire(
        fc_currents(spikes_in, weight),
        vth=vth,
        neuron=with_constants(neuron, tau_m=tau_m, tau_s=tau_s, t_ref=t_ref),
        margin=FC_THRESHOLD_MARGIN,
        lateral=lateral,
    )


def conv_currents(spikes_in: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``I(t)``: valid, stride-1 cross-correlation of the spikes at ``t-1`` (ALGORITHMS.md 1.9).

    Shape:
        - spikes_in: ``[T, B, C_in, H, W]``; kernel: ``[C_out, C_in, k, k]``;
          output ``[T, B, C_out, H-k+1, W-k+1]``.
    """
    steps, batch = spikes_in.shape[:2]
    out = F.conv2d(spikes_in[:-1].reshape(-1, *spikes_in.shape[2:]).to(kernel.dtype), kernel)
    currents = torch.zeros(steps, batch, *out.shape[1:], dtype=kernel.dtype, device=kernel.device)
    currents[1:] = out.reshape(steps - 1, batch, *out.shape[1:])
    return currents


def simulate_lif_conv(
    spikes_in: torch.Tensor,
    kernel: torch.Tensor,
    *,
    vth: float,
    neuron: NeuronParams = OFFICIAL_NEURON,
) -> torch.Tensor:
    """A spiking convolutional layer: LIF per output position, threshold test ``v > vth``.

    Shape:
        - spikes_in: ``[T, B, C_in, H, W]``; kernel: ``[C_out, C_in, k, k]``;
          output ``[T, B, C_out, H-k+1, W-k+1]``.
    """
    return integrate_and_fire(conv_currents(spikes_in, kernel), vth=vth, neuron=neuron, margin=0.0)


def pool_currents(spikes_in: torch.Tensor, pool: int) -> torch.Tensor:
    """``I(t)``: number of spikes at ``t-1`` in each non-overlapping ``pool x pool`` window (unit weights).

    Shape:
        - spikes_in: ``[T, B, C, H, W]``; output ``[T, B, C, H // pool, W // pool]``.
    """
    steps, batch = spikes_in.shape[:2]
    summed = F.avg_pool2d(spikes_in[:-1].reshape(-1, *spikes_in.shape[2:]), pool) * (pool * pool)
    currents = torch.zeros(steps, batch, *summed.shape[1:], dtype=spikes_in.dtype, device=spikes_in.device)
    currents[1:] = summed.reshape(steps - 1, batch, *summed.shape[1:])
    return currents


def simulate_lif_pool(
    spikes_in: torch.Tensor, pool: int, *, vth: float, neuron: NeuronParams = OFFICIAL_NEURON
) -> torch.Tensor:
    """A spiking pooling layer: fixed unit weights over ``pool x pool`` windows, own threshold (``v > vth - 1e-6``).

    Shape:
        - spikes_in: ``[T, B, C, H, W]``; output ``[T, B, C, H // pool, W // pool]``.
    """
    return integrate_and_fire(pool_currents(spikes_in, pool), vth=vth, neuron=neuron, margin=FC_THRESHOLD_MARGIN)
