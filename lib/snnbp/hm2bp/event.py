"""The event-driven HM2-BP engine: the same spikes and gradients as :mod:`snnbp.hm2bp.model`, at the cost of the events.

The torch path (:func:`snnbp.hm2bp.model.forward` / :func:`~snnbp.hm2bp.model.gradients`) keeps
dense float rasters ``[T, B, N]`` and builds the S-PSPs with tensor operations. Here spikes travel
between layers as event lists (:class:`LayerSpikes`) and every loop is compiled
(:mod:`snnbp.hm2bp.event_kernels`, numba): the forward pass adds one fan-out row per input spike
to the currents and runs the LIF recursion per neuron block (ALGORITHMS.md 1.2, 1.9); the
backward pass builds each post neuron's S-PSP kernel from its own firings (1.3), contracts it
with the pre spikes into ``e``, and forms the side effect, the weight gradient and the pre-delta
in the same loop (1.6, 1.7, 1.9); the update is a fused regulariser + Adam step in place (1.7).
Memory per layer is the ``uint8`` spike flags plus, per block of post neurons, one ``[T, block]``
kernel and one ``e`` block: nothing of size ``[T, B, N]`` in floating point.

Weights live in the kernels' layout (:class:`EventNetwork`): fully connected ``[N_in, N_out]``
(the fan-out of a pre neuron is one contiguous row), convolutions ``[C_out, C_in, k, k]``; the
official layouts are views of the same memory.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field

import numba
import numpy as np
import torch

from snnbp.hm2bp import backprop
from snnbp.hm2bp import event_kernels as kernels
from snnbp.hm2bp.model import Gradients, Layer
from snnbp.hm2bp.params import ModelParams
from snnbp.hm2bp.spsp import _first_term_table, _s_low

if "NUMBA_THREADING_LAYER" not in os.environ:
    # Workers that sleep when idle: an OpenMP pool next to torch's own spins and starves it.
    numba.config.THREADING_LAYER = "workqueue"

BACKWARD_BLOCK_MAX = 256
"""Largest block of post neurons one backward task holds (its kernel and ``e`` stay in cache)."""


@dataclass(frozen=True)
class LayerSpikes:
    """The spikes of one layer for a batch.

    Attributes:
        flags: ``uint8 [B, T, N]``, 1 where neuron ``n`` fired at step ``t``.
        ptr, idx: time-major event lists (``idx[ptr[b*T + t] : ptr[b*T + t + 1]]`` fired at ``t``).
        counts: firing counts ``int64 [B, N]``.
    """

    flags: np.ndarray
    ptr: np.ndarray
    idx: np.ndarray
    counts: np.ndarray

    @property
    def steps(self) -> int:
        """``T``."""
        return self.flags.shape[1]

    @property
    def batch(self) -> int:
        """``B``."""
        return self.flags.shape[0]


def spikes_from_flags(flags: np.ndarray) -> LayerSpikes:
    """:class:`LayerSpikes` of a C-contiguous ``uint8 [B, T, N]`` flag array (events and counts derived)."""
    packed = flags.shape[2] // 8 * 8
    words = flags[:, :, :packed].view(np.uint64)
    return LayerSpikes(flags, *kernels.flags_to_events(flags, words))


def spikes_from_raster(raster: torch.Tensor) -> LayerSpikes:
    """Event form of a binary raster ``[T, B, *S]`` (any dtype)."""
    steps, batch = raster.shape[:2]
    flags = (raster.reshape(steps, batch, -1) != 0).permute(1, 0, 2).contiguous().to(torch.uint8).cpu().numpy()
    return spikes_from_flags(flags)


def raster_from_spikes(spikes: LayerSpikes, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dense time-major raster ``[T, B, *shape]`` of ``spikes`` (for comparisons and figures)."""
    flags = torch.from_numpy(spikes.flags)
    return flags.permute(1, 0, 2).to(dtype).reshape(spikes.steps, spikes.batch, *shape)


def numpy_dtype(params: ModelParams) -> np.dtype:
    """The compute dtype of ``params.dtype`` as a NumPy dtype."""
    if params.dtype not in ("float32", "float64"):
        raise ValueError(f"model.dtype must be 'float32' or 'float64', got {params.dtype!r}")
    return np.dtype(params.dtype)


