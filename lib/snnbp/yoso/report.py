"""One call from trained weights to the accelerator's accuracy, energy and latency (ALGORITHMS.md 3.6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnbp.yoso.arch import DEFAULT_PARAMS, YosoArch, load_arch
from snnbp.yoso.conv import layer_outputs
from snnbp.yoso.energy import EnergyParams, EnergyReport, energy_report, load_energy, paper_ratio
from snnbp.yoso.mapping import Mapping, Wiring, map_conv_network, map_network
from snnbp.yoso.sim import SimResult, overflow_risk, simulate, to_hardware


@dataclass(frozen=True)
class YosoRun:
    """Everything one evaluation produced.

    Attributes:
        metrics: flat summary (see :func:`evaluate`).
        sim: spike times, predictions, counts.
        energy: per-image energy by group.
        mapping: the placement used.
    """

    metrics: dict[str, Any]
    sim: SimResult
    energy: EnergyReport
    mapping: Mapping


def evaluate(
    weights: Sequence[torch.Tensor | np.ndarray],
    thetas: Sequence[float] | float,
    t_in: torch.Tensor,
    *,
    labels: torch.Tensor | None = None,
    arch: YosoArch | None = None,
    energy: EnergyParams | None = None,
    params_path: str | Path = DEFAULT_PARAMS,
    quantise: bool = True,
    pes_per_layer: Sequence[int] | None = None,
    chunk_size: int = 64,
    layers: Sequence[Wiring | int] | None = None,
) -> YosoRun:
    """Map, simulate and cost a trained ReL-PSP network on a batch of inputs.

    Args:
        weights: per layer ``[N_out, N_in]`` (model units; a convolution's unrolled matrix).
        thetas: threshold per layer (or one for all).
        t_in: latency-coded inputs in ms, ``inf`` for silent inputs.
        labels: optional ``[B]`` class labels (adds ``accuracy``).
        arch, energy: override the ones read from ``params_path``.
        params_path: YOSO params file.
        quantise: fixed-point weights (``arch.weight_bits``).
        pes_per_layer: optional explicit PE count per layer.
        chunk_size: samples simulated together.
        layers: for a CNN, the :class:`~snnbp.yoso.mapping.Wiring` or width of each weight layer
            (:func:`snnbp.yoso.conv.cnn_layers`); None for a fully connected network.

    Returns:
        :class:`YosoRun` whose ``metrics`` holds ``power_mw``, ``latency_ms``,
        ``energy_per_image_uj``, ``breakdown_uj``, ``breakdown_fraction``, the ratios to the paper
        (``power_ratio``, ``latency_ratio``, ``energy_ratio``), ``n_images``, ``pes_used``,
        ``leakage_uw``, ``spikes_per_layer`` (mean per image), ``no_output_spike`` (fraction),
        ``overflow_risk_neurons`` (fraction whose fixed-point state could overflow for some
        input), ``ops`` (mean per-image totals of every counter) and ``accuracy`` when labels are given.

    Shape:
        - t_in: ``[B, N_0]``; labels: ``[B]``.
    """
    arch = arch if arch is not None else load_arch(params_path)
    energy = energy if energy is not None else load_energy(params_path)
    if layers is None:
        net = to_hardware(weights, thetas, arch, quantise=quantise, device=t_in.device)
        mapping = map_network(net.layer_sizes, arch, pes_per_layer)
    else:
        outputs = layer_outputs(layers)
        net = to_hardware(weights, thetas, arch, quantise=quantise, device=t_in.device, outputs=outputs)
        mapping = map_conv_network(int(t_in.shape[1]), layers, arch, pes_per_layer)
    sim = simulate(net, mapping, t_in, chunk_size=chunk_size)
    report = energy_report(sim.counts, mapping, energy)
    metrics = report.metrics()
    metrics.update(paper_ratio(metrics))
    metrics.update(
        {
            "n_images": int(t_in.shape[0]),
            "pes_used": len(mapping.used_pes),
            "leakage_uw": report.leakage_uw,
            "spikes_per_layer": [float(torch.isfinite(t).sum(1).double().mean()) for t in sim.spike_times],
            "no_output_spike": float((sim.prediction < 0).double().mean()),
            "overflow_risk_neurons": float(torch.cat(overflow_risk(net, arch)).double().mean()),
            "ops": sim.counts.mean_totals(),
        }
    )
    if labels is not None:
        metrics["accuracy"] = float((sim.prediction.cpu() == labels.cpu()).double().mean())
    return YosoRun(metrics, sim, report, mapping)
