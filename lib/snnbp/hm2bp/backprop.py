"""HM2-BP error propagation, loss and weight gradients (ALGORITHMS.md 1.4-1.7), batched over samples.

Notation: a layer maps pre neurons ``j`` to post neurons ``i`` with weights ``w_ij``, threshold
``vth``, S-PSP ``e[b, i, j]`` (:mod:`snnbp.hm2bp.spsp`) and firing counts ``o``. Errors
``delta`` are taken with respect to the total PSP ``a_i = sum_j w_ij e_ij``; the macro relation
``o_i ~ a_i / vth`` (1.4) is why a trainable layer divides the error it receives by its threshold.

    output:  delta_i = beta_n d_i / vth_L,  d_i = (o_i - y_i) 1[|o_i - y_i| > margin]           (1.5)
    hidden:  delta_j = (1 / vth_{k-1}) sum_i delta_i w_ij rho_ij                               (1.6)
             rho_ij = e_ij / o_j if o_i > 0 and o_j > 0 else 1     (decoupled S-PSP ratio)
    weights: dE/dw_ij = mean_b delta_i e_ij (1 + sigma_i) lambda_i  +  R(w_ij)                  (1.7)
             sigma_i = (1 / vth) sum_l w_il r_il,  r_il = e_il / o_i if o_i > 0 else 0.5
             lambda_i: output lateral-inhibition factor (1 for hidden layers)
             R(w_ij) = lambda_reg beta_reg (w_ij / L) exp(beta_reg (S_i - 1)),  S_i = mean_j (w_ij / L)^2
    pooling: delta_conv[in] = (delta_pool[o] / p^2) rho_{o,in}                                  (1.9)

Shapes are written for a fully connected layer (``e [B, N_out, N_in]``); the functions that
say so also take convolutional (``e [B, C_out, L, K]``: output map, position, receptive-field
tap) and pooling (``e [B, C, L, p*p]``) layouts, with the pre counts already gathered into the
layout of ``e``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SILENT_POST_SIDE_RATIO = 0.5


def margin_error(
    counts: torch.Tensor, labels: torch.Tensor, *, desired: float = 35.0, undesired: float = 5.0, margin: float = 5.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Output error ``d`` and cost of the margin loss on spike counts (ALGORITHMS.md 1.5).

    ``y_i = desired`` for the label neuron and ``undesired`` otherwise;
    ``d_i = (o_i - y_i) 1[|o_i - y_i| > margin]``; cost ``sum_i d_i^2`` (the official log, no 1/2).

    Shape:
        - counts: ``[B, C]``; labels: ``[B]``.
        - Output: ``(d [B, C], cost [B])``.
    """
    target = torch.full_like(counts, undesired)
    target.scatter_(1, labels[:, None], desired)
    difference = counts - target
    d = torch.where(difference.abs() > margin, difference, torch.zeros_like(difference))
    return d, (d * d).sum(dim=1)