def kernel_layout(layer: Layer, weight: torch.Tensor | None, dtype: np.dtype) -> np.ndarray | None:
    """``weight`` (official layout) as the contiguous array the kernels take (FC: ``[N_in, N_out]``)."""
    if weight is None:
        return None
    array = weight.detach().cpu().numpy().astype(dtype, copy=False)
    return np.ascontiguousarray(array.T if layer.kind == "fc" else array)


def official_view(layer: Layer, array: np.ndarray | None) -> torch.Tensor | None:
    """The official-layout torch view (FC ``[N_out, N_in]``) of a kernel-layout array (shared memory)."""
    if array is None:
        return None
    tensor = torch.from_numpy(array)
    return tensor.t() if layer.kind == "fc" else tensor


def use_threads() -> None:
    """Run the compiled loops on as many threads as torch uses (never more than numba has)."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def engine_available() -> bool:
    """Whether the compiled engine can run here (numba imports; always true once this module is imported)."""
    return True


class Workspace:
    """Zeroed buffers reused from step to step (spike flags, gradient sums, pre-delta parts), so that a
    training step at a fixed batch size allocates no large array (and takes no fresh page faults)."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def zeros(self, key: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """The buffer ``key`` of ``shape`` and ``dtype``, filled with zeros (allocated on first use or a new shape)."""
        buffer = self._buffers.get(key)
        if buffer is None or buffer.shape != tuple(shape) or buffer.dtype != dtype:
            buffer = self._buffers[key] = np.zeros(shape, dtype)
        else:
            buffer.fill(0)
        return buffer


def _zeros(workspace: Workspace | None, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Zeros from ``workspace`` when given, else a new array."""
    return np.zeros(shape, dtype) if workspace is None else workspace.zeros(key, shape, np.dtype(dtype))


