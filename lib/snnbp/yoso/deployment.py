"""Deployment questions a hardware designer asks of the YOSO model (``notebooks/30_yoso.ipynb``).

* **Fixed point** (:func:`quantization_sweep`, :func:`smallest_width`): accuracy, energy and latency
  per image at several weight widths and time steps, the memories sized to the word widths
  (:func:`snnbp.yoso.arch.fixed_point_arch`), against the float64 reference on the same time grid.
* **Published chips** (:func:`chip_comparison`): every MNIST result of :data:`snnbp.targets.CHIP_RESULTS`,
  the YOSO paper's point and this project's model, with energy, latency, accuracy and network.
* **Records** (:func:`deployment_metrics`): these and the calibration (:mod:`snnbp.yoso.calibration`)
  as ``metrics.json`` entries.

Units: time in ms, energy in uJ per image, power in mW, leakage in uW per KB, clock in MHz.
Accuracies are in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from snnbp.progress import bar as progress_bar
from snnbp.targets import CHIP_RESULTS, YOSO_PAPER, YOSO_PAPER_ACCURACY
from snnbp.yoso.arch import YosoArch, fixed_point_arch, with_changes
from snnbp.yoso.calibration import records
from snnbp.yoso.energy import PAPER_LATENCY_MS, PAPER_POWER_MW, EnergyParams
from snnbp.yoso.study import TtfsNetwork, decision_agreement, run_accelerator

# ---------------------------------------------------------------------------------- fixed point


def quantization_sweep(
    net: TtfsNetwork,
    arch: YosoArch,
    energy: EnergyParams,
    bits: Sequence[int],
    dts: Sequence[float],
    *,
    state_extra_bits: int = 8,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy, energy, latency and power per image at each weight width and time step.

    For every ``dt`` one float64 row (``arithmetic = "float64"``: time quantisation only, no energy:
    it is the accuracy reference) and one fixed-point row per width ``b``: ``b``-bit weights,
    ``b + state_extra_bits``-bit slopes and potentials, memories sized to the widths
    (:func:`snnbp.yoso.arch.fixed_point_arch`), ``arch``'s rounding.

    Returns:
        Columns ``dt_ms``, ``arithmetic``, ``weight_bits`` and ``state_bits`` (0 for float64),
        ``test_accuracy``, ``agreement_with_model``, ``no_output_spike``, ``energy_per_image_uj``,
        ``latency_ms``, ``power_mw``, ``weight_sram_kb`` (per PE).

    Raises:
        ValueError: no widths or time steps, a width below 2 bits or a time step <= 0.
    """
    if not bits or not dts:
        raise ValueError("quantization_sweep needs at least one width and one time step")
    if min(bits) < 2 or min(dts) <= 0 or state_extra_bits < 0:
        raise ValueError(
            f"widths must be >= 2 bits, time steps > 0 and state_extra_bits >= 0; got bits {list(bits)}, "
            f"dts {list(dts)}, state_extra_bits {state_extra_bits}"
        )
    nan = math.nan
    cases = [(float(dt), b) for dt in dts for b in (None, *bits)]
    rows = []
    for dt, b in progress_bar(cases, progress=progress, desc="fixed-point sweep", leave=False):
        grid = with_changes(arch, dt_ms=dt)
        if b is None:
            run = run_accelerator(net, grid, energy, quantise=False)
            hw, width, state = nan, 0, 0
        else:
            fixed = fixed_point_arch(grid, int(b), int(b) + state_extra_bits)
            run = run_accelerator(net, fixed, energy)
            hw, width, state = fixed.weight_sram.kbytes, int(b), int(b) + state_extra_bits
        m = run.metrics
        rows.append(
            {
                "dt_ms": dt,
                "arithmetic": "float64" if b is None else "fixed",
                "weight_bits": width,
                "state_bits": state,
                "test_accuracy": m["accuracy"],
                "agreement_with_model": decision_agreement(run, net),
                "no_output_spike": m["no_output_spike"],
                "energy_per_image_uj": nan if b is None else m["energy_per_image_uj"],
                "latency_ms": nan if b is None else m["latency_ms"],
                "power_mw": nan if b is None else m["power_mw"],
                "weight_sram_kb": hw,
            }
        )
    return pd.DataFrame(rows)


def smallest_width(sweep: pd.DataFrame, dt_ms: float, tolerance: float = 0.005) -> int | None:
    """The narrowest weight width whose accuracy at ``dt_ms`` is at most ``tolerance`` (absolute, in
    [0, 1]: 0.005 = half a percentage point) below the float64 row's at the same ``dt_ms``; None if none.

    Raises:
        ValueError: the sweep has no float64 row at ``dt_ms``.
    """
    at = sweep[np.isclose(sweep["dt_ms"], dt_ms)]
    ref = at[at["arithmetic"] == "float64"]
    if ref.empty:
        raise ValueError(f"the sweep has no float64 row at dt {dt_ms} ms (time steps: {sorted(set(sweep['dt_ms']))})")
    ok = at[(at["arithmetic"] == "fixed") & (at["test_accuracy"] >= float(ref["test_accuracy"].iloc[0]) - tolerance)]
    return int(ok["weight_bits"].min()) if not ok.empty else None


# ------------------------------------------------------------------------------ published chips

