"""The event-driven HM2-BP engine: the same spikes and gradients as :mod:`snnbp.hm2bp.model`, at the cost of the events.

The torch path (:func:`snnbp.hm2bp.model.forward` / :func:`~snnbp.hm2bp.model.gradients`) keeps
dense float rasters ``[T, B, N]`` and builds the S-PSPs with tensor operations. Here spikes travel
between layers as event lists (:class:`LayerSpikes`) and every loop is compiled
(:mod:`snnbp.hm2bp.event_kernels` and :mod:`snnbp.hm2bp.event_backward_kernels`, numba): the
forward pass adds one fan-out row per input spike
to the currents and runs the LIF recursion per neuron block (ALGORITHMS.md 1.2, 1.9); the
backward pass builds each post neuron's S-PSP kernel from its own firings (1.3), contracts it
with the pre spikes into ``e``, and forms the side effect, the weight gradient and the pre-delta
in the same loop (1.6, 1.7, 1.9); the update is a fused regulariser + Adam step in place (1.7). This module holds the event
lists, the forward pass and the update; the backward pass is :mod:`snnbp.hm2bp.event_backward`.
Memory per layer is the ``uint8`` spike flags plus, per block of post neurons, one ``[T, block]``
kernel and one ``e`` block: nothing of size ``[T, B, N]`` in floating point.

Weights live in the kernels' layout (:class:`EventNetwork`): fully connected ``[N_in, N_out]``
(the fan-out of a pre neuron is one contiguous row), convolutions ``[C_out, C_in, k, k]``; the
official layouts are views of the same memory.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numba
import numpy as np
import torch

from snnbp.hm2bp import event_backward_kernels as backward_kernels
from snnbp.hm2bp import event_kernels as kernels
from snnbp.hm2bp.model import Layer
from snnbp.hm2bp.params import ModelParams

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
            backward_kernels.regularised_adam(
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