def forward_block(neurons: int, batch: int) -> int:
    """Post neurons per forward task: whole layers when the samples alone keep every thread busy,
    else the layer split in as many blocks as threads (fewer, larger blocks: less work per event).
    Spikes do not depend on it: every neuron's current is summed over its events in order."""
    splits = -(-numba.get_num_threads() // batch)
    return -(-neurons // splits)


def backward_block(neurons: int) -> int:
    """Post neurons per backward task: equal blocks of at most :data:`BACKWARD_BLOCK_MAX`.

    Independent of the thread count, so that the pre-delta (summed over blocks) is too.
    """
    blocks = -(-neurons // BACKWARD_BLOCK_MAX)
    return -(-neurons // blocks)


# ------------------------------------------------------------------------------ forward pass


def layer_forward(
    layer: Layer,
    weight: np.ndarray | None,
    pre: LayerSpikes,
    params: ModelParams,
    dtype: np.dtype,
    flags: np.ndarray | None = None,
) -> LayerSpikes:
    """Output spikes of one layer (ALGORITHMS.md 1.2, 1.9); ``weight`` in the kernel layout.

    Args:
        flags: zeroed ``uint8 [B, T, N_out]`` to write the spikes into (None: a new array).
    """
    scalar = dtype.type
    threshold = scalar(layer.vth - layer.margin)
    tau_m, tau_s, t_ref = scalar(params.tau_m), scalar(params.tau_s), int(params.t_ref)
    if flags is None:
        flags = np.zeros((pre.batch, pre.steps, math.prod(layer.out_shape)), np.uint8)
    if layer.kind == "fc":
        block = flags.shape[2] if layer.lateral != 0.0 else forward_block(flags.shape[2], pre.batch)
        kernels.fc_forward(
            pre.ptr,
            pre.idx,
            weight,
            pre.batch,
            pre.steps,
            threshold,
            tau_m,
            tau_s,
            t_ref,
            scalar(layer.lateral),
            block,
            flags,
        )
    elif layer.kind == "conv":
        kernels.conv_forward(
            pre.ptr,
            pre.idx,
            weight,
            layer.in_shape[1],
            layer.in_shape[2],
            pre.batch,
            pre.steps,
            threshold,
            tau_m,
            tau_s,
            t_ref,
            forward_block(weight.shape[0], pre.batch),
            flags,
        )
    else:
        kernels.pool_forward(
            pre.ptr,
            pre.idx,
            layer.in_shape[0],
            layer.in_shape[1],
            layer.in_shape[2],
            layer.size,
            pre.batch,
            pre.steps,
            threshold,
            tau_m,
            tau_s,
            t_ref,
            np.zeros(0, dtype),
            flags,
        )
    return spikes_from_flags(flags)


def forward(
    layers: list[Layer],
    weights: list[np.ndarray | None],
    inputs: LayerSpikes,
    params: ModelParams,
    workspace: Workspace | None = None,
) -> list[LayerSpikes]:
    """Spikes of every layer, input first (``len(layers) + 1`` entries); weights in the kernel layout."""
    use_threads()
    dtype = numpy_dtype(params)
    spikes = [inputs]
    for k, (layer, weight) in enumerate(zip(layers, weights)):
        flags = _zeros(workspace, f"flags{k}", (inputs.batch, inputs.steps, math.prod(layer.out_shape)), np.uint8)
        spikes.append(layer_forward(layer, weight, spikes[-1], params, dtype, flags))
    return spikes


# ----------------------------------------------------------------------------- backward pass


@dataclass(frozen=True)
class KernelTable:
    """``eps(s, u)`` on the grid the S-PSP kernels look up (:func:`snnbp.hm2bp.spsp._first_term_table`,
    each row reversed in ``u``; see :func:`snnbp.hm2bp.event_kernels.post_kernel_block`)."""

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
        kernels.pool_backward(
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
        kernels.fc_backward(
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
        kernels.conv_backward(
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
        lam = kernels.lateral_factor(
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


# ----------------------------------------------------------------------------------- update


@dataclass
class EventNetwork:
    """Weights and Adam moments in the kernel layout, updated in place.

    Attributes:
        layers: the network's layers.
        weights, first_moments, second_moments: per layer, kernel layout (None for pooling).
        steps: Adam steps taken per layer.
        workspace: the buffers a training step reuses.
    """

    layers: list[Layer]
    weights: list[np.ndarray | None]
    first_moments: list[np.ndarray | None]
    second_moments: list[np.ndarray | None]
    steps: list[int]
    workspace: Workspace = field(default_factory=Workspace)

    @staticmethod
    def of(layers: list[Layer], weights: list[torch.Tensor | None], dtype: np.dtype) -> EventNetwork:
        """A network from official-layout weights (copied), with zero Adam moments."""
        arrays = [kernel_layout(layer, w, dtype) for layer, w in zip(layers, weights)]
        arrays = [None if a is None else a.copy() for a in arrays]
        return EventNetwork(
            layers,
            arrays,
            [None if a is None else np.zeros_like(a) for a in arrays],
            [None if a is None else np.zeros_like(a) for a in arrays],
            [0] * len(layers),
        )

    def update(self, grad_sums: list[np.ndarray | None], batch: int, lr: float, params: ModelParams) -> None:
        """Regulariser + Adam on every trainable layer, in place (ALGORITHMS.md 1.7)."""
        use_threads()
        for k, (layer, grad) in enumerate(zip(self.layers, grad_sums)):
            if grad is None:
                continue
            if not np.isfinite(grad).all():
                raise FloatingPointError(
                    f"HM2-BP: non-finite weight gradient in layer {k} ({layer.kind}, "
                    f"weights {tuple(official_view(layer, grad).shape)})"
                )
            weight = self.weights[k]
            scalar = weight.dtype.type
            self.steps[k] += 1
            step = self.steps[k]
            rows = weight.shape[0]
            kernels.regularised_adam(
                weight.reshape(rows, -1),
                np.ascontiguousarray(grad).reshape(rows, -1),
                self.first_moments[k].reshape(rows, -1),
                self.second_moments[k].reshape(rows, -1),
                scalar(1.0 / batch),
                1 if layer.kind == "fc" else 0,
                scalar(params.lambda_reg),
                scalar(params.beta_reg),
                scalar(params.weight_limit),
                scalar(lr),
                scalar(params.adam_beta1),
                scalar(params.adam_beta2),
                scalar(params.adam_eps),
                scalar(1.0 - params.adam_beta1**step),
                scalar(1.0 - params.adam_beta2**step),
            )
