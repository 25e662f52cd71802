"""The event-driven HM2-BP engine's backward pass: errors and gradients from event lists.

The forward pass and the update are in :mod:`snnbp.hm2bp.event` (its module docstring describes
the engine); the compiled loops are in :mod:`snnbp.hm2bp.event_backward_kernels`. Per layer, each
post neuron's S-PSP kernel is built from its own firings (ALGORITHMS.md 1.3) and contracted with
the pre spikes into ``e``; the side effect, the weight gradient and the pre-delta are formed in the
same loop (1.6, 1.7, 1.9). Memory per layer: per block of post neurons, one ``[T, block]`` kernel
and one ``e`` block.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from snnbp.hm2bp import backprop
from snnbp.hm2bp import event_backward_kernels as backward_kernels
from snnbp.hm2bp.event import (
    LayerSpikes,
    Workspace,
    _zeros,
    backward_block,
    kernel_layout,
    numpy_dtype,
    official_view,
    spikes_from_raster,
    use_threads,
)
from snnbp.hm2bp.model import Gradients, Layer
from snnbp.hm2bp.params import ModelParams
from snnbp.hm2bp.spsp import _first_term_table, _s_low


@dataclass(frozen=True)
class KernelTable:
    """``eps(s, u)`` on the grid the S-PSP kernels look up (:func:`snnbp.hm2bp.spsp._first_term_table`,
    each row reversed in ``u``; see :func:`snnbp.hm2bp.event_backward_kernels.post_kernel_block`)."""

    values: np.ndarray
    s_low: int
    window: int
    t_ref: int
    shift: int
    decay: float

    @staticmethod
    def of(params: ModelParams, steps: int) -> KernelTable:
        """The table of ``params``' time constants and quirks for ``steps`` steps."""
        window = math.ceil(params.spsp_lookback * params.tau_m)
        shift = params.t_ref if params.spsp_pre_shift is None else params.spsp_pre_shift
        grid = _first_term_table(steps, params.tau_m, params.tau_s, params.t_ref, window, "cpu").reshape(-1, window + 1)
        values = np.ascontiguousarray(grid.flip(1).numpy()).reshape(-1)  # rows reversed in u
        return KernelTable(
            values, _s_low(params.t_ref), window, int(params.t_ref), int(shift), math.exp(-1.0 / params.tau_s)
        )

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def cached(params: ModelParams, steps: int) -> KernelTable:
        """:meth:`of`, computed once per ``(params, steps)``."""
        return KernelTable.of(params, steps)

    def arguments(self) -> tuple:
        """The table arguments of the compiled kernels."""
        return self.values, self.s_low, self.window, self.t_ref, self.shift, self.decay


