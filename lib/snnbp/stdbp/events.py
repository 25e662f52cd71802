"""Sorted input events shared by the exact spike-time layers (ReL-PSP and alpha-PSP).

A single-spike neuron's first crossing depends on its inputs in time order only, so both
kernels sort every sample's spiking inputs once, visit them in that order (samples whose inputs
are exhausted leave the loop) and, in the backward, retire each neuron after its causal prefix.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class SortedInputs(NamedTuple):
    """Each sample's spiking inputs in time order, samples ordered by their number of spikes.

    Attributes:
        times: ``[B, K]`` ascending spike times of sample ``rows[b]``; ``inf`` after its last spike.
        order: ``[B, K]`` input index of each sorted position; ``N_in`` (a zero weight row) after
            the last spike.
        rows: ``[B]`` the original sample index of each row (descending spike count).
        alive: ``alive[k]`` = number of rows with more than ``k`` spikes (a prefix of the rows).
    """

    times: torch.Tensor
    order: torch.Tensor
    rows: torch.Tensor
    alive: list[int]


def sort_spike_times(t_in: torch.Tensor) -> SortedInputs:
    """Sort every sample's input times, drop silent inputs, order samples by spike count.

    Shape:
        - t_in: ``[B, N_in]`` (``inf`` = silent)
        - Output: :class:`SortedInputs` with ``K`` = the largest spike count of a sample.
    """
    n_spiking = torch.isfinite(t_in).sum(dim=1)
    rows = torch.argsort(n_spiking, descending=True, stable=True)
    counts = n_spiking[rows]
    longest = int(counts[0].item()) if counts.numel() else 0
    times, order = torch.sort(t_in[rows], dim=1, stable=True)
    times, order = times[:, :longest].contiguous(), order[:, :longest]
    order = torch.where(torch.isfinite(times), order, torch.full_like(order, t_in.shape[1])).contiguous()
    positions = torch.arange(longest, device=t_in.device)
    alive = (counts[None, :] > positions[:, None]).sum(dim=1).tolist()
    return SortedInputs(times, order, rows, alive)


def padded_weight_columns(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` transposed with one zero row appended (the row that silent positions gather).

    Shape:
        - weight: ``[N_out, N_in]``
        - Output: ``[N_in + 1, N_out]``
    """
    zero = torch.zeros(1, weight.shape[0], dtype=weight.dtype, device=weight.device)
    return torch.cat([weight.t(), zero], dim=0).contiguous()


def inverse_slope(slope: torch.Tensor, clip: float | None) -> torch.Tensor:
    """``1 / slope`` where the slope is positive, else 0; optionally capped at ``clip``.

    The slope is ``dV/dt`` at the crossing (``sum_C w`` for ReL-PSP); ``1 / slope`` multiplies
    every spike-time gradient of the neuron. ``clip`` bounds it (the remedy of the ReL-PSP
    group's relatives, ALGORITHMS.md 2.5); ``None`` keeps the exact value.

    Shape:
        - slope: any; Output: same.
    """
    positive = slope > 0
    inverse = torch.where(positive, 1.0 / torch.where(positive, slope, torch.ones_like(slope)), torch.zeros_like(slope))
    return inverse if clip is None else inverse.clamp(max=clip)


def unsort_rows(values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Put rows given in ``rows`` order back into sample order.

    Shape:
        - values: ``[B, ...]``; rows: ``[B]``; Output: ``[B, ...]``.
    """
    return torch.empty_like(values).index_copy_(0, rows, values)


def retirement_schedule(count: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Flat indices of the fired neurons grouped by causal prefix length.

    ``retiring[bounds[k]:bounds[k + 1]]`` are the neurons whose causal prefix ends at sorted
    position ``k`` (``count == k + 1``); ``len(bounds) - 1`` is the longest prefix.

    Shape:
        - count: ``[B, N_out]``; Output: ``[n_fired]`` and a list of ``longest + 1`` ints.
    """
    flat = count.reshape(-1)
    fired = torch.nonzero(flat > 0).squeeze(1)
    lengths, by_length = torch.sort(flat[fired], stable=True)
    longest = int(lengths[-1].item()) if lengths.numel() else 0
    edges = torch.arange(1, longest + 2, device=count.device)
    return fired[by_length], torch.searchsorted(lengths, edges).tolist()