CHIP_COLUMNS = [
    "chip",
    "publication",
    "network",
    "energy_per_image_uj",
    "latency_ms",
    "accuracy",
    "citation",
    "provenance",
    "kind",
]


def model_point(label: str, network: str, metrics: dict[str, Any], where: str) -> dict[str, Any]:
    """One of this project's simulated results as a :func:`chip_comparison` row (``kind = "simulated"``).

    ``metrics`` needs ``energy_per_image_uj``, ``latency_ms`` and ``accuracy``; ``where`` names the
    record it comes from (e.g. ``results/cpu/yoso_mnist/metrics.json``)."""
    return {
        "chip": label,
        "publication": "this project",
        "network": network,
        "energy_per_image_uj": float(metrics["energy_per_image_uj"]),
        "latency_ms": float(metrics["latency_ms"]),
        "accuracy": float(metrics["accuracy"]),
        "citation": where,
        "provenance": "simulated",
        "kind": "simulated",
    }


def chip_comparison(ours: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Published MNIST results on neuromorphic chips, the YOSO paper's point and this project's rows.

    The published rows are :data:`snnbp.targets.CHIP_RESULTS`; the YOSO paper's energy is its
    0.751 mW x 47.71 ms (derived) at the ReL-PSP paper's 784-800-10 accuracy
    (:data:`snnbp.targets.YOSO_PAPER_ACCURACY`, unverified). ``ours``: rows of :func:`model_point`.

    Returns:
        Columns :data:`CHIP_COLUMNS`; ``kind`` is ``published``, ``paper`` or ``simulated``.
    """
    rows = [
        {
            "chip": c.chip,
            "publication": c.publication,
            "network": c.network,
            "energy_per_image_uj": c.energy_uj,
            "latency_ms": c.latency_ms,
            "accuracy": c.accuracy,
            "citation": c.source,
            "provenance": c.provenance,
            "kind": "published",
        }
        for c in CHIP_RESULTS
    ]
    rows.append(
        {
            "chip": "YOSO + STDBP (paper)",
            "publication": "ReL-PSP/STDBP paper",
            "network": "MNIST STDBP network",
            "energy_per_image_uj": PAPER_POWER_MW * PAPER_LATENCY_MS,
            "latency_ms": PAPER_LATENCY_MS,
            "accuracy": YOSO_PAPER_ACCURACY,
            "citation": YOSO_PAPER,
            "provenance": "V (power, latency) / derived (energy) / ~ (accuracy)",
            "kind": "paper",
        }
    )
    rows.extend(dict(row) for row in ours)
    return pd.DataFrame(rows, columns=CHIP_COLUMNS)


# ------------------------------------------------------------------------------ text and records


def quantization_lines(sweep: pd.DataFrame, dt_ms: float, tolerance: float) -> str:
    """The smallest width within ``tolerance`` of float64 at ``dt_ms``, its energy and latency
    beside the widest width's, rounded."""
    width = smallest_width(sweep, dt_ms, tolerance)
    at = sweep[np.isclose(sweep["dt_ms"], dt_ms)]
    ref = float(at[at["arithmetic"] == "float64"]["test_accuracy"].iloc[0])
    fixed = at[at["arithmetic"] == "fixed"].sort_values("weight_bits")
    lines = [f"float64 weights, dt {dt_ms:g} ms: accuracy {100 * ref:.2f} %"]
    if width is None:
        lines.append(
            f"no width in {fixed['weight_bits'].tolist()} is within {100 * tolerance:g} percentage points of it"
        )
        return "\n".join(lines)
    row = fixed[fixed["weight_bits"] == width].iloc[0]
    widest = fixed.iloc[-1]
    lines += [
        f"smallest weight width within {100 * tolerance:g} percentage points of float64: {width} bits "
        f"({100 * row.test_accuracy:.2f} %, {int(row.state_bits)}-bit slopes and potentials)",
        f"energy per image at {width} bits: {row.energy_per_image_uj:.4g} uJ, "
        f"{row.energy_per_image_uj / widest.energy_per_image_uj:.3g} x that at {int(widest.weight_bits)} bits",
        f"latency per image at {width} bits: {row.latency_ms:.4g} ms",
    ]
    return "\n".join(lines)


def deployment_metrics(
    *, sweep: pd.DataFrame, dt_ms: float, tolerance: float, chips: pd.DataFrame, calibrated: dict[str, Any]
) -> dict[str, Any]:
    """The ``metrics.json`` entries of this module: ``quantization`` (one record per sweep row;
    ``weight_bits`` null for the float64 rows), ``quantization_summary``, ``chip_comparison`` and
    ``calibrated`` (:func:`snnbp.yoso.calibration.calibrated_record`). NaN becomes null."""
    quant = records(sweep)
    for row in quant:
        if row["arithmetic"] == "float64":
            row["weight_bits"] = row["state_bits"] = None
    at = sweep[np.isclose(sweep["dt_ms"], dt_ms) & (sweep["arithmetic"] == "float64")]
    return {
        "quantization": quant,
        "quantization_summary": {
            "dt_ms": dt_ms,
            "tolerance": tolerance,
            "float64_accuracy": float(at["test_accuracy"].iloc[0]),
            "smallest_width_bits": smallest_width(sweep, dt_ms, tolerance),
        },
        "chip_comparison": records(chips),
        "calibrated": calibrated,
    }
