"""Worked examples of the S-PSP and of HM2-BP's macro/micro relations (ALGORITHMS.md 1.3-1.7).

Small, pure helpers for ``notebooks/02_hm2bp_spsp.ipynb``; the numbers come from
:func:`snnbp.hm2bp.lif.simulate_lif` and :func:`snnbp.hm2bp.spsp.spsp`, this module only takes
them apart so that they can be drawn:

* one pair (1.3): the term ``eps(s_f, u_fg)`` that every pre spike ``g`` adds at every post firing
  ``f``; their sum over ``f`` and ``g`` is ``e_{i|j}``;
* one layer (1.4): counts ``o_i`` against the total PSP ``a_i = sum_j w_ij e_{i|j}`` (``o ~ a / vth``);
* the decoupled micro model (1.6): ``e_{i|j} ~ alpha_ij o_j`` (``alpha`` estimated by ``e / o_j``);
* a weight sweep (1.4, 1.7): the count of one post neuron as a staircase in one weight, against
  ``a_i / vth`` and the first-order change ``delta o ~ delta w_ij e_{i|j} (1 + sigma_i) / vth``.

Times are integer steps of 1 ms; rasters are time-major, ``[T, B, N]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch

from snnbp.encoding.rate import bernoulli_rate_code
from snnbp.hm2bp.backprop import effect_ratio, side_effect
from snnbp.hm2bp.lif import OFFICIAL_NEURON, NeuronParams, simulate_lif
from snnbp.hm2bp.spsp import LOOKBACK_TAU_M, psp_kernel, spsp
from snnbp.seeding import torch_generator


def firing_steps(train: torch.Tensor) -> torch.Tensor:
    """Steps at which a binary spike train fires, ascending.

    Shape:
        - train: ``[T]`` binary; output ``[K]`` int64.
    """
    return torch.nonzero(train > 0).flatten()


def psp_contributions(
    pre_times: torch.Tensor,
    post_times: torch.Tensor,
    query_times: torch.Tensor,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
) -> torch.Tensor:
    """``eps(s(t), u_g(t))``: what pre spike ``g`` contributes to the post potential at step ``t`` (ALGORITHMS.md 1.3).

    With the reset end ``hat_tau(t)`` of the last post spike strictly before ``t``
    (``tau_f + t_ref``; 1 before the first)::

        s(t)   = t - hat_tau(t)                 # time integrated since the last reset
        u_g(t) = t - (t_g + d)                  # age of the pre spike, shifted by d = t_ref
        counted iff  max(1, t - ceil(lookback tau_m)) <= t_g,  t_g < t,  t_g + d <= t

    Evaluated at the post firing times ``t = tau_f`` these are the terms of the S-PSP:
    ``e_{i|j} = sum_f sum_g psp_contributions(...)[f, g]`` (without the special cases
    ``o_j = 0``, ``o_i = 0`` of :func:`snnbp.hm2bp.spsp.spsp`).

    Args:
        pre_times: pre spike steps ``t_g``, ascending.
        post_times: post spike steps ``tau_f``, ascending.
        query_times: steps ``t`` to evaluate at.
        neuron: the layer's LIF constants (:class:`snnbp.hm2bp.lif.NeuronParams`).
        pre_shift: shift ``d`` of the pre times (None: ``t_ref``, the official code).
        lookback: look-back window in units of ``tau_m`` (official 4).

    Shape:
        - pre_times: ``[G]``; post_times: ``[F]``; query_times: ``[Q]`` (integers).
        - Output: ``[Q, G]`` float64, 0 where a pre spike is not counted.
    """
    shift = neuron.t_ref if pre_shift is None else pre_shift
    window = math.ceil(lookback * neuron.tau_m)
    t = query_times.to(torch.float64)[:, None]
    tg = pre_times.to(torch.float64)[None, :]
    before = torch.searchsorted(post_times.contiguous(), query_times.contiguous())  # post spikes strictly before t
    last = post_times[(before - 1).clamp(min=0)].to(torch.float64) if post_times.numel() else torch.zeros_like(t[:, 0])
    reset_end = torch.where(before > 0, last + neuron.t_ref, torch.ones_like(t[:, 0]))[:, None]
    s, u = (t - reset_end).expand(-1, tg.shape[1]), t - (tg + shift)
    counted = (tg >= torch.clamp(t - window, min=1.0)) & (tg + max(shift, 1) <= t)
    return torch.where(counted, psp_kernel(s, u, neuron.tau_m, neuron.tau_s), torch.zeros_like(u))


def firing_terms(
    pre_train: torch.Tensor,
    post_train: torch.Tensor,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
) -> torch.Tensor:
    """The S-PSP terms of one pair: row ``f`` holds ``eps(s_f, u_fg)`` of every pre spike ``g`` at firing ``tau_f``.

    ``terms.sum() == e_{i|j}`` of :func:`snnbp.hm2bp.spsp.spsp` whenever both neurons fire
    (ALGORITHMS.md 1.3); the arguments are those of :func:`psp_contributions`.

    Shape:
        - pre_train, post_train: ``[T]`` binary.
        - Output: ``[o_i, o_j]`` float64.
    """
    post_times = firing_steps(post_train)
    return psp_contributions(
        firing_steps(pre_train),
        post_times,
        post_times,
        neuron=neuron,
        pre_shift=pre_shift,
        lookback=lookback,
    )


def membrane_contributions(
    pre_train: torch.Tensor,
    post_train: torch.Tensor,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
) -> torch.Tensor:
    """Every pre spike's share of the post potential over time, as the S-PSP kernel models it (ALGORITHMS.md 1.3).

    :func:`psp_contributions` at every step ``t = 0 .. T-1``, and 0 inside the refractory window
    ``tau_f < t < tau_f + t_ref`` (where ``s(t) < 0``; the membrane is clamped at 0 there).
    ``w_ij * out.sum(1)`` is the kernel's model of the potential of a post neuron driven by this
    pre neuron alone; at each firing it is ``w_ij`` times the row sum of :func:`firing_terms`.

    Shape:
        - pre_train, post_train: ``[T]`` binary.
        - Output: ``[T, o_j]`` float64.
    """
    steps = post_train.shape[0]
    post_times = firing_steps(post_train)
    query = torch.arange(steps, device=post_train.device)
    out = psp_contributions(
        firing_steps(pre_train),
        post_times,
        query,
        neuron=neuron,
        pre_shift=pre_shift,
        lookback=lookback,
    )
    before = torch.searchsorted(post_times.contiguous(), query.contiguous())
    last = post_times[(before - 1).clamp(min=0)] if post_times.numel() else torch.zeros_like(query)
    refractory = (before > 0) & (query < last + neuron.t_ref)
    return out.masked_fill(refractory[:, None], 0.0)


def firing_table(
    pre_train: torch.Tensor,
    post_train: torch.Tensor,
    weight: float,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
) -> pd.DataFrame:
    """One row per post firing ``f = 1 .. o_i`` of a pair: what the S-PSP adds up there (ALGORITHMS.md 1.3).

    Columns: ``tau_f`` (ms), ``s_f = tau_f - hat_tau_{f-1}`` (ms integrated since the previous
    reset), ``pre_spikes`` (pre spikes with a non-zero term), ``term`` (``sum_g eps(s_f, u_fg)``; the column sums
    to ``e_{i|j}``) and ``w_term`` (``w_ij`` times it: the modelled potential at the firing, about
    the threshold).
    """
    post_times = firing_steps(post_train)
    terms = firing_terms(pre_train, post_train, neuron=neuron, pre_shift=pre_shift, lookback=lookback)
    reset_end = torch.cat([torch.ones(1, dtype=post_times.dtype), post_times[:-1] + neuron.t_ref])
    return pd.DataFrame(
        {
            "tau_f": post_times.tolist(),
            "s_f": (post_times - reset_end).tolist(),
            "pre_spikes": (terms > 0).sum(dim=1).tolist(),
            "term": terms.sum(dim=1).tolist(),
            "w_term": (weight * terms.sum(dim=1)).tolist(),
        },
        index=pd.RangeIndex(1, len(post_times) + 1, name="f"),
    )


def random_layer(
    seed: int,
    *,
    steps: int,
    batch: int,
    n_in: int,
    n_out: int,
    weight_low: float,
    weight_high: float,
    rate_scale: float = 5.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rate-coded inputs and uniform random weights of one fully connected layer (float64).

    Inputs: every pre neuron gets a random intensity ``p ~ U{0..255}`` and fires with probability
    ``p / (rate_scale 255)`` per step (the HM2-BP rate code, ALGORITHMS.md 1.10); weights
    ``w_ij ~ U(weight_low, weight_high)`` (the official init is ``U(-1, 1)``, 1.7). Generators
    are derived from ``seed`` by name.

    Shape:
        - Output: ``(pre [T, B, N_in] float64 binary, weight [N_out, N_in] float64)``.
    """
    intensities = torch.randint(0, 256, (batch, n_in), generator=torch_generator(seed, "explain/intensity"))
    pre = bernoulli_rate_code(intensities, steps, generator=torch_generator(seed, "explain/spikes"), scale=rate_scale)
    weight = torch.empty(n_out, n_in, dtype=torch.float64)
    weight.uniform_(weight_low, weight_high, generator=torch_generator(seed, "explain/weight"))
    return pre.to(torch.float64), weight


