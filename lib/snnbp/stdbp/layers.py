"""Spike-time layers built on one exact neuron function (ALGORITHMS.md 2.10).

A *neuron function* maps input times ``[B, N_in]`` and weights ``[N_out, N_in]`` to first-spike
times ``[B, N_out]`` (:func:`snnbp.stdbp.relpsp.relpsp_spike_times` or
:func:`snnbp.stdbp.alpha.alpha_spike_times` with their settings bound by :func:`neuron_function`).
A fully connected layer is the neuron function itself; a valid convolution applies it to every
receptive field (unfold) with shared weights; first-spike pooling takes the earliest time of
each window.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F

from snnbp.stdbp.alpha import alpha_spike_times
from snnbp.stdbp.relpsp import relpsp_spike_times

NeuronFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def neuron_function(
    kernel: str, theta: float, *, tau: float = 1.0, clip: float | None = None, chunk: int = 16
) -> NeuronFunction:
    """The exact spike-time function of ``kernel`` ("relpsp" or "alpha") with its settings bound.

    Args:
        kernel: ``"relpsp"`` (ALGORITHMS.md 2.2) or ``"alpha"`` (the comparison kernel).
        theta: firing threshold.
        tau: alpha kernel peak time in ms (unused by ReL-PSP).
        clip: optional cap on ``1 / V'(t_j)`` in the backward.
        chunk: ReL-PSP inputs visited between exact resolutions (speed only).
    """
    if kernel == "relpsp":
        return partial(relpsp_spike_times, theta=theta, clip=clip, chunk=chunk)
    if kernel == "alpha":
        return partial(alpha_spike_times, theta=theta, tau=tau, clip=clip)
    raise ValueError(f"unknown kernel {kernel!r}; expected 'relpsp' or 'alpha'")


CONV_ENGINES = ("auto", "scan", "rows")
"""Engines of ReL-PSP convolutions: ``rows`` (compiled loops per receptive field,
:mod:`snnbp.stdbp.relpsp_rows`, CPU), ``scan`` (the vectorised event scan, any device), ``auto``
(``rows`` on the CPU when numba imports, else ``scan``)."""


def conv_neuron_function(
    kernel: str,
    theta: float,
    *,
    engine: str = "auto",
    device: str = "cpu",
    tau: float = 1.0,
    clip: float | None = None,
    chunk: int = 16,
) -> NeuronFunction:
    """The neuron function of the convolution layers: :func:`neuron_function`, except that the
    ReL-PSP kernel takes the ``engine`` of :data:`CONV_ENGINES` (every engine computes the same
    spike times and gradients, to float rounding).

    Raises:
        ValueError: an unknown engine, or ``rows`` off the CPU.
    """
    if engine not in CONV_ENGINES:
        raise ValueError(f"unknown conv engine {engine!r}; expected one of {', '.join(CONV_ENGINES)}")
    on_cpu = torch.device(device).type == "cpu"
    if engine == "rows" and not on_cpu:
        raise ValueError(f"model.engine 'rows' runs on the CPU only (device {device}); use 'scan' or 'auto'")
    if kernel == "relpsp" and on_cpu and engine != "scan":
        try:
            from snnbp.stdbp.relpsp_rows import relpsp_row_spike_times
        except ImportError:
            if engine == "rows":
                raise
        else:
            return partial(relpsp_row_spike_times, theta=theta, clip=clip)
    return neuron_function(kernel, theta, tau=tau, clip=clip, chunk=chunk)


def time_receptive_fields(t_in: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The input times of every valid ``k x k`` receptive field (stride 1, no padding).

    Shape:
        - t_in: ``[B, C, H, W]``
        - Output: ``[B * H' * W', C * k * k]`` with ``H' = H - k + 1``, rows ordered ``(b, y, x)``.
    """
    patches = F.unfold(t_in, kernel_size)  # [B, C*k*k, L]
    return patches.transpose(1, 2).reshape(-1, patches.shape[1])


def conv_spike_times(t_in: torch.Tensor, weight: torch.Tensor, neuron: NeuronFunction) -> torch.Tensor:
    """Valid spiking convolution: every output location is a neuron over its receptive field.

    ``t[b, o, y, x] = neuron(t_in[b, :, y:y+k, x:x+k], weight[o])`` with shared weights.

    Shape:
        - t_in: ``[B, C, H, W]``; weight: ``[O, C, k, k]``
        - Output: ``[B, O, H - k + 1, W - k + 1]``
    """
    batch, _, height, width = t_in.shape
    out_channels, _, kernel_size, _ = weight.shape
    times = neuron(time_receptive_fields(t_in, kernel_size), weight.reshape(out_channels, -1))
    out_h, out_w = height - kernel_size + 1, width - kernel_size + 1
    return times.reshape(batch, out_h, out_w, out_channels).permute(0, 3, 1, 2)


def first_spike_pool(t_in: torch.Tensor, size: int) -> torch.Tensor:
    """First-spike pooling: the earliest time in each ``size x size`` window (stride ``size``).

    ``-maxpool(-t)``; the gradient goes to the earliest input of the window (the first one in
    row-major order on ties). Windows that do not fit are dropped (floor).

    Shape:
        - t_in: ``[B, C, H, W]``
        - Output: ``[B, C, H // size, W // size]``
    """
    return -F.max_pool2d(-t_in, size)