def inject_target(spikes: LayerSpikes, labels: np.ndarray, desired: float) -> LayerSpikes:
    """Silent label neurons get spikes at ``k floor(T / desired)``, ``k >= 1`` (ALGORITHMS.md 1.5).

    Returns new flags and counts (the event lists are not needed for the output layer's backward).
    """
    interval = int(spikes.steps // int(desired))
    rows = np.arange(spikes.batch)
    silent = spikes.counts[rows, labels] == 0
    if interval < 1 or not silent.any():
        return spikes
    flags, counts = spikes.flags.copy(), spikes.counts.copy()
    times = np.arange(interval, spikes.steps, interval)
    for b in np.nonzero(silent)[0]:
        flags[b, times, labels[b]] = 1
        counts[b, labels[b]] = len(times)
    return LayerSpikes(flags, spikes.ptr, spikes.idx, counts)


def layer_backward(
    layer: Layer,
    weight: np.ndarray | None,
    pre: LayerSpikes,
    post: LayerSpikes,
    delta: np.ndarray,
    params: ModelParams,
    table: KernelTable,
    *,
    lam: np.ndarray | None = None,
    need_pre_delta: bool = True,
    workspace: Workspace | None = None,
    key: str = "",
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Summed-over-batch weight gradient (kernel layout, no regulariser) and pre-delta of one layer.

    Args:
        delta: for trainable layers the error already divided by the layer's threshold; for
            pooling layers the error of the pooled neurons. ``[B, N_out]``.
        lam: output lateral factor ``[B, N_out]`` (None: 1).
        workspace, key: reusable buffers, and this layer's name among them.

    Returns:
        ``(grad_sum, pre_delta [B, N_in])``; ``grad_sum`` is None for pooling layers and
        ``pre_delta`` None when not needed.
    """
    batch, dtype = delta.shape[0], delta.dtype
    n_in = math.prod(layer.in_shape)
    probe, silent_ratio = dtype.type(params.silent_post_probe), dtype.type(params.silent_post_side_ratio)
    if layer.kind == "pool":
        pre_delta = np.zeros((batch, n_in), dtype)
        backward_kernels.pool_backward(
            pre.ptr,
            pre.idx,
            pre.counts,
            post.flags,
            post.counts,
            layer.in_shape[0],
            layer.in_shape[1],
            layer.in_shape[2],
            layer.size,
            delta,
            probe,
            params.use_effect_ratio,
            params.pool_divide_by_area,
            *table.arguments(),
            pre_delta,
        )
        return None, pre_delta
    vth = dtype.type(layer.vth)
    if layer.kind == "fc":
        block = backward_block(post.flags.shape[2])
        blocks = -(-post.flags.shape[2] // block)
        grad = _zeros(workspace, f"grad{key}", weight.shape, dtype)
        parts = _zeros(workspace, f"parts{key}", (blocks if need_pre_delta else 1, batch, n_in), dtype)
        lam = np.ones_like(delta) if lam is None else lam.astype(dtype, copy=False)
        backward_kernels.fc_backward(
            pre.ptr,
            pre.idx,
            pre.counts,
            post.flags,
            post.counts,
            weight,
            delta,
            lam,
            vth,
            probe,
            silent_ratio,
            params.use_side_effect,
            params.use_effect_ratio,
            need_pre_delta,
            *table.arguments(),
            block,
            grad,
            parts,
        )
    else:
        grad = _zeros(workspace, f"grad{key}", (weight.shape[0], math.prod(weight.shape[1:])), dtype)
        parts = _zeros(workspace, f"parts{key}", (weight.shape[0] if need_pre_delta else 1, batch, n_in), dtype)
        backward_kernels.conv_backward(
            pre.ptr,
            pre.idx,
            pre.counts,
            post.flags,
            post.counts,
            weight,
            layer.in_shape[1],
            layer.in_shape[2],
            delta,
            vth,
            probe,
            silent_ratio,
            params.use_side_effect,
            params.use_effect_ratio,
            need_pre_delta,
            *table.arguments(),
            grad,
            parts,
        )
        grad = grad.reshape(weight.shape)
    return grad, (parts.sum(axis=0) if need_pre_delta else None)


@dataclass(frozen=True)
class BackwardResult:
    """Summed-over-batch gradients in the kernel layout (no regulariser), the cost and the output counts."""

    grad_sums: list[np.ndarray | None]
    cost: np.ndarray
    output_counts: np.ndarray


def backward(
    layers: list[Layer],
    weights: list[np.ndarray | None],
    spikes: list[LayerSpikes],
    labels: np.ndarray,
    sample_weights: np.ndarray,
    params: ModelParams,
    workspace: Workspace | None = None,
) -> BackwardResult:
    """The HM2-BP backward pass (ALGORITHMS.md 1.5-1.7, 1.9), as in :func:`snnbp.hm2bp.model.gradients`.

    Shape:
        - labels: ``[B]`` int64; sample_weights: ``[B]`` boosting weights.
    """
    use_threads()
    dtype = numpy_dtype(params)
    output = spikes[-1]
    table = KernelTable.cached(params, output.steps)
    counts = torch.from_numpy(output.counts.astype(dtype))
    d, cost = backprop.margin_error(
        counts, torch.from_numpy(labels), desired=params.desired, undesired=params.undesired, margin=params.margin
    )
    delta = (sample_weights.astype(dtype)[:, None] * d.numpy()).astype(dtype)
    lam = None
    if params.use_lateral_factor and layers[-1].lateral != 0.0:
        lam = backward_kernels.lateral_factor(
            output.flags, output.counts, labels, float(layers[-1].vth), float(-layers[-1].lateral), *table.arguments()
        )
    if params.inject_silent_target:
        spikes = [*spikes[:-1], inject_target(output, labels, params.desired)]
    grads: list[np.ndarray | None] = [None] * len(layers)
    for k in range(len(layers) - 1, -1, -1):
        layer = layers[k]
        if layer.kind != "pool":
            delta = delta / dtype.type(layer.vth)
        grads[k], delta = layer_backward(
            layer,
            weights[k],
            spikes[k],
            spikes[k + 1],
            delta,
            params,
            table,
            lam=lam if k == len(layers) - 1 else None,
            need_pre_delta=k > 0,
            workspace=workspace,
            key=str(k),
        )
    return BackwardResult(grads, cost.numpy(), output.counts)


def regulariser_gradient(weight: np.ndarray, layer: Layer, params: ModelParams) -> np.ndarray:
    """:func:`snnbp.hm2bp.backprop.regulariser_gradient` of a kernel-layout weight, in the kernel layout."""
    official = official_view(layer, weight)
    reg = backprop.regulariser_gradient(
        official, lambda_reg=params.lambda_reg, beta_reg=params.beta_reg, limit=params.weight_limit
    )
    return kernel_layout(layer, reg, weight.dtype)


def gradients(
    layers: list[Layer],
    weights: list[torch.Tensor | None],
    rasters: list[torch.Tensor],
    labels: torch.Tensor,
    sample_weights: torch.Tensor,
    params: ModelParams,
) -> Gradients:
    """The event engine's gradients in the torch path's form (official layouts, mean over the batch,
    regulariser included): :func:`snnbp.hm2bp.model.gradients` computed from the same rasters.

    Args:
        weights: official-layout weights (as the torch path takes them).
        rasters: every layer's raster ``[T, B, *shape]``, input first (e.g. from the torch forward).
    """
    dtype = numpy_dtype(params)
    arrays = [kernel_layout(layer, w, dtype) for layer, w in zip(layers, weights)]
    spikes = [spikes_from_raster(r) for r in rasters]
    result = backward(
        layers,
        arrays,
        spikes,
        labels.cpu().numpy().astype(np.int64),
        sample_weights.cpu().numpy().astype(np.float64),
        params,
    )
    batch = len(labels)
    grads = []
    for layer, array, grad in zip(layers, arrays, result.grad_sums):
        if grad is None:
            grads.append(None)
            continue
        total = grad / dtype.type(batch) + regulariser_gradient(array, layer, params)
        grads.append(official_view(layer, np.ascontiguousarray(total)).clone())
    return Gradients(grads, torch.from_numpy(result.cost), torch.from_numpy(result.output_counts.astype(dtype)))
