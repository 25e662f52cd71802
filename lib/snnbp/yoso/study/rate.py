"""The HM2-BP rate-coded network of the same size through the same cost model, against the temporal one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.hm2bp.export import fc_layer_sizes, spike_rasters
from snnbp.learner import Batch
from snnbp.progress import bar as progress_bar
from snnbp.yoso.arch import YosoArch
from snnbp.yoso.counts import Counts, concat_counts, rate_coded_counts
from snnbp.yoso.energy import (
    EnergyParams,
    EnergyReport,
    energy_report,
)
from snnbp.yoso.mapping import Mapping, map_network
from snnbp.yoso.report import YosoRun
from snnbp.yoso.study.networks import restore_checkpoint
from snnbp.yoso.study.params import GROUPS
from snnbp.yoso.study.sweeps import spikes_processed


@dataclass(frozen=True)
class RateRun:
    """The HM2-BP rate-coded network's spikes through the accelerator's cost model.

    Attributes:
        counts: operation counts (whole window).
        energy: per-image energy by group.
        mapping: the placement (the same layer sizes, the same arch as the temporal network).
        metrics: ``power_mw``, ``latency_ms``, ``energy_per_image_uj``, ``breakdown_uj``,
            ``breakdown_fraction``, ``accuracy`` (the HM2-BP model's, spike-count arg-max),
            ``n_images``, ``time_steps``, ``spikes_per_layer`` (mean per image, input first).
        network: e.g. ``"784-800-10"``.
    """

    counts: Counts
    energy: EnergyReport
    mapping: Mapping
    metrics: dict[str, Any]
    network: str


def evaluate_rate_coded(
    checkpoint: str | Path,
    n_images: int,
    arch: YosoArch,
    energy: EnergyParams,
    *,
    test: tuple[LabelledSplit, DatasetInfo] | None = None,
    chunk_size: int = 50,
    progress: bool = True,
) -> RateRun:
    """Run an HM2-BP checkpoint's LIF network on its fixed rate code of the first ``n_images`` test
    images and charge its spike rasters on the accelerator (:func:`snnbp.yoso.rate_coded_counts`).

    The function (spike rasters, prediction) is the HM2-BP model's own; the accelerator only adds
    the cost of those spikes (one raster step = one accelerator time step, every neuron swept at
    every step, the whole window processed). Images go through in chunks (rasters are
    ``[T, chunk, N]``); ``progress``: a bar over the chunks (:mod:`snnbp.progress`).

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: not an HM2-BP checkpoint, or a network with convolution or pooling layers.
    """
    _, _, learner, split, _ = restore_checkpoint(checkpoint, "hm2bp", test, n_images)
    try:
        sizes = fc_layer_sizes(learner)
    except ValueError as exc:
        raise ValueError(f"{checkpoint}: {exc}; the simulator maps FC layers only") from exc
    mapping = map_network(sizes, arch)
    parts, correct, spikes = [], 0.0, torch.zeros(len(sizes), dtype=torch.float64)
    starts = range(0, len(split), chunk_size)
    for start in progress_bar(starts, progress=progress, desc="rate-coded HM2-BP", leave=False):
        index = torch.arange(start, min(start + chunk_size, len(split)))
        batch = Batch(split.inputs[index], split.labels[index], index, "test")
        rasters = spike_rasters(learner, batch)
        parts.append(rate_coded_counts(rasters, mapping))
        correct += float((rasters[-1].sum(0).argmax(1) == batch.labels).sum())
        spikes += torch.stack([r.sum((0, 2)).double() for r in rasters], 1).sum(0)
    counts = concat_counts(parts)
    report = energy_report(counts, mapping, energy)
    metrics = report.metrics()
    metrics.update(
        accuracy=correct / len(split),
        n_images=len(split),
        time_steps=int(learner.model.time_steps),
        spikes_per_layer=(spikes / len(split)).tolist(),
    )
    return RateRun(counts, report, mapping, metrics, learner.network)


def rate_vs_temporal(temporal: YosoRun, temporal_network: str, rate: RateRun) -> pd.DataFrame:
    """One row per coding: accuracy, spikes processed per image by layer, energy (total and by
    group, uJ), latency (ms) and power (mW).

    Raises:
        ValueError: the two runs cover different numbers of images or different layer sizes.
    """
    if temporal.metrics["n_images"] != rate.metrics["n_images"]:
        raise ValueError(
            f"temporal run on {temporal.metrics['n_images']} images, rate run on {rate.metrics['n_images']}"
        )
    if temporal_network != rate.network:
        raise ValueError(f"the codings must run networks of the same size, got {temporal_network} and {rate.network}")
    rows = []
    for coding, counts, mapping, metrics in (
        ("temporal (ReL-PSP, TTFS)", temporal.sim.counts, temporal.mapping, temporal.metrics),
        ("rate (HM2-BP)", rate.counts, rate.mapping, rate.metrics),
    ):
        spikes = spikes_processed(counts, mapping).mean(0).tolist()
        row = {
            "coding": coding,
            "network": temporal_network,
            "n_images": int(counts.cycles.shape[0]),
            "accuracy": metrics["accuracy"],
            "input_spikes": spikes[0],
            "hidden_spikes": sum(spikes[1:-1]),
            "output_spikes": spikes[-1],
            "energy_per_image_uj": metrics["energy_per_image_uj"],
            "latency_ms": metrics["latency_ms"],
            "power_mw": metrics["power_mw"],
        }
        row.update({f"{g}_uj": metrics["breakdown_uj"][g] for g in GROUPS})
        rows.append(row)
    return pd.DataFrame(rows)


def rate_ratio_lines(frame: pd.DataFrame) -> str:
    """The rate-coded network's energy, latency and spikes over the temporal one's, rounded."""
    temporal, rate = frame.iloc[0], frame.iloc[1]
    spikes = [row.input_spikes + row.hidden_spikes + row.output_spikes for row in (rate, temporal)]
    return "\n".join(
        [
            f"energy per image: rate {rate.energy_per_image_uj:.4g} uJ / temporal {temporal.energy_per_image_uj:.4g} uJ "
            f"= {rate.energy_per_image_uj / temporal.energy_per_image_uj:.3g} x",
            f"latency per image: {rate.latency_ms / temporal.latency_ms:.3g} x",
            f"spikes processed per image (input + hidden + output): {spikes[0]:.0f} vs {spikes[1]:.0f}",
            f"accuracy on these {int(temporal.n_images)} images: rate {100 * rate.accuracy:.2f} %, "
            f"temporal {100 * temporal.accuracy:.2f} %",
        ]
    )