def inject_target_spikes(raster: torch.Tensor, labels: torch.Tensor, desired: float = 35.0) -> torch.Tensor:
    """Give a silent label neuron evenly spaced spikes at ``k floor(T / desired)``, ``k = 1, 2, ...`` (1.5).

    The official code does this after the output error and the lateral factor are computed and
    before the S-PSPs, so that a silent target neuron still gets informative ``e``. Returns a new
    raster; other neurons and samples are unchanged.

    Shape:
        - raster: ``[T, B, C]``; labels: ``[B]``; output ``[T, B, C]``.
    """
    steps, batch, _ = raster.shape
    interval = int(steps // int(desired))
    silent = raster.sum(dim=0)[torch.arange(batch, device=raster.device), labels] == 0
    if interval < 1 or not bool(silent.any()):
        return raster
    result = raster.clone()
    times = torch.arange(interval, steps, interval, device=raster.device)
    samples = torch.nonzero(silent).flatten()
    result[times[:, None], samples[None, :], labels[samples][None, :]] = 1.0
    return result


def effect_ratio(e: torch.Tensor, post_counts: torch.Tensor, pre_counts: torch.Tensor) -> torch.Tensor:
    """``rho_ij = e_ij / o_j`` where both neurons fired, else 1 (decoupled S-PSP, ALGORITHMS.md 1.6).

    Shape:
        - e: ``[B, N_out, N_in]`` (or a conv/pool layout ``[B, *P, K]``).
        - post_counts: ``[B, N_out]`` (``[B, *P]``); pre_counts: broadcastable to ``e``
          (``[B, 1, N_in]``).
        - Output: like ``e``.
    """
    both = (post_counts.unsqueeze(-1) > 0) & (pre_counts > 0)
    return torch.where(both, e / pre_counts.clamp_min(1.0), torch.ones_like(e))


def side_effect(
    e: torch.Tensor,
    weight: torch.Tensor,
    post_counts: torch.Tensor,
    vth: float,
    silent_ratio: float = SILENT_POST_SIDE_RATIO,
) -> torch.Tensor:
    """``sigma_i = (1 / vth) sum_l w_il r_il``, ``r_il = e_il / o_i`` (``silent_ratio`` = 0.5 for silent ``i``) (1.7).

    Shape:
        - e: ``[B, N_out, N_in]`` (or ``[B, *P, K]``); weight: broadcastable to ``e``
          (``[N_out, N_in]``; conv ``[C_out, 1, K]``).
        - post_counts: ``[B, N_out]`` (``[B, *P]``); output like ``post_counts``.
    """
    fired = post_counts > 0
    weighted = (e * weight).sum(dim=-1) / post_counts.clamp_min(1.0)
    silent = silent_ratio * weight.sum(dim=-1).expand_as(weighted)
    return torch.where(fired, weighted, silent) / vth


def side_effect_from_currents(
    kernel: torch.Tensor,
    currents: torch.Tensor,
    weight: torch.Tensor,
    post_counts: torch.Tensor,
    vth: float,
    silent_ratio: float = SILENT_POST_SIDE_RATIO,
) -> torch.Tensor:
    """:func:`side_effect` of a fully connected layer without forming ``e``.

    ``sum_l w_il e_il = sum_t' A[i, t'] sum_l w_il s_l(t') = sum_t' A[i, t'] I_i(t' + 1)`` for a
    firing ``i``: the post kernel ``A`` (:func:`snnbp.hm2bp.spsp.post_kernel`) against the
    feed-forward input current of the forward pass (``A[T-1] = 0``).

    Shape:
        - kernel: ``[T, B, N_out]``; currents: ``[T, B, N_out]`` (``I(t) = W s(t-1)``, ``I(0) = 0``).
        - weight: ``[N_out, N_in]``; post_counts: ``[B, N_out]``; output ``[B, N_out]``.
    """
    weighted = (kernel[:-1] * currents[1:]).sum(dim=0) / post_counts.clamp_min(1.0)
    silent = silent_ratio * weight.sum(dim=-1).expand_as(weighted)
    return torch.where(post_counts > 0, weighted, silent) / vth


def lateral_factor(
    e_lateral: torch.Tensor, counts: torch.Tensor, labels: torch.Tensor, vth: float, strength: float = 1.0
) -> torch.Tensor:
    """Output-layer lateral-inhibition loop factor ``lambda_j`` (ALGORITHMS.md 1.7).

    ``lambda_j = 1 / (1 - w0^2 sum_{l != j} rho_jl d_l rho_lj d_j)`` with ``d_x = 1 / vth`` when
    ``x`` fired or is the target (else 0) and ``rho_jl = e_{l|j} / o_j`` (1 when a count is 0).
    Computed, as officially, on the output raster before the silent-target injection.

    Shape:
        - e_lateral: ``[B, C, C]`` with ``e_lateral[b, l, j] = e_{l|j}`` (post ``l``, pre ``j``).
        - counts: ``[B, C]``; labels: ``[B]``; output ``[B, C]``.
    """
    batch, classes = counts.shape
    is_target = F.one_hot(labels, classes).to(torch.bool)
    d = torch.where((counts > 0) | is_target, torch.full_like(counts, 1.0 / vth), torch.zeros_like(counts))
    both = (counts[:, :, None] > 0) & (counts[:, None, :] > 0)
    rho = torch.where(both, e_lateral.transpose(1, 2) / counts[:, :, None].clamp_min(1.0), torch.ones_like(e_lateral))
    loop = rho * d[:, None, :] * rho.transpose(1, 2) * d[:, :, None]  # [b, j, l]
    off_diagonal = 1.0 - torch.eye(classes, dtype=counts.dtype, device=counts.device)
    return 1.0 / (1.0 - strength * strength * (loop * off_diagonal).sum(dim=2))


def regulariser_gradient(
    weight: torch.Tensor, *, lambda_reg: float, beta_reg: float, limit: float = 8.0
) -> torch.Tensor:
    """Gradient of the exponential weight regulariser, per post neuron (conv: per output map) over its fan-in (1.7).

    ``R(w_ij) = lambda_reg beta_reg (w_ij / L) exp(beta_reg (S_i - 1))``, ``S_i = mean_j (w_ij / L)^2``.

    Shape:
        - weight: ``[N_out, *fan_in]``; output like ``weight``.
    """
    if lambda_reg == 0.0:
        return torch.zeros_like(weight)
    scaled = weight / limit
    mean_square = (scaled * scaled).reshape(weight.shape[0], -1).mean(dim=1)
    factor = torch.exp(beta_reg * (mean_square - 1.0)).reshape(-1, *([1] * (weight.dim() - 1)))
    return lambda_reg * beta_reg * scaled * factor


def fc_weight_gradient(
    delta: torch.Tensor, e: torch.Tensor, sigma: torch.Tensor, lam: torch.Tensor | None = None
) -> torch.Tensor:
    """``mean_b delta_i e_ij (1 + sigma_i) lambda_i`` (ALGORITHMS.md 1.7, without the regulariser).

    Shape:
        - delta, sigma, lam: ``[B, N_out]``; e: ``[B, N_out, N_in]``; output ``[N_out, N_in]``.
    """
    scale = delta * (1.0 + sigma) if lam is None else delta * (1.0 + sigma) * lam
    return torch.einsum("bi,bij->ij", scale, e) / delta.shape[0]


def conv_weight_gradient(delta: torch.Tensor, e: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Shared-kernel gradient ``mean_b sum_l delta_{c,l} e_{(c,l)|k} (1 + sigma_{c,l})`` (ALGORITHMS.md 1.9).

    Shape:
        - delta, sigma: ``[B, C_out, L]``; e: ``[B, C_out, L, K]``; output ``[C_out, K]``.
    """
    return torch.einsum("bcl,bclk->ck", delta * (1.0 + sigma), e) / delta.shape[0]


def fc_pre_delta(delta: torch.Tensor, weight: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """``sum_i delta_i w_ij rho_ij`` (ALGORITHMS.md 1.6; the pre layer then divides by its threshold).

    Shape:
        - delta: ``[B, N_out]``; weight: ``[N_out, N_in]``; rho: ``[B, N_out, N_in]``; output ``[B, N_in]``.
    """
    return torch.einsum("bi,ij,bij->bj", delta, weight, rho)


def conv_pre_delta(
    delta: torch.Tensor, weight: torch.Tensor, rho: torch.Tensor, input_size: tuple[int, int], kernel_size: int
) -> torch.Tensor:
    """``delta_in = sum_{(c,l), k covering in} delta_{c,l} w_{c,k} rho_{(c,l),k}`` folded back to the input map (1.9).

    Shape:
        - delta: ``[B, C_out, L]``; weight: ``[C_out, K]``; rho: ``[B, C_out, L, K]``.
        - Output: ``[B, C_in, H, W]`` with ``input_size = (H, W)``.
    """
    contributions = torch.einsum("bcl,ck,bclk->bkl", delta, weight, rho)
    return F.fold(contributions, input_size, kernel_size)


def pool_pre_delta(
    delta: torch.Tensor, rho: torch.Tensor, pool: int, input_size: tuple[int, int], divide_by_area: bool = True
) -> torch.Tensor:
    """``delta_conv[in] = (delta_pool[o] / p^2) rho_{o,in}`` (official: divided by ``p^2``, not by ``vth_pool``) (1.9).

    Args:
        divide_by_area: the official ``1 / p^2`` routing factor (false: no division).

    Shape:
        - delta: ``[B, C, L]``; rho: ``[B, C, L, p * p]``; output ``[B, C, H, W]``.
    """
    batch, channels = delta.shape[:2]
    routed = delta[..., None] * rho / (pool * pool if divide_by_area else 1.0)
    height, width = input_size
    routed = routed.reshape(batch, channels, height // pool, width // pool, pool, pool)
    return routed.permute(0, 1, 2, 4, 3, 5).reshape(batch, channels, height, width)
