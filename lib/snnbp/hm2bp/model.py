"""HM2-BP networks: layer specifications, initialisation, forward pass, gradients, Adam and the LR schedule.

A network is a list of :class:`Layer` (fully connected, spiking convolution, spiking pooling;
the last one is the fully connected output layer with lateral inhibition) and a matching list
of weight tensors (``None`` for pooling layers, whose unit weights are fixed).

Backward pass (ALGORITHMS.md 1.5-1.7, 1.9), no autograd graph over time: the output error on
spike counts, the lateral factor on the output raster, the silent-target injection, then from
the output layer down, each trainable layer divides the error it receives by its threshold,
computes its weight gradient and the error of the layer below from its S-PSPs and its current
(old) weights; pooling layers only route the error. The official code updates each layer right
after computing its pre-delta; since no layer's update feeds into the computations of the
layers below it, computing every gradient first and then updating gives the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from snnbp.hm2bp import backprop
from snnbp.hm2bp.lif import conv_currents, fc_currents, integrate_and_fire, pool_currents
from snnbp.hm2bp.params import ModelParams
from snnbp.hm2bp.spsp import pool_windows, post_kernel, spsp, spsp_batch_weighted, spsp_conv, spsp_pool
from snnbp.notation import conv_name, input_map_name, parse_layer, pool_name


@dataclass(frozen=True)
class Layer:
    """One spiking layer.

    Attributes:
        kind: ``"fc"``, ``"conv"`` or ``"pool"``.
        in_shape: shape of one sample's input per step (``(N,)`` or ``(C, H, W)``).
        out_shape: shape of one sample's output per step.
        vth: firing threshold.
        margin: fires when ``v > vth - margin``.
        size: conv kernel size or pool size (0 for fully connected layers).
        lateral: weight of the inhibition from every other neuron of the layer (output: ``-w0``).
    """

    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    vth: float
    margin: float
    size: int = 0
    lateral: float = 0.0

    @property
    def weight_shape(self) -> tuple[int, ...] | None:
        """``[N_out, N_in]``, ``[C_out, C_in, k, k]``, or None (pooling)."""
        if self.kind == "fc":
            return (self.out_shape[0], math.prod(self.in_shape))
        if self.kind == "conv":
            return (self.out_shape[0], self.in_shape[0], self.size, self.size)
        return None


def build_layers(params: ModelParams, input_shape: tuple[int, ...], num_classes: int) -> list[Layer]:
    """Layers of ``params.layers`` on inputs of ``input_shape``, plus the output layer.

    Args:
        params: the model section (layer specs, thresholds, margins, lateral strength).
        input_shape: ``(N,)`` for flat inputs or ``(C, H, W)`` / ``(H, W)`` for images.
        num_classes: output neurons.

    Raises:
        ValueError: for a malformed spec, a threshold count that does not match, a convolution
            on a flat input or a pooling size that does not divide the map.
    """
    if len(params.thresholds) != len(params.layers) + 1:
        raise ValueError(
            f"model.thresholds needs {len(params.layers) + 1} values (one per layer in model.layers "
            f"plus the output layer), got {len(params.thresholds)}"
        )
    shape = (1, *input_shape) if len(input_shape) == 2 else tuple(input_shape)
    layers = []
    for spec, vth in zip(params.layers, params.thresholds[:-1]):
        try:
            token = parse_layer(spec)
        except ValueError as exc:
            raise ValueError(f"model.layers: {exc}") from exc
        if token.kind == "fc":
            layers.append(Layer("fc", shape, (token.size,), vth, params.threshold_margin))
        elif token.kind == "conv":
            k = token.kernel
            if len(shape) != 3 or shape[1] < k or shape[2] < k:
                raise ValueError(f"model.layers: convolution {spec!r} needs an image input, got shape {shape}")
            out = (token.size, shape[1] - k + 1, shape[2] - k + 1)
            layers.append(Layer("conv", shape, out, vth, params.conv_threshold_margin, size=k))
        else:
            p = token.size
            if len(shape) != 3 or shape[1] % p or shape[2] % p:
                raise ValueError(f"model.layers: pooling {spec!r} needs a map divisible by {p}, got shape {shape}")
            out = (shape[0], shape[1] // p, shape[2] // p)
            layers.append(Layer("pool", shape, out, vth, params.threshold_margin, size=p))
        shape = layers[-1].out_shape
    layers.append(
        Layer(
            "fc",
            shape,
            (num_classes,),
            params.thresholds[-1],
            params.threshold_margin,
            lateral=-params.lateral_strength,
        )
    )
    return layers


def describe(layers: list[Layer]) -> str:
    """Network string in the paper's notation, e.g. ``784-800-10`` or ``28x28-15C5-P2-40C5-P2-300-10``."""
    first = layers[0].in_shape
    parts = [str(math.prod(first)) if layers[0].kind == "fc" else input_map_name(first)]
    for layer in layers:
        if layer.kind == "conv":
            parts.append(conv_name(layer.out_shape[0], layer.size))
        elif layer.kind == "pool":
            parts.append(pool_name(layer.size))
        else:
            parts.append(str(layer.out_shape[0]))
    return "-".join(parts)