@dataclass(frozen=True)
class LayerResponse:
    """Forward spikes and S-PSPs of one fully connected layer.

    Attributes:
        post: post raster ``[T, B, N_out]``.
        counts: post counts ``o_i`` ``[B, N_out]``.
        pre_counts: pre counts ``o_j`` ``[B, N_in]``.
        e: S-PSP ``e_{i|j}`` ``[B, N_out, N_in]``.
        total_psp: ``a_i = sum_j w_ij e_{i|j}`` ``[B, N_out]`` (ALGORITHMS.md 1.4).
    """

    post: torch.Tensor
    counts: torch.Tensor
    pre_counts: torch.Tensor
    e: torch.Tensor
    total_psp: torch.Tensor


def layer_response(
    pre: torch.Tensor,
    weight: torch.Tensor,
    *,
    vth: float,
    neuron: NeuronParams = OFFICIAL_NEURON,
    lookback: float = LOOKBACK_TAU_M,
) -> LayerResponse:
    """Simulate a layer (:func:`simulate_lif`), its S-PSPs (:func:`spsp`) and total PSPs ``a_i = sum_j w_ij e_ij``.

    ``lookback``: the S-PSP look-back window in units of ``tau_m`` (official 4).

    Shape:
        - pre: ``[T, B, N_in]``; weight: ``[N_out, N_in]``; see :class:`LayerResponse`.
    """
    post = simulate_lif(pre, weight, vth=vth, neuron=neuron)
    e = spsp(pre, post, neuron=neuron, lookback=lookback)
    return LayerResponse(
        post=post, counts=post.sum(dim=0), pre_counts=pre.sum(dim=0), e=e, total_psp=(e * weight).sum(dim=-1)
    )


