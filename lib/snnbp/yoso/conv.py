"""Spiking CNNs on the accelerator: convolution + first-spike pooling as sparse layers.

A valid, stride-1 convolution ``[O, C, k, k]`` on ``C x H x W`` input maps followed by first-spike
pooling of ``p x p`` windows (ALGORITHMS.md 2.8) becomes one hardware layer (:class:`Wiring`):

* neuron ``(o, y, x)`` of the convolution, ``y < p * floor(H' / p)`` and the same for ``x`` (the
  positions no pooling window covers feed nothing and are not placed), numbered window by window:
  ``n = ((wy * W_p + wx) * p * p + dy * p + dx) * O + o`` with ``y = wy p + dy``, ``x = wx p + dx``;
* its inputs ``(c, y + ky, x + kx)`` in the model's flattened order ``c H W + (y + ky) W + x + kx``;
* its spike belongs to pooled neuron ``(o, wy, wx)``, flattened ``o H_p W_p + wy W_p + wx``: the
  pooled spike time is the earliest of the window, ``t_pool = min_(dy, dx) t_(o, wy p + dy, wx p + dx)``.

Spike times are those of the fully connected layer with the unrolled weight matrix
(:func:`unroll_conv`: ``W[n, i] = w[o, c, ky, kx]`` for each connection, zero elsewhere), so the
simulator's closed-form first crossings (:func:`snnbp.yoso.sim.first_crossing_steps`) and their
quantisation bound hold unchanged; the mapping and the cost model use the connections only
(:mod:`snnbp.yoso.mapping`, :func:`snnbp.yoso.counts.sparse_work`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from snnbp.yoso.mapping import Wiring


def conv_pool_wiring(in_shape: tuple[int, int, int], out_channels: int, kernel: int, pool: int) -> Wiring:
    """The connections of a valid convolution followed by ``pool x pool`` first-spike pooling.

    Args:
        in_shape: ``(C, H, W)`` of the input maps.
        out_channels: ``O``.
        kernel: ``k`` (square, stride 1, no padding).
        pool: ``p`` (square windows, stride ``p``).

    Raises:
        ValueError: a kernel or pooling window that leaves no output.
    """
    channels, height, width = in_shape
    conv_h, conv_w = height - kernel + 1, width - kernel + 1
    pool_h, pool_w = conv_h // pool if pool else 0, conv_w // pool if pool else 0
    if kernel < 1 or pool < 1 or pool_h < 1 or pool_w < 1:
        raise ValueError(f"a {kernel}x{kernel} convolution and {pool}x{pool} pooling leave no output of {in_shape}")
    wy, wx, dy, dx, o = np.meshgrid(
        np.arange(pool_h), np.arange(pool_w), np.arange(pool), np.arange(pool), np.arange(out_channels), indexing="ij"
    )
    y, x = (wy * pool + dy).ravel(), (wx * pool + dx).ravel()
    emitter = (o.ravel() * pool_h + wy.ravel()) * pool_w + wx.ravel()
    n_out = emitter.shape[0]
    c, ky, kx = (
        g.ravel() for g in np.meshgrid(np.arange(channels), np.arange(kernel), np.arange(kernel), indexing="ij")
    )
    pre = c[None, :] * height * width + (y[:, None] + ky[None, :]) * width + (x[:, None] + kx[None, :])
    post = np.repeat(np.arange(n_out), channels * kernel * kernel)
    return Wiring(
        pre=pre.ravel().astype(np.int64),
        post=post.astype(np.int64),
        emitter=emitter.astype(np.int64),
        n_emitters=out_channels * pool_h * pool_w,
        window=pool * pool * out_channels,
        emitters_per_window=out_channels,
        weight_rows=channels,
        row_weights=kernel * kernel * out_channels,
    )


def unroll_conv(weight: torch.Tensor, wiring: Wiring, n_inputs: int) -> torch.Tensor:
    """The dense weight matrix of a convolution's :class:`Wiring` (zero where not connected).

    Shape:
        - weight: ``[O, C, k, k]``.
        - Output: ``[n_out, n_inputs]`` float64, rows in the wiring's neuron order.
    """
    out_channels, channels, kernel, _ = weight.shape
    per_neuron = channels * kernel * kernel
    dense = torch.zeros(wiring.n_out, n_inputs, dtype=torch.float64, device=weight.device)
    channel_of = torch.as_tensor(np.arange(wiring.n_out) % out_channels, device=weight.device)
    values = weight.detach().to(torch.float64).reshape(out_channels, per_neuron)[channel_of].reshape(-1)
    post = torch.as_tensor(wiring.post, device=weight.device)
    pre = torch.as_tensor(wiring.pre, device=weight.device)
    dense[post, pre] = values
    return dense


def layer_outputs(layers: Sequence[Wiring | int]) -> list[int]:
    """Spiking outputs of each weight layer: the pooled neurons of a :class:`Wiring`, else the width."""
    return [layer if isinstance(layer, int) else layer.n_emitters for layer in layers]


def cnn_layers(
    kinds: Sequence[str],
    sizes: Sequence[int],
    kernels: Sequence[int],
    weights: Sequence[torch.Tensor],
    input_shape: tuple[int, int],
) -> tuple[list[torch.Tensor], list[Wiring | int]]:
    """A first-spike CNN (``conv``, ``pool``, ``fc`` layers as in :mod:`snnbp.stdbp.model`) as the
    accelerator's weight layers: each ``conv`` + ``pool`` pair one sparse layer, each ``fc`` one
    fully connected layer.

    Args:
        kinds: ``"conv"``, ``"pool"`` or ``"fc"`` per layer; every ``conv`` is followed by a ``pool``.
        sizes: output channels (conv), window (pool) or width (fc), per layer.
        kernels: kernel size per layer (conv; ignored otherwise).
        weights: one per conv and fc layer, in order.
        input_shape: ``(H, W)``.

    Returns:
        ``(dense weights, layers)``: per weight layer the ``[n_out, n_in]`` float64 matrix and the
        :class:`Wiring` (sparse) or the width (fully connected), for
        :func:`snnbp.yoso.sim.to_hardware` and :func:`snnbp.yoso.mapping.map_conv_network`.

    Raises:
        ValueError: a convolution not followed by pooling, or weights that do not match.
    """
    shape: tuple[int, ...] = (1, *input_shape)
    dense, layers = [], []
    remaining = iter(weights)
    index = 0
    while index < len(kinds):
        kind = kinds[index]
        weight = next(remaining)
        if kind == "conv":
            if index + 1 >= len(kinds) or kinds[index + 1] != "pool":
                raise ValueError(f"layer {index + 1}: a convolution must be followed by pooling on the accelerator")
            if tuple(weight.shape) != (sizes[index], shape[0], kernels[index], kernels[index]):
                raise ValueError(f"layer {index + 1}: weight {tuple(weight.shape)} does not match the architecture")
            wiring = conv_pool_wiring(shape, sizes[index], kernels[index], sizes[index + 1])
            dense.append(unroll_conv(weight, wiring, math.prod(shape)))
            layers.append(wiring)
            conv_h = shape[1] - kernels[index] + 1
            conv_w = shape[2] - kernels[index] + 1
            shape = (sizes[index], conv_h // sizes[index + 1], conv_w // sizes[index + 1])
            index += 2
        elif kind == "fc":
            dense.append(weight.detach().to(torch.float64).reshape(weight.shape[0], -1))
            layers.append(int(weight.shape[0]))
            shape = (int(weight.shape[0]),)
            index += 1
        else:
            raise ValueError(f"layer {index + 1}: pooling without a convolution before it")
    return dense, layers