def init_weights(
    layers: list[Layer], params: ModelParams, generator: torch.Generator, device: str | torch.device = "cpu"
) -> list[torch.Tensor | None]:
    """Uniform ``U(-init, init)`` weights (official ``initRandom``; FC ``init_fc``, conv ``init_conv``)."""
    dtype = torch_dtype(params)
    weights: list[torch.Tensor | None] = []
    for layer in layers:
        shape = layer.weight_shape
        if shape is None:
            weights.append(None)
            continue
        bound = params.init_fc if layer.kind == "fc" else params.init_conv
        uniform = torch.rand(shape, generator=generator, dtype=torch.float64)
        weights.append(((uniform * 2.0 - 1.0) * bound).to(device=device, dtype=dtype))
    return weights


def torch_dtype(params: ModelParams) -> torch.dtype:
    """The compute dtype named by ``params.dtype``."""
    if params.dtype not in ("float32", "float64"):
        raise ValueError(f"model.dtype must be 'float32' or 'float64', got {params.dtype!r}")
    return torch.float32 if params.dtype == "float32" else torch.float64


def layer_forward(
    layer: Layer, weight: torch.Tensor | None, pre: torch.Tensor, params: ModelParams
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input currents and output raster of one layer (ALGORITHMS.md 1.2, 1.9).

    Shape:
        - pre: ``[T, B, *layer.in_shape]``.
        - Output: ``(spikes [T, B, *layer.out_shape], currents [T, B, *layer.out_shape])``.
    """
    steps, batch = pre.shape[:2]
    if layer.kind == "fc":
        currents = fc_currents(pre.reshape(steps, batch, -1), weight)
    elif layer.kind == "conv":
        currents = conv_currents(pre, weight)
    else:
        currents = pool_currents(pre, layer.size)
    spikes = integrate_and_fire(
        currents,
        vth=layer.vth,
        neuron=params.neuron,
        margin=layer.margin,
        lateral=layer.lateral,
    )
    return spikes, currents


def forward(
    layers: list[Layer], weights: list[torch.Tensor | None], inputs: torch.Tensor, params: ModelParams
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Rasters of every layer (input first) and the input currents of every layer.

    Shape:
        - inputs: ``[T, B, *layers[0].in_shape]`` (a flat ``[T, B, N]`` is reshaped).
        - Output: rasters ``[T, B, *shape]`` (``len(layers) + 1`` of them) and currents
          (``len(layers)``).
    """
    rasters = [inputs.reshape(inputs.shape[0], inputs.shape[1], *layers[0].in_shape)]
    currents = []
    for layer, weight in zip(layers, weights):
        spikes, current = layer_forward(layer, weight, rasters[-1], params)
        rasters.append(spikes)
        currents.append(current)
    return rasters, currents


def _spsp_options(params: ModelParams) -> dict:
    """The S-PSP keyword arguments (the neuron's constants and the official quirks) of ``params``."""
    return dict(
        neuron=params.neuron,
        pre_shift=params.spsp_pre_shift,
        lookback=params.spsp_lookback,
    )


def fc_backward(
    weight: torch.Tensor,
    pre: torch.Tensor,
    post: torch.Tensor,
    delta: torch.Tensor,
    vth: float,
    params: ModelParams,
    *,
    lam: torch.Tensor | None = None,
    need_pre_delta: bool = True,
    currents: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight gradient (no regulariser) and pre-delta of a fully connected layer (ALGORITHMS.md 1.6-1.7).

    Without a pre-delta to compute, a lateral factor, and with the forward ``currents`` given
    (and ``params.fused_first_layer``), the gradient is formed without the S-PSP matrix
    (:func:`snnbp.hm2bp.spsp.spsp_batch_weighted`).

    Args:
        delta: error w.r.t. the layer's total PSP, already divided by ``vth``.
        lam: output lateral factor (None for hidden layers).

    Shape:
        - weight: ``[N_out, N_in]``; pre: ``[T, B, N_in]``; post: ``[T, B, N_out]``; delta: ``[B, N_out]``.
        - currents: ``[T, B, N_out]`` (``I(t) = W s(t-1)``).
        - Output: ``(grad [N_out, N_in], pre_delta [B, N_in] or None)`` (pre-delta not yet divided
          by the pre layer's threshold).
    """
    batch = pre.shape[1]
    options = _spsp_options(params)
    if not need_pre_delta and lam is None and currents is not None and params.fused_first_layer:
        counts = post.sum(dim=0)
        kernel = post_kernel(post, **options).to(weight.dtype)
        sigma = (
            backprop.side_effect_from_currents(kernel, currents, weight, counts, vth, params.silent_post_side_ratio)
            if params.use_side_effect
            else torch.zeros_like(counts)
        )
        grad = spsp_batch_weighted(pre, kernel, counts, delta * (1.0 + sigma), probe=params.silent_post_probe)
        return grad / batch, None
    e = spsp(pre, post, **options, probe=params.silent_post_probe).to(weight.dtype)
    post_counts = post.sum(dim=0)
    sigma = (
        backprop.side_effect(e, weight, post_counts, vth, params.silent_post_side_ratio)
        if params.use_side_effect
        else torch.zeros_like(delta)
    )
    grad = backprop.fc_weight_gradient(delta, e, sigma, lam)
    if not need_pre_delta:
        return grad, None
    rho = (
        backprop.effect_ratio(e, post_counts, pre.sum(dim=0)[:, None, :])
        if params.use_effect_ratio
        else torch.ones_like(e)
    )
    return grad, backprop.fc_pre_delta(delta, weight, rho)


def conv_backward(
    weight: torch.Tensor,
    pre: torch.Tensor,
    post: torch.Tensor,
    delta: torch.Tensor,
    vth: float,
    params: ModelParams,
    *,
    need_pre_delta: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Kernel gradient (no regulariser) and pre-delta of a spiking convolution (ALGORITHMS.md 1.9).

    Shape:
        - weight: ``[C_out, C_in, k, k]``; pre: ``[T, B, C_in, H, W]``; post: ``[T, B, C_out, H', W']``.
        - delta: ``[B, C_out, H', W']`` (already divided by ``vth``).
        - Output: ``(grad like weight, pre_delta [B, C_in, H, W] or None)``.
    """
    batch, maps, k = pre.shape[1], weight.shape[0], weight.shape[-1]
    e = spsp_conv(pre, post, k, **_spsp_options(params), probe=params.silent_post_probe).to(weight.dtype)
    post_counts = post.sum(dim=0).reshape(batch, maps, -1)
    flat_weight = weight.reshape(maps, -1)
    delta = delta.reshape(batch, maps, -1)
    sigma = (
        backprop.side_effect(e, flat_weight[:, None, :], post_counts, vth, params.silent_post_side_ratio)
        if params.use_side_effect
        else torch.zeros_like(delta)
    )
    grad = backprop.conv_weight_gradient(delta, e, sigma).reshape(weight.shape)
    if not need_pre_delta:
        return grad, None
    field_counts = F.unfold(pre.sum(dim=0).to(e.dtype), k).transpose(1, 2)[:, None]  # [B, 1, L, K]
    rho = backprop.effect_ratio(e, post_counts, field_counts) if params.use_effect_ratio else torch.ones_like(e)
    return grad, backprop.conv_pre_delta(delta, flat_weight, rho, tuple(pre.shape[-2:]), k)


def pool_backward(
    pre: torch.Tensor, post: torch.Tensor, delta: torch.Tensor, pool: int, params: ModelParams
) -> torch.Tensor:
    """Error routed through a spiking pooling layer: ``(delta / p^2) rho`` (ALGORITHMS.md 1.9).

    Shape:
        - pre: ``[T, B, C, H, W]``; post: ``[T, B, C, H/p, W/p]``; delta like one step of post.
        - Output: ``[B, C, H, W]``.
    """
    batch, channels = pre.shape[1], pre.shape[2]
    delta = delta.reshape(batch, channels, -1)
    if params.use_effect_ratio:
        e = spsp_pool(pre, post, pool, **_spsp_options(params), probe=params.silent_post_probe).to(delta.dtype)
        window_counts = pool_windows(pre.sum(dim=0, keepdim=True), pool).squeeze(3).to(delta.dtype)
        rho = backprop.effect_ratio(e, post.sum(dim=0).reshape(batch, channels, -1).to(delta.dtype), window_counts)
    else:
        rho = torch.ones(*delta.shape, pool * pool, dtype=delta.dtype, device=delta.device)
    return backprop.pool_pre_delta(delta, rho, pool, tuple(pre.shape[-2:]), params.pool_divide_by_area)


@dataclass(frozen=True)
class Gradients:
    """What one backward pass produces.

    Attributes:
        grads: ``dE/dw`` of every layer including the regulariser (None for pooling layers).
        cost: per-sample margin loss ``[B]`` (the official cost, before boosting).
        output_counts: output spike counts before the silent-target injection ``[B, C]``.
    """

    grads: list[torch.Tensor | None]
    cost: torch.Tensor
    output_counts: torch.Tensor


def gradients(
    layers: list[Layer],
    weights: list[torch.Tensor | None],
    rasters: list[torch.Tensor],
    currents: list[torch.Tensor],
    labels: torch.Tensor,
    sample_weights: torch.Tensor,
    params: ModelParams,
) -> Gradients:
    """The HM2-BP backward pass for one batch (per-sample S-PSPs, mean gradient over the batch).

    Args:
        rasters, currents: what :func:`forward` returned.
        labels: ``[B]`` class indices.
        sample_weights: ``[B]`` boosting weights ``beta_n`` (ALGORITHMS.md 1.8).
    """
    output = rasters[-1]
    counts = output.sum(dim=0)
    d, cost = backprop.margin_error(
        counts, labels, desired=params.desired, undesired=params.undesired, margin=params.margin
    )
    delta = sample_weights[:, None].to(d.dtype) * d
    lam = None
    if params.use_lateral_factor and layers[-1].lateral != 0.0:
        e_lateral = spsp(output, output, **_spsp_options(params), probe=params.silent_post_probe)
        lam = backprop.lateral_factor(e_lateral, counts, labels, layers[-1].vth, -layers[-1].lateral)
    if params.inject_silent_target:
        rasters = [*rasters[:-1], backprop.inject_target_spikes(output, labels, params.desired)]
    grads: list[torch.Tensor | None] = [None] * len(layers)
    for k in range(len(layers) - 1, -1, -1):
        layer, weight, pre, post = layers[k], weights[k], rasters[k], rasters[k + 1]
        steps, batch = pre.shape[:2]
        need_pre_delta = k > 0
        if layer.kind == "pool":
            delta = pool_backward(pre, post, delta, layer.size, params)
            continue
        delta = delta.reshape(batch, -1) / layer.vth if layer.kind == "fc" else delta / layer.vth
        if layer.kind == "fc":
            grad, pre_delta = fc_backward(
                weight,
                pre.reshape(steps, batch, -1),
                post,
                delta,
                layer.vth,
                params,
                lam=lam if k == len(layers) - 1 else None,
                need_pre_delta=need_pre_delta,
                currents=currents[k] if k == 0 else None,
            )
        else:
            grad, pre_delta = conv_backward(
                weight,
                pre,
                post,
                delta.reshape(batch, *layer.out_shape),
                layer.vth,
                params,
                need_pre_delta=need_pre_delta,
            )
        grads[k] = grad + backprop.regulariser_gradient(
            weight, lambda_reg=params.lambda_reg, beta_reg=params.beta_reg, limit=params.weight_limit
        )
        if pre_delta is not None:
            delta = pre_delta.reshape(batch, *layer.in_shape)
    return Gradients(grads, cost, counts)


@dataclass
class AdamState:
    """Adam moments of one weight tensor and the number of updates applied so far."""

    m: torch.Tensor
    v: torch.Tensor
    step: int = 0


def adam_step(
    weight: torch.Tensor,
    grad: torch.Tensor,
    state: AdamState,
    lr: float,
    *,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> tuple[torch.Tensor, AdamState]:
    """One Adam update with bias correction (official ``g_adam_vecAdd``, ALGORITHMS.md 1.7).

    ``m <- b1 m + (1-b1) g``, ``v <- b2 v + (1-b2) g^2``,
    ``w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.
    """
    step = state.step + 1
    m = beta1 * state.m + (1.0 - beta1) * grad
    v = beta2 * state.v + (1.0 - beta2) * grad * grad
    update = lr * (m / (1.0 - beta1**step)) / (torch.sqrt(v / (1.0 - beta2**step)) + eps)
    return weight - update, AdamState(m, v, step)


def learning_rate(base: float, epoch_index: int, decay: bool = True) -> float:
    """Official schedule ``base / sqrt(max(1, e))`` for 0-based epoch ``e`` (main.cpp; ALGORITHMS.md 1.7)."""
    return base / math.sqrt(max(1, epoch_index)) if decay else base