def prediction_agreement(observed: torch.Tensor, predicted: torch.Tensor) -> dict[str, float]:
    """How well ``predicted`` matches ``observed`` (e.g. ``o_i`` against ``a_i / vth``, ALGORITHMS.md 1.4).

    Returns the number of points, the Pearson correlation, the mean absolute deviation
    ``mean |predicted - observed|``, the mean deviation (bias) ``mean(predicted - observed)`` and
    the least-squares slope through the origin ``sum(observed predicted) / sum(observed^2)``.

    Shape:
        - observed, predicted: any shape, equal (flattened).
    """
    x, y = observed.flatten().to(torch.float64), predicted.flatten().to(torch.float64)
    return {
        "points": float(x.numel()),
        "correlation": float(torch.corrcoef(torch.stack([x, y]))[0, 1]),
        "mean_abs_deviation": float((y - x).abs().mean()),
        "mean_deviation": float((y - x).mean()),
        "slope": float((x * y).sum() / (x * x).sum()),
    }


def effect_ratio_by_post(
    e: torch.Tensor, post_counts: torch.Tensor, pre_counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation over ``j`` of the effect ratio ``rho_ij = e_{i|j} / o_j`` (ALGORITHMS.md 1.6).

    Only pairs where both neurons fired count (elsewhere :func:`snnbp.hm2bp.backprop.effect_ratio`
    is the fallback 1); a post neuron with no such pair gets ``nan``.

    Shape:
        - e: ``[B, N_out, N_in]``; post_counts: ``[B, N_out]``; pre_counts: ``[B, N_in]``.
        - Output: ``(mean [B, N_out], std [B, N_out])`` (population standard deviation).
    """
    pre = pre_counts[:, None, :]
    both = ((post_counts[..., None] > 0) & (pre > 0)).to(e.dtype)
    rho = effect_ratio(e, post_counts, pre) * both
    pairs = both.sum(dim=-1)
    mean = rho.sum(dim=-1) / pairs
    spread = (((rho - mean[..., None]) * both) ** 2).sum(dim=-1) / pairs
    return mean, spread.sqrt()


@dataclass(frozen=True)
class CountSweep:
    """The response of one post neuron while one of its weights takes a range of values.

    Attributes:
        values: the swept weight ``w_ij`` ``[K]``.
        counts: post count ``o_i(w_ij)`` ``[K]``.
        total_psp: ``a_i(w_ij) = sum_l w_il e_{i|l}``, every ``e`` recomputed from the new spikes ``[K]``.
        e: ``e_{i|j}(w_ij)`` of the swept synapse ``[K]``.
        sigma: side effect ``sigma_i(w_ij)`` (ALGORITHMS.md 1.7) ``[K]``.
    """

    values: torch.Tensor
    counts: torch.Tensor
    total_psp: torch.Tensor
    e: torch.Tensor
    sigma: torch.Tensor


def weight_sweep(
    pre: torch.Tensor,
    weight_row: torch.Tensor,
    pre_index: int,
    values: torch.Tensor,
    *,
    vth: float,
    neuron: NeuronParams = OFFICIAL_NEURON,
    lookback: float = LOOKBACK_TAU_M,
) -> CountSweep:
    """One post neuron with ``w_ij`` set to each of ``values`` (the other weights fixed), in one layer call.

    Each value is a separate post neuron of a single :func:`layer_response` (same input sample),
    so that the sweep costs one simulation.

    Shape:
        - pre: ``[T, 1, N_in]``; weight_row: ``[N_in]``; values: ``[K]``; see :class:`CountSweep`.
    """
    weight = weight_row.expand(values.shape[0], -1).clone()
    weight[:, pre_index] = values.to(weight.dtype)
    response = layer_response(pre, weight, vth=vth, neuron=neuron, lookback=lookback)
    sigma = side_effect(response.e, weight, response.counts, vth)
    return CountSweep(
        values=values,
        counts=response.counts[0],
        total_psp=response.total_psp[0],
        e=response.e[0, :, pre_index],
        sigma=sigma[0],
    )


def linear_count_change(sweep: CountSweep, base: int, *, vth: float, with_side_effect: bool = True) -> torch.Tensor:
    """First-order HM2-BP prediction of the count along a sweep, from the point ``base`` (ALGORITHMS.md 1.4, 1.7).

    ``o_i(w) ~ o_i(w0) + (w - w0) e_{i|j}(w0) (1 + sigma_i(w0)) / vth``: the derivative that the
    weight gradient ``delta_i e_{i|j} (1 + sigma_i)`` uses (``with_side_effect=False``: without
    ``1 + sigma``, the plain macro derivative ``e_{i|j} / vth``).

    Shape:
        - Output: ``[K]`` like ``sweep.values``.
    """
    gain = sweep.e[base] * ((1.0 + sweep.sigma[base]) if with_side_effect else 1.0) / vth
    return sweep.counts[base] + (sweep.values - sweep.values[base]) * gain


def secant_gain(sweep: CountSweep, base: int, half_width: int) -> float:
    """Spikes gained per unit weight around ``base``: ``(o(w_{b+h}) - o(w_{b-h})) / (w_{b+h} - w_{b-h})``.

    The measured counterpart of the first-order gain ``e_{i|j} (1 + sigma_i) / vth`` of
    :func:`linear_count_change` (indices clipped to the sweep).
    """
    low, high = max(0, base - half_width), min(sweep.values.shape[0] - 1, base + half_width)
    return float((sweep.counts[high] - sweep.counts[low]) / (sweep.values[high] - sweep.values[low]))
