"""Sweeps over mesh size and network size, and per-image energy against spike counts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from snnbp.progress import bar as progress_bar
from snnbp.yoso.arch import YosoArch, with_changes
from snnbp.yoso.counts import Counts
from snnbp.yoso.energy import (
    EnergyParams,
)
from snnbp.yoso.mapping import Mapping, MappingError, map_network
from snnbp.yoso.report import YosoRun
from snnbp.yoso.study.networks import TtfsNetwork, truncate_hidden
from snnbp.yoso.study.runs import run_accelerator


def spread_pes_per_layer(layer_sizes: Sequence[int], arch: YosoArch) -> tuple[int, ...]:
    """PEs per layer that use the whole mesh: the output layer keeps the fewest PEs that hold it and
    the hidden layers share the rest in proportion to their widths (at most one PE per neuron); a
    network without hidden layers spreads its output layer.

    Raises:
        MappingError: the network does not fit the mesh even compactly.
    """
    counts = [len(layer.pe_ids) for layer in map_network(layer_sizes, arch).layers]
    spread = list(range(len(counts) - 1)) or [0]
    spare = arch.n_pes - sum(counts)
    widths = [layer_sizes[i + 1] for i in spread]
    for i, width in zip(spread, widths):
        counts[i] = min(width, counts[i] + spare * width // sum(widths))
    return tuple(counts)


def _sweep_row(run: YosoRun) -> dict[str, Any]:
    m = run.metrics
    return {
        "pes_used": m["pes_used"],
        "accuracy": m["accuracy"],
        "energy_per_image_uj": m["energy_per_image_uj"],
        "latency_ms": m["latency_ms"],
        "power_mw": m["power_mw"],
        "leakage_fraction": m["breakdown_fraction"]["leakage"],
    }


def mesh_sweep(
    net: TtfsNetwork, arch: YosoArch, energy: EnergyParams, meshes: Sequence[Sequence[int]], *, progress: bool = True
) -> pd.DataFrame:
    """Energy, latency and power on each ``[rows, cols]`` mesh, with the compact mapping (fewest PEs)
    and the spread one (:func:`spread_pes_per_layer`). A mesh the network does not fit gives a row
    with ``fits = False`` and NaN numbers. ``progress``: a bar over the meshes (:mod:`snnbp.progress`)."""
    rows = []
    for n_rows, n_cols in progress_bar(meshes, progress=progress, desc="mesh sweep", leave=False):
        mesh = with_changes(arch, mesh_rows=int(n_rows), mesh_cols=int(n_cols))
        for placement in ("compact", "spread"):
            row = {"mesh": f"{n_rows}x{n_cols}", "n_pes": mesh.n_pes, "placement": placement}
            try:
                pes = None if placement == "compact" else spread_pes_per_layer(net.layer_sizes, mesh)
                row.update(fits=True, **_sweep_row(run_accelerator(net, mesh, energy, pes_per_layer=pes)))
            except MappingError:
                row.update(
                    fits=False,
                    pes_used=0,
                    accuracy=math.nan,
                    energy_per_image_uj=math.nan,
                    latency_ms=math.nan,
                    power_mw=math.nan,
                    leakage_fraction=math.nan,
                )
            rows.append(row)
    return pd.DataFrame(rows)


def size_sweep(
    net: TtfsNetwork, arch: YosoArch, energy: EnergyParams, widths: Sequence[int], *, progress: bool = True
) -> pd.DataFrame:
    """Energy, latency, power, accuracy and hidden spikes processed per image of the network
    truncated to each hidden width (:func:`truncate_hidden`; the trained width itself is the full
    network), compact mapping. ``progress``: a bar over the widths (:mod:`snnbp.progress`)."""
    rows = []
    for width in progress_bar(widths, progress=progress, desc="size sweep", leave=False):
        small = truncate_hidden(net, int(width))
        run = run_accelerator(small, arch, energy)
        hidden = spikes_processed(run.sim.counts, run.mapping)[:, 1:-1].sum(1)
        rows.append(
            {"hidden": int(width), "network": small.network, "hidden_spikes": float(hidden.mean()), **_sweep_row(run)}
        )
    return pd.DataFrame(rows)


def spikes_processed(counts: Counts, mapping: Mapping) -> torch.Tensor:
    """Spikes per image that the accelerator processed (up to each image's stop step): the input
    spikes (column 0) and the spikes every layer emitted (columns 1..L).

    Shape:
        - Output: ``[B, L + 1]`` float64.
    """
    first = mapping.layers[0].pe_ids[0]
    inputs = counts.ops["spikes_in"][:, 0, first]
    return torch.cat([inputs.unsqueeze(1), counts.per_layer("spikes_out")], 1)


def per_image_frame(run: YosoRun, net: TtfsNetwork) -> pd.DataFrame:
    """One row per image: input spikes (all, and processed), hidden and output spikes processed,
    energy (uJ), latency (ms) and whether the accelerator classified it correctly."""
    spikes = spikes_processed(run.sim.counts, run.mapping).cpu()
    return pd.DataFrame(
        {
            "input_spikes": torch.isfinite(net.t_in).sum(1).numpy(),
            "input_spikes_processed": spikes[:, 0].numpy(),
            "hidden_spikes": spikes[:, 1:-1].sum(1).numpy(),
            "output_spikes": spikes[:, -1].numpy(),
            "energy_uj": (run.energy.total_pj * 1e-6).cpu().numpy(),
            "latency_ms": run.energy.latency_ms.cpu().numpy(),
            "correct": (run.sim.prediction.cpu() == net.labels).numpy(),
        }
    )


def spike_fits(frame: pd.DataFrame) -> pd.DataFrame:
    """Least-squares line ``energy = a + b * spikes`` and Pearson ``r`` for each spike count of
    :func:`per_image_frame` (``b`` in nJ per spike)."""
    rows = []
    for column in ("input_spikes", "input_spikes_processed", "hidden_spikes"):
        x, y = frame[column].to_numpy(float), frame["energy_uj"].to_numpy(float)
        if len(x) > 1 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            r = float(np.corrcoef(x, y)[0, 1])
        else:
            slope = intercept = r = math.nan
        rows.append(
            {
                "spikes": column,
                "mean_spikes": float(x.mean()) if len(x) else math.nan,
                "nj_per_spike": 1e3 * slope,
                "intercept_uj": intercept,
                "pearson_r": r,
            }
        )
    return pd.DataFrame(rows)
