"""One accelerator run of a network: decisions against the model, the setup and the headline numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from snnbp.yoso.arch import YosoArch
from snnbp.yoso.energy import (
    EnergyParams,
)
from snnbp.yoso.mapping import Mapping
from snnbp.yoso.report import YosoRun, evaluate
from snnbp.yoso.study.networks import TtfsNetwork
from snnbp.yoso.study.params import GROUPS


def run_accelerator(
    net: TtfsNetwork,
    arch: YosoArch,
    energy: EnergyParams,
    *,
    quantise: bool = True,
    pes_per_layer: Sequence[int] | None = None,
) -> YosoRun:
    """:func:`snnbp.yoso.evaluate` of ``net`` on its test images (with their labels)."""
    return evaluate(
        net.weights,
        net.theta,
        net.t_in,
        labels=net.labels,
        arch=arch,
        energy=energy,
        quantise=quantise,
        pes_per_layer=pes_per_layer,
        chunk_size=32 if net.is_convolutional else 64,
        layers=net.layers or None,
    )


def decision_agreement(run: YosoRun, net: TtfsNetwork) -> float:
    """Fraction of images where the accelerator predicts what the trained model predicts (an
    image without an output spike on the accelerator counts as a disagreement)."""
    return float((run.sim.prediction.cpu() == net.model_prediction).double().mean())


SIMULATOR_KEYS = ("pes_used", "leakage_uw", "spikes_per_layer", "no_output_spike", "overflow_risk_neurons", "ops")
"""The simulator's own figures of a run that its record keeps (``simulator`` in ``metrics.json``)."""


def run_summary(net: TtfsNetwork, run: YosoRun) -> dict[str, Any]:
    """A run's headline as JSON-ready data: network and images, the accelerator's accuracy
    (``test_accuracy``), the model's on the same images, their agreement, the checkpoint, power,
    latency, energy and its breakdown, and the simulator's figures (:data:`SIMULATOR_KEYS`)."""
    m = run.metrics
    return {
        "dataset": net.dataset,
        "dataset_key": net.dataset_key,
        "network": net.network,
        "n_images": net.n_images,
        "test_accuracy": m["accuracy"],
        "model_accuracy": net.model_accuracy,
        "agreement": decision_agreement(run, net),
        "checkpoint_epoch": net.epoch,
        "checkpoint_recorded_test_accuracy": net.recorded_test_accuracy,
        "power_mw": m["power_mw"],
        "latency_ms": m["latency_ms"],
        "energy_per_image_uj": m["energy_per_image_uj"],
        "breakdown_uj": m["breakdown_uj"],
        "breakdown_fraction": m["breakdown_fraction"],
        "simulator": {k: m[k] for k in SIMULATOR_KEYS},
    }


def describe_setup(net: TtfsNetwork, arch: YosoArch, mapping: Mapping) -> str:
    """Network, data and accelerator in a few deterministic lines."""
    layers = ", ".join(f"layer {l.index}: {l.n_out} neurons on {len(l.pe_ids)} PE(s)" for l in mapping.layers)
    return "\n".join(
        [
            f"network: ReL-PSP {net.network} (STDBP checkpoint, epoch {net.epoch}), theta {net.theta:g}, t_max {net.t_max:g} ms",
            f"data: {net.dataset} test set, first {net.n_images} images, latency code",
            f"accelerator: {arch.mesh_rows}x{arch.mesh_cols} mesh, {arch.clock_mhz:g} MHz, dt {arch.dt_ms:g} ms, "
            f"{arch.weight_bits}-bit weights, window {arch.t_window_ms:g} ms",
            f"mapping: {layers}; {len(mapping.used_pes)} of {arch.n_pes} PEs used, "
            + ("the others power-gated" if arch.power_gate_unused_pes else "all powered"),
        ]
    )


def headline_lines(run: YosoRun, net: TtfsNetwork) -> str:
    """Accuracy of model and accelerator, their agreement, power, latency and energy, rounded."""
    m = run.metrics
    lines = [
        f"accuracy, trained model (exact spike times): {100 * net.model_accuracy:.2f} %",
        f"accuracy, simulated accelerator: {100 * m['accuracy']:.2f} %",
        f"agreement of the two predictions: {100 * decision_agreement(run, net):.2f} %",
        f"images without an output spike on the accelerator: {100 * m['no_output_spike']:.2f} %",
        f"power: {m['power_mw']:.4g} mW",
        f"latency per image: {m['latency_ms']:.4g} ms",
        f"energy per image: {m['energy_per_image_uj']:.4g} uJ",
    ]
    if net.recorded_test_accuracy is not None:
        lines.insert(
            1, f"  (recorded by the training run on its whole test split: {100 * net.recorded_test_accuracy:.2f} %)"
        )
    return "\n".join(lines)


def fidelity_table(net: TtfsNetwork, run: YosoRun, arch: YosoArch, energy: EnergyParams) -> pd.DataFrame:
    """Accuracy and agreement with the model: the model, the accelerator with float64 weights (time
    quantisation only) and with fixed-point weights (``run``, time + weight quantisation)."""
    exact = run_accelerator(net, arch, energy, quantise=False)
    rows = [("trained model (exact spike times)", net.model_accuracy, 1.0, 0.0)]
    for label, r in (
        (f"accelerator, float64 weights, dt {arch.dt_ms:g} ms", exact),
        (f"accelerator, {arch.weight_bits}-bit weights, dt {arch.dt_ms:g} ms", run),
    ):
        rows.append((label, r.metrics["accuracy"], decision_agreement(r, net), r.metrics["no_output_spike"]))
    return pd.DataFrame(rows, columns=["what", "accuracy", "agreement_with_model", "no_output_spike"])


def breakdown_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """Energy per image by group (uJ and fraction), in :data:`GROUPS` order."""
    return pd.DataFrame(
        {
            "group": list(GROUPS),
            "energy_uj": [metrics["breakdown_uj"][g] for g in GROUPS],
            "fraction": [metrics["breakdown_fraction"][g] for g in GROUPS],
        }
    )
