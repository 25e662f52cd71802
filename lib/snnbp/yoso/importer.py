"""Time-to-first-spike networks trained elsewhere, on the YOSO model: plain weight matrices, or a
snntorch ``nn.Sequential`` of ``nn.Linear`` and non-leaky ``snn.Leaky(beta=1)`` layers.

**Plain matrices** (:func:`from_matrices`): ``W_l`` of shape ``[N_l, N_{l-1}]`` and a threshold per
layer, in the ReL-PSP model's units: a neuron's potential is ``V(t) = sum_i w_i max(0, t - t_i)``
(t in ms) and it fires once, the first time ``V >= theta``.

**snntorch** (:func:`from_snntorch`). A ``Leaky`` with ``beta = 1`` integrates its input current
without leak, ``mem[n] = mem[n-1] + W x[n]``, and spikes when ``mem > threshold``. The accelerator
runs such a network in the *spike-and-hold* convention: a neuron's output stays 1 from its first
spike on (``x[n] = 1`` for ``n >= k``), so each input spike adds its weight to the slope and the
membrane ramps, which is the ReL-PSP neuron on a grid of ``dt`` ms. Then
``mem[n] = sum_i w_i (n - k_i + 1)^+`` and the threshold in model units is
``theta = threshold * dt``. :func:`held_spike_steps` runs an snntorch model in this convention
(the reference the accelerator is tested against, and what to train with): the accelerator
fires layer ``l`` exactly ``l`` steps after it (each layer adds one step of pipeline delay), so
every output neuron is delayed alike and the first-spike class is the same, ties aside (the
accelerator fires at ``V >= theta``, snntorch at ``mem > threshold``).

Only what the accelerator implements is accepted: no bias (a constant current would make every
neuron integrate from step 0), no leak (``beta != 1``), one threshold per layer. Nothing here
imports snntorch: the layers are recognised by their class name and attributes.

Shapes: spike times ``[B, N]`` in ms with ``inf`` for no spike; spike steps the same, in steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from snnbp.notation import layer_sizes_name
from snnbp.yoso.arch import YosoArch
from snnbp.yoso.energy import EnergyParams
from snnbp.yoso.report import YosoRun, evaluate
from snnbp.yoso.sim import checked_thresholds


@dataclass(frozen=True)
class TtfsImport:
    """A network ready for :func:`evaluate_import`.

    Attributes:
        weights: per layer ``[N_out, N_in]`` float64 (model units).
        thetas: per layer threshold (model units: potential in weight x ms).
        source: where it came from, e.g. ``"matrices"`` or ``"snntorch (dt 0.1 ms)"``.
    """

    weights: tuple[torch.Tensor, ...]
    thetas: tuple[float, ...]
    source: str

    @property
    def network(self) -> str:
        """Layer sizes, e.g. ``"784-100-10"``."""
        return layer_sizes_name([self.weights[0].shape[1]] + [w.shape[0] for w in self.weights])


def from_matrices(weights: Sequence[torch.Tensor | np.ndarray], thetas: Sequence[float] | float) -> TtfsImport:
    """Check plain weight matrices and thresholds (module docstring) and hold them as float64.

    Raises:
        ValueError: no layer, a matrix that is not 2-D or not finite, shapes that do not chain, a
            threshold count that does not match, or a threshold <= 0.
    """
    mats = [torch.as_tensor(w).detach().to(torch.float64).cpu() for w in weights]
    if not mats:
        raise ValueError("no weight matrix given")
    values = checked_thresholds(mats, thetas)
    for l, w in enumerate(mats, start=1):
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"layer {l}: weight holds NaN or inf")
    return TtfsImport(tuple(mats), tuple(values), "matrices")


def _is_leaky(module: Any) -> bool:
    return type(module).__name__ == "Leaky" and hasattr(module, "beta") and hasattr(module, "threshold")


def _scalar(value: Any, what: str, index: int) -> float:
    tensor = torch.as_tensor(value, dtype=torch.float64).flatten()
    if tensor.numel() == 0 or not bool((tensor == tensor[0]).all()):
        raise ValueError(f"layer {index}: {what} must be one value per layer, got {tensor.tolist()}")
    return float(tensor[0])


def snntorch_layers(model: Any) -> list[tuple[torch.Tensor, float]]:
    """``(weight, snntorch threshold)`` of each ``Linear`` + ``Leaky(beta=1)`` pair of ``model``.

    Raises:
        ValueError: another kind of module, a Linear without its Leaky (or the reverse), a bias
            that is not zero, a ``beta`` other than 1, or a threshold <= 0; each names the module.
    """
    modules = list(model.children()) if hasattr(model, "children") else list(model)
    if not modules or len(modules) % 2:
        raise ValueError(
            f"expected Linear, Leaky pairs, got {len(modules)} modules: {[type(m).__name__ for m in modules]}"
        )
    layers = []
    for index in range(0, len(modules), 2):
        linear, leaky = modules[index], modules[index + 1]
        position = index // 2 + 1
        if not isinstance(linear, torch.nn.Linear) or not _is_leaky(leaky):
            raise ValueError(
                f"layer {position}: expected Linear then Leaky, got {type(linear).__name__} then "
                f"{type(leaky).__name__} (modules {index} and {index + 1})"
            )
        if linear.bias is not None and bool((linear.bias != 0).any()):
            raise ValueError(f"layer {position}: Linear has a non-zero bias; the accelerator has none (use bias=False)")
        beta = _scalar(leaky.beta, "beta", position)
        if beta != 1.0:
            raise ValueError(
                f"layer {position}: Leaky beta is {beta:g}; only non-leaky neurons (beta=1) are "
                "time-to-first-spike ReL-PSP neurons"
            )
        threshold = _scalar(leaky.threshold, "threshold", position)
        if not threshold > 0:
            raise ValueError(f"layer {position}: threshold must be > 0, got {threshold}")
        layers.append((linear.weight.detach().to(torch.float64).cpu(), threshold))
    return layers


def from_snntorch(model: Any, dt_ms: float) -> TtfsImport:
    """An snntorch ``nn.Sequential`` of ``Linear`` + ``Leaky(beta=1)`` pairs whose time step is
    ``dt_ms``, as ReL-PSP weights and thresholds (``theta = threshold * dt``; module docstring).

    Raises:
        ValueError: see :func:`snntorch_layers`; ``dt_ms`` <= 0.
    """
    if not dt_ms > 0:
        raise ValueError(f"dt_ms must be > 0, got {dt_ms}")
    layers = snntorch_layers(model)
    net = from_matrices([w for w, _ in layers], [threshold * dt_ms for _, threshold in layers])
    return TtfsImport(net.weights, net.thetas, f"snntorch (dt {dt_ms:g} ms)")


def held_spike_steps(model: Any, k_in: torch.Tensor, n_steps: int) -> list[torch.Tensor]:
    """Run an snntorch ``Linear`` + ``Leaky(beta=1)`` model (``init_hidden=True``) in the
    spike-and-hold convention for ``n_steps`` steps and return each layer's first-spike step.

    Every ``Leaky`` is reset first (``reset_mem``); the input of step ``n`` is ``1`` where
    ``k_in <= n``; each layer's output is held from its first spike on.

    Shape:
        - k_in: ``[B, N_0]`` input spike steps (``inf``: none).
        - Output: per layer ``[B, N_l]`` float64 first-spike steps (``inf``: none in the window).
    """
    modules = list(model.children())
    snntorch_layers(model)  # the same checks as the import
    for module in modules:
        if _is_leaky(module):
            module.reset_mem()
    dtype = next(modules[0].parameters()).dtype
    first = [None] * (len(modules) // 2)
    held = [None] * (len(modules) // 2)
    for n in range(n_steps):
        x = (k_in <= n).to(dtype)
        for l in range(len(first)):
            spikes = modules[2 * l + 1](modules[2 * l](x)).to(dtype)
            held[l] = spikes if held[l] is None else torch.maximum(held[l], spikes)
            if first[l] is None:
                first[l] = torch.full(spikes.shape, float("inf"), dtype=torch.float64)
            first[l] = torch.where((held[l] > 0) & torch.isinf(first[l]), torch.full_like(first[l], float(n)), first[l])
            x = held[l]
    return first


def evaluate_import(
    net: TtfsImport,
    t_in: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    arch: YosoArch | None = None,
    energy: EnergyParams | None = None,
    quantise: bool = True,
    chunk_size: int = 64,
) -> YosoRun:
    """:func:`snnbp.yoso.evaluate` of an imported network: accuracy (with ``labels``), energy by
    component, latency and operation counts. For an snntorch import, ``arch.dt_ms`` must be the
    ``dt_ms`` it was imported with (one snntorch step = one accelerator step).

    Shape:
        - t_in: ``[B, N_0]`` input spike times in ms (``inf``: silent); labels ``[B]``.
    """
    if t_in.ndim != 2 or t_in.shape[1] != net.weights[0].shape[1]:
        raise ValueError(
            f"t_in must be [B, {net.weights[0].shape[1]}] for network {net.network}, got {tuple(t_in.shape)}"
        )
    return evaluate(
        net.weights,
        net.thetas,
        t_in.to(torch.float64),
        labels=labels,
        arch=arch,
        energy=energy,
        quantise=quantise,
        chunk_size=chunk_size,
    )
