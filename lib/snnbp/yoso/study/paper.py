"""The comparison with YOSO's published numbers: power, latency, energy and the timing assumptions behind them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from snnbp.progress import bar as progress_bar
from snnbp.yoso.arch import YosoArch, with_changes
from snnbp.yoso.energy import (
    BREAKDOWN,
    PAPER_LATENCY_MS,
    PAPER_POWER_MW,
    EnergyParams,
    fifo_kbytes,
)
from snnbp.yoso.mapping import Mapping
from snnbp.yoso.report import YosoRun
from snnbp.yoso.study.networks import TtfsNetwork
from snnbp.yoso.study.params import PAPER_ENERGY_UJ
from snnbp.yoso.study.runs import run_accelerator


def powered_kbytes(mapping: Mapping) -> float:
    """SRAM + FIFO capacity (KB) of the PEs that leak (all PEs unless unused ones are power-gated)."""
    arch = mapping.arch
    n_powered = len(mapping.used_pes) if arch.power_gate_unused_pes else arch.n_pes
    return n_powered * (arch.weight_sram.kbytes + arch.state_sram.kbytes + arch.route_sram.kbytes + fifo_kbytes(arch))


def paper_comparison_lines(run: YosoRun, energy: EnergyParams) -> str:
    """This model against YOSO's published 0.751 mW and 47.71 ms per MNIST image, with the
    leakage bound the published numbers imply; every number generated, rounded."""
    m = run.metrics
    kbytes = powered_kbytes(run.mapping)
    leak_mw = m["leakage_uw"] * 1e-3
    bound = PAPER_POWER_MW * 1e3 / kbytes  # uW per KB if all of the published power were leakage
    dynamic = {g: m["breakdown_fraction"][g] for g in BREAKDOWN}
    top = max(dynamic, key=dynamic.get)
    return "\n".join(
        [
            f"power: {m['power_mw']:.4g} mW modelled vs {PAPER_POWER_MW} mW reported (ratio {m['power_ratio']:.3g})",
            f"latency per image: {m['latency_ms']:.4g} ms vs {PAPER_LATENCY_MS} ms (ratio {m['latency_ratio']:.3g})",
            f"energy per image: {m['energy_per_image_uj']:.4g} uJ vs {PAPER_ENERGY_UJ:.4g} uJ derived from the two "
            f"(ratio {m['energy_ratio']:.3g})",
            f"leakage: {leak_mw:.4g} mW from {len(run.mapping.used_pes)} powered PEs ({kbytes:.1f} KB of SRAM and FIFO), "
            f"{100 * m['breakdown_fraction']['leakage']:.1f} % of the energy per image",
            f"largest dynamic share: {top} ({100 * dynamic[top]:.1f} %)",
            f"the reported {PAPER_POWER_MW} mW bounds the leakage: with {kbytes:.1f} KB powered that is at most "
            f"{bound:.3g} uW/KB, {bound / energy.sram_leak_uw_per_kb:.3g} x the {energy.sram_leak_uw_per_kb:g} uW/KB assumed here",
        ]
    )


TIMING_VARIANTS = {
    "as modelled: steps as fast as the pipeline, stop at the first output spike": {},
    "real-time steps (one dt of wall-clock each), stop at the first output spike": {"real_time": True},
    "steps as fast as the pipeline, whole window": {"stop_at_first_output": False},
    "real-time steps, whole window": {"real_time": True, "stop_at_first_output": False},
}
"""Timing assumptions of :func:`timing_variants` and the :class:`YosoArch` changes that make them."""


def timing_variants(net: TtfsNetwork, arch: YosoArch, energy: EnergyParams, *, progress: bool = True) -> pd.DataFrame:
    """Latency, power and energy per image under each of :data:`TIMING_VARIANTS`, with the ratios
    to the published numbers: which assumption about time steps the published latency suggests.
    ``progress``: a bar over the variants (:mod:`snnbp.progress`)."""
    rows = []
    for label, changes in progress_bar(
        TIMING_VARIANTS.items(), progress=progress, desc="timing variants", total=len(TIMING_VARIANTS), leave=False
    ):
        m = run_accelerator(net, with_changes(arch, **changes), energy).metrics
        rows.append(
            {
                "timing": label,
                "latency_ms": m["latency_ms"],
                "power_mw": m["power_mw"],
                "energy_per_image_uj": m["energy_per_image_uj"],
                "latency_ratio": m["latency_ratio"],
                "power_ratio": m["power_ratio"],
            }
        )
    return pd.DataFrame(rows)


def closest_timing_line(timing: pd.DataFrame) -> str:
    """Which row of :func:`timing_variants` comes closest to the published latency (in log ratio)."""
    best = timing.iloc[int(np.argmin(np.abs(np.log(timing["latency_ratio"].to_numpy(float)))))]
    return (
        f"closest to the published {PAPER_LATENCY_MS} ms: '{best['timing']}' ({best['latency_ms']:.4g} ms, "
        f"ratio {best['latency_ratio']:.3g}; power ratio {best['power_ratio']:.3g})"
    )
