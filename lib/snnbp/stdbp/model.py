"""Spiking networks of exact first-spike neurons: architecture, initialisation, forward pass.

An architecture is a tuple of :class:`LayerSpec` (valid convolutions each followed by first-spike
pooling, then fully connected layers). All weighted layers use the same neuron function
(:mod:`snnbp.stdbp.layers`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from snnbp.notation import conv_name, input_map_name, layer_sizes_name, parse_layer, pool_name
from snnbp.stdbp.layers import NeuronFunction, conv_spike_times, first_spike_pool, time_receptive_fields


@dataclass(frozen=True)
class LayerSpec:
    """One layer.

    Attributes:
        kind: ``"conv"``, ``"pool"`` or ``"fc"``.
        size: output channels (conv), window (pool) or output neurons (fc).
        kernel: convolution kernel size (conv only).
    """

    kind: str
    size: int
    kernel: int = 0


def architecture(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    conv_channels: tuple[int, ...] = (),
    conv_kernel: int = 5,
    pool_size: int = 2,
    hidden: tuple[int, ...] = (800,),
    layers: tuple[str, ...] = (),
) -> tuple[LayerSpec, ...]:
    """``conv -> pool`` for each of ``conv_channels``, then ``hidden`` fc layers, then the output;
    or, when ``layers`` is given (:data:`snnbp.notation.LAYER_TOKEN`, e.g. ``("16C3", "P2", "128")``),
    those layers in order, then the output.

    Shape:
        - input_shape: ``(H, W)`` images (or ``(N,)`` vectors when there are no conv layers).

    Raises:
        ValueError: convolutions on flat inputs, ``layers`` together with ``conv_channels``, a
            malformed token, or a convolution or pooling after a fully connected layer.
    """
    if layers and conv_channels:
        raise ValueError(
            "model.layers replaces conv_channels, conv_kernel, pool_size and hidden: give one or the other"
        )
    if layers:
        specs = []
        for token in layers:
            try:
                parsed = parse_layer(token)
            except ValueError as exc:
                raise ValueError(f"model.layers: {exc}") from exc
            if parsed.kind != "fc" and any(spec.kind == "fc" for spec in specs):
                raise ValueError(f"model.layers: {token!r} comes after a fully connected layer")
            specs.append(LayerSpec(parsed.kind, parsed.size, parsed.kernel))
    else:
        specs = []
        for channels in conv_channels:
            specs += [LayerSpec("conv", channels, conv_kernel), LayerSpec("pool", pool_size)]
        specs += [LayerSpec("fc", width) for width in hidden]
    if any(spec.kind != "fc" for spec in specs) and len(input_shape) != 2:
        raise ValueError(f"convolutions need image inputs (H, W), got input shape {input_shape}")
    return (*specs, LayerSpec("fc", num_classes))


def layer_shapes(specs: tuple[LayerSpec, ...], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The per-sample output shape of every layer (``(C, H, W)`` maps, ``(N,)`` vectors).

    Raises:
        ValueError: when a convolution or pooling no longer fits.
    """
    shape: tuple[int, ...] = (1, *input_shape) if any(s.kind == "conv" for s in specs) else (math.prod(input_shape),)
    shapes = []
    for spec in specs:
        if spec.kind == "conv":
            shape = (spec.size, shape[1] - spec.kernel + 1, shape[2] - spec.kernel + 1)
        elif spec.kind == "pool":
            shape = (shape[0], shape[1] // spec.size, shape[2] // spec.size)
        else:
            shape = (spec.size,)
        if min(shape) < 1:
            raise ValueError(f"layer {spec} leaves an empty map (shape {shape})")
        shapes.append(shape)
    return shapes


def network_name(specs: tuple[LayerSpec, ...], input_shape: tuple[int, ...]) -> str:
    """E.g. ``"784-800-10"`` or ``"28x28-16C3-P2-32C3-P2-800-128-10"`` (``800`` = the flatten size)."""
    shapes = layer_shapes(specs, input_shape)
    if not any(s.kind == "conv" for s in specs):
        return layer_sizes_name((math.prod(input_shape), *(s.size for s in specs)))
    parts = [input_map_name(input_shape)]
    for index, spec in enumerate(specs):
        if spec.kind == "conv":
            parts.append(conv_name(spec.size, spec.kernel))
        elif spec.kind == "pool":
            parts.append(pool_name(spec.size))
        else:
            if index > 0 and specs[index - 1].kind != "fc":
                parts.append(str(math.prod(shapes[index - 1])))
            parts.append(str(spec.size))
    return "-".join(parts)


def fan_in(spec: LayerSpec, in_shape: tuple[int, ...]) -> int:
    """Inputs per neuron of a weighted layer."""
    return in_shape[0] * spec.kernel * spec.kernel if spec.kind == "conv" else math.prod(in_shape)


def init_weights(
    specs: tuple[LayerSpec, ...],
    input_shape: tuple[int, ...],
    *,
    scale: float,
    init_mean: float,
    init_std: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> list[torch.Tensor]:
    """Gaussian weights ``w ~ scale * (init_mean + init_std * z) / sqrt(fan_in)``, one per weighted layer.

    ``scale = theta / t_max`` makes the typical slope of a neuron, and so its first-spike time,
    independent of the chosen time unit; a positive ``init_mean`` makes most neurons fire at the
    start (their causal weight sum is positive).

    Shape:
        - Output: ``[O, C, k, k]`` for conv layers, ``[N_out, N_in]`` for fc layers.
    """
    weights = []
    shape: tuple[int, ...] = (1, *input_shape) if any(s.kind == "conv" for s in specs) else (math.prod(input_shape),)
    for spec, out_shape in zip(specs, layer_shapes(specs, input_shape)):
        if spec.kind != "pool":
            n_in = fan_in(spec, shape)
            size = (spec.size, shape[0], spec.kernel, spec.kernel) if spec.kind == "conv" else (spec.size, n_in)
            z = torch.randn(size, generator=generator, dtype=dtype, device=device)
            weights.append(scale * (init_mean + init_std * z) / math.sqrt(n_in))
        shape = out_shape
    return weights


def silence_neurons(times: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Dropout for first-spike times: every neuron of every sample is silenced (its time set to
    ``inf``, it never fires) with ``probability``, independently; kept times pass unchanged and
    carry their gradient, silenced ones carry none.

    The keep mask is drawn on the CPU from ``generator`` (so a run resumes with the same masks on
    any device).

    Shape:
        - times: ``[B, N]``; output: the same.
    """
    keep = torch.rand(times.shape, generator=generator) >= probability
    return torch.where(keep.to(times.device), times, torch.full_like(times, math.inf))


def forward(
    t_in: torch.Tensor,
    specs: tuple[LayerSpec, ...],
    weights: list[torch.Tensor],
    neuron: NeuronFunction,
    conv_neuron: NeuronFunction | None = None,
    *,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Spike times of every layer, in order; the last entry is the output layer ``[B, classes]``.

    Convolutions use ``conv_neuron`` when given (another engine of the same neuron), else ``neuron``.
    ``dropout > 0`` (training only; needs ``generator``): the neurons of every fully connected hidden
    layer are silenced with that probability (:func:`silence_neurons`), and the next fully connected
    layer weighs the kept ones by ``w / (1 - dropout)``, so that its expected membrane potential
    (ALGORITHMS.md 2.2: linear in the weights) is the one without dropout (inverted dropout). The returned
    times of such a layer are the ones after silencing.

    Shape:
        - t_in: ``[B, H, W]`` images of times or ``[B, N]``; conv layers give ``[B, C, H', W']``,
          pooling ``[B, C, H'', W'']``, fc layers ``[B, N]``.
    """
    if dropout > 0 and generator is None:
        raise ValueError("dropout needs a generator for its masks")
    times = t_in[:, None] if specs[0].kind == "conv" else t_in.reshape(t_in.shape[0], -1)
    outputs = []
    remaining = iter(weights)
    kept_scale = 1.0
    for index, spec in enumerate(specs):
        if spec.kind == "conv":
            times = conv_spike_times(times, next(remaining), conv_neuron or neuron)
        elif spec.kind == "pool":
            times = first_spike_pool(times, spec.size)
        else:
            weight = next(remaining)
            times = neuron(times.reshape(times.shape[0], -1), weight * kept_scale if kept_scale != 1.0 else weight)
            kept_scale = 1.0
            if dropout > 0 and index < len(specs) - 1:
                times = silence_neurons(times, dropout, generator)
                kept_scale = 1.0 / (1.0 - dropout)
        outputs.append(times)
    return outputs


def weighted_layer_io(
    t_in: torch.Tensor, specs: tuple[LayerSpec, ...], weights: list[torch.Tensor], outputs: list[torch.Tensor]
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(inputs [R, N_in], weight [N_out, N_in], outputs [R, N_out])`` of every weighted layer.

    Conv layers are given per receptive field (``R = B * H' * W'``), fc layers per sample.
    """
    previous = t_in[:, None] if specs[0].kind == "conv" else t_in.reshape(t_in.shape[0], -1)
    result = []
    remaining = iter(weights)
    for spec, times in zip(specs, outputs):
        if spec.kind == "conv":
            weight = next(remaining)
            flat_out = times.permute(0, 2, 3, 1).reshape(-1, spec.size)
            result.append((time_receptive_fields(previous, spec.kernel), weight.reshape(spec.size, -1), flat_out))
        elif spec.kind == "fc":
            result.append((previous.reshape(previous.shape[0], -1), next(remaining), times))
        previous = times
    return result
