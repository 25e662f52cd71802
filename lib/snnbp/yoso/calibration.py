"""Calibration of the YOSO model to the paper's published numbers (``notebooks/30_yoso.ipynb``).

Which clock, time-step period, mesh and leakage per KB make the model give YOSO's published
0.751 mW and 47.71 ms per image (:func:`calibrate`, :func:`select_calibrated`): fitted in closed
form under each timing hypothesis and checked by a re-run; the fitted values are judged against the
plausibility bands of ``params/yoso/default.yaml`` (``calibration:``).

Units: time in ms, energy in uJ per image, power in mW, leakage in uW per KB, clock in MHz.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from snnbp.config import ConfigError, from_mapping, read_yaml
from snnbp.paths import resolve
from snnbp.progress import bar as progress_bar
from snnbp.yoso.arch import DEFAULT_PARAMS, YosoArch, with_changes
from snnbp.yoso.energy import PAPER_LATENCY_MS, PAPER_POWER_MW, EnergyParams
from snnbp.yoso.study import TtfsNetwork, powered_kbytes, run_accelerator


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """``frame`` as JSON-ready records: numpy scalars as Python ones, NaN as None."""
    out = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for key, value in row.items():
            value = value.item() if isinstance(value, np.generic) else value
            clean[key] = None if isinstance(value, float) and math.isnan(value) else value
        out.append(clean)
    return out


@dataclass(frozen=True)
class PlausibleRanges:
    """What this project takes as plausible for the modelled node (``calibration:`` of the YOSO
    params file): ``[low, high]`` per fitted quantity, each with its reason in ``reasons``.

    Attributes:
        clock_mhz: core clock.
        step_period_ms: wall-clock length of a real-time time step.
        sram_leak_uw_per_kb: SRAM (+ core) leakage per KB.
        reasons: one sentence per range (same keys).
    """

    clock_mhz: tuple[float, float]
    step_period_ms: tuple[float, float]
    sram_leak_uw_per_kb: tuple[float, float]
    reasons: dict[str, str]


def load_plausible(path: str | Path = DEFAULT_PARAMS) -> PlausibleRanges:
    """Read and check the ``calibration:`` section (a relative ``path`` is from the project root).

    Raises:
        ConfigError: a missing section or reason, or a range that is not ``0 < low <= high``.
    """
    content = read_yaml(resolve(path))
    if "calibration" not in content:
        raise ConfigError(f"{path}: missing key 'calibration'")
    ranges = from_mapping(PlausibleRanges, content["calibration"], source=str(path), prefix="calibration")
    for field in ("clock_mhz", "step_period_ms", "sram_leak_uw_per_kb"):
        low, high = getattr(ranges, field)
        if not 0 < low <= high:
            raise ConfigError(
                f"{path}: key 'calibration.{field}' must be [low, high] with 0 < low <= high, got {[low, high]}"
            )
        if not str(ranges.reasons.get(field, "")).strip():
            raise ConfigError(f"{path}: missing key 'calibration.reasons.{field}' (every range needs its reason)")
    return ranges


CALIBRATION_TIMINGS = {
    "clock-bound steps, stop at the first output spike": ("clock_mhz", {}),
    "clock-bound steps, whole window": ("clock_mhz", {"stop_at_first_output": False}),
    "real-time steps, stop at the first output spike": ("step_period_ms", {"real_time": True}),
    "real-time steps, whole window": ("step_period_ms", {"real_time": True, "stop_at_first_output": False}),
}
"""Timing hypotheses of :func:`calibrate`: the quantity fitted to the latency and the
:class:`YosoArch` changes. Clock-bound: a step lasts as long as its work, so latency = cycles /
clock. Real-time: a step lasts ``step_period_ms`` (its work is shorter), so latency = steps x period."""


def _fit_row(net: TtfsNetwork, arch: YosoArch, energy: EnergyParams, fitted: str) -> dict[str, Any]:
    """Fit ``fitted`` (clock or step period) to the published latency and the leakage per KB to the
    published power, in closed form from one run, then re-run with the fitted values."""
    first = run_accelerator(net, arch, energy)
    if fitted == "clock_mhz":  # latency = cycles / clock
        arch = with_changes(arch, clock_mhz=arch.clock_mhz * first.metrics["latency_ms"] / PAPER_LATENCY_MS)
    else:  # latency = (stop step + 1) x period once the period exceeds every step's work
        steps = float((first.sim.counts.stop_step + 1).double().mean())
        arch = with_changes(arch, step_period_ms=PAPER_LATENCY_MS / steps)
    timed = run_accelerator(net, arch, energy)
    m = timed.metrics
    dynamic_uj = m["energy_per_image_uj"] - m["breakdown_uj"]["leakage"]
    kbytes = powered_kbytes(timed.mapping)
    leak = (PAPER_POWER_MW * m["latency_ms"] - dynamic_uj) / (kbytes * m["latency_ms"] * 1e-3)
    leak = max(leak, 0.0)
    final = run_accelerator(net, arch, dataclasses.replace(energy, sram_leak_uw_per_kb=leak)).metrics
    return {
        "clock_mhz": arch.clock_mhz,
        "step_period_ms": arch.step_period_ms if arch.real_time else math.nan,
        "sram_leak_uw_per_kb": leak,
        "powered_kb": kbytes,
        "power_mw": final["power_mw"],
        "latency_ms": final["latency_ms"],
        "energy_per_image_uj": final["energy_per_image_uj"],
        "leakage_fraction": final["breakdown_fraction"]["leakage"],
        "power_residual": final["power_mw"] / PAPER_POWER_MW - 1.0,
        "latency_residual": final["latency_ms"] / PAPER_LATENCY_MS - 1.0,
    }


def _in(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value <= band[1]


def calibrate(
    net: TtfsNetwork,
    arch: YosoArch,
    energy: EnergyParams,
    meshes: Sequence[Sequence[int]],
    plausible: PlausibleRanges,
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """Every hypothesis (timing x mesh x power gating) fitted to YOSO's 0.751 mW and 47.71 ms.

    Under each hypothesis the latency fixes the clock (clock-bound steps) or the time-step period
    (real-time steps), and the power then fixes the leakage per KB of the powered SRAM (a negative
    value is clipped to 0 and shows as a power residual). Every number comes from a re-run with the
    fitted values; the residuals are ``model / published - 1``. Each fitted value is judged against
    ``plausible`` (``plausible`` column: all within their bands).

    Returns:
        One row per hypothesis: ``timing``, ``mesh``, ``power_gating``, ``fitted`` (the timing
        quantity), the fitted ``clock_mhz``, ``step_period_ms`` (NaN when clock-bound) and
        ``sram_leak_uw_per_kb``, ``powered_kb``, the modelled ``power_mw``, ``latency_ms``,
        ``energy_per_image_uj``, ``leakage_fraction``, ``power_residual``, ``latency_residual``,
        ``leak_vs_cited`` (fitted / ``energy.sram_leak_uw_per_kb``) and ``plausible``.
    """
    cases = [
        (timing, rows, cols, gate) for timing in CALIBRATION_TIMINGS for rows, cols in meshes for gate in (True, False)
    ]
    out = []
    for timing, n_rows, n_cols, gate in progress_bar(cases, progress=progress, desc="calibration", leave=False):
        fitted, changes = CALIBRATION_TIMINGS[timing]
        hypothesis = with_changes(
            arch, mesh_rows=int(n_rows), mesh_cols=int(n_cols), power_gate_unused_pes=gate, **changes
        )
        row = {
            "timing": timing,
            "mesh": f"{n_rows}x{n_cols}",
            "power_gating": gate,
            "fitted": fitted,
            **_fit_row(net, hypothesis, energy, fitted),
        }
        timing_ok = (
            _in(row["clock_mhz"], plausible.clock_mhz)
            if fitted == "clock_mhz"
            else _in(row["step_period_ms"], plausible.step_period_ms)
        )
        row["leak_vs_cited"] = row["sram_leak_uw_per_kb"] / energy.sram_leak_uw_per_kb
        row["plausible"] = bool(timing_ok and _in(row["sram_leak_uw_per_kb"], plausible.sram_leak_uw_per_kb))
        out.append(row)
    return pd.DataFrame(out)


SELECTION_RULE = (
    "among the hypotheses that reproduce both published numbers within 1 % and whose fitted values "
    "all lie in the plausible ranges, the one whose fitted values move least from the cited-constant "
    "profile (sum of |log(fitted / default)| over the clock or time-step period and the leakage per KB)"
)
"""How :func:`select_calibrated` picks the calibrated profile, in words (stored with it)."""


def select_calibrated(
    table: pd.DataFrame, arch: YosoArch, energy: EnergyParams, tolerance: float = 0.01
) -> pd.Series | None:
    """The row of :func:`calibrate` that :data:`SELECTION_RULE` picks (None if no row qualifies).

    The default of a real-time period is ``arch.dt_ms`` (one model step of wall-clock time)."""
    ok = table[
        (table["power_residual"].abs() <= tolerance)
        & (table["latency_residual"].abs() <= tolerance)
        & table["plausible"]
    ]
    if ok.empty:
        return None
    timing_change = np.where(
        ok["fitted"] == "clock_mhz",
        np.abs(np.log(ok["clock_mhz"] / arch.clock_mhz)),
        np.abs(np.log(ok["step_period_ms"] / arch.dt_ms)),
    )
    change = timing_change + np.abs(np.log(ok["sram_leak_uw_per_kb"] / energy.sram_leak_uw_per_kb))
    return ok.iloc[int(np.argmin(change))]


def calibrated_record(
    best: pd.Series | None, default: dict[str, Any], table: pd.DataFrame, plausible: PlausibleRanges
) -> dict[str, Any]:
    """The ``calibrated`` entry of ``metrics.json``: the selected hypothesis, its fitted values and
    residuals, the default (cited-constant) profile's numbers beside them, every candidate, the
    selection rule and the plausible ranges with their reasons."""
    base = {
        "rule": SELECTION_RULE,
        "candidates": records(table),
        "plausible_ranges": {
            k: list(getattr(plausible, k)) for k in ("clock_mhz", "step_period_ms", "sram_leak_uw_per_kb")
        },
        "plausible_reasons": dict(plausible.reasons),
        "default": {k: default[k] for k in ("power_mw", "latency_ms", "energy_per_image_uj")},
        "published": {"power_mw": PAPER_POWER_MW, "latency_ms": PAPER_LATENCY_MS},
    }
    if best is None:
        return {**base, "selected": None}
    fitted = {
        "timing": best["timing"],
        "mesh": best["mesh"],
        "power_gating": bool(best["power_gating"]),
        "clock_mhz": float(best["clock_mhz"]),
        "sram_leak_uw_per_kb": float(best["sram_leak_uw_per_kb"]),
    }
    if best["fitted"] == "step_period_ms":
        fitted["step_period_ms"] = float(best["step_period_ms"])
    return {
        **base,
        "selected": fitted,
        "residuals": {"power": float(best["power_residual"]), "latency": float(best["latency_residual"])},
        "model": {k: float(best[k]) for k in ("power_mw", "latency_ms", "energy_per_image_uj", "leakage_fraction")},
    }


def calibration_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`calibrate`'s table for printing: the fitted values, the modelled energy and the
    residuals in percent rounded to 0.01 (their float noise is machine-dependent), plausibility."""
    shown = table[
        [
            "timing",
            "mesh",
            "power_gating",
            "clock_mhz",
            "step_period_ms",
            "sram_leak_uw_per_kb",
            "energy_per_image_uj",
            "leakage_fraction",
            "plausible",
        ]
    ].copy()
    for column in ("power_residual", "latency_residual"):
        shown[f"{column.split('_')[0]}_residual_pct"] = (100 * table[column]).round(2) + 0.0  # + 0.0: no -0.0
    return shown


def calibration_lines(best: pd.Series | None, default: dict[str, Any]) -> str:
    """The calibrated profile against the cited-constant one, rounded (or why there is none)."""
    if best is None:
        return (
            "no hypothesis reproduces both published numbers with plausible values: see the table "
            "(the calibrated profile is left empty)"
        )
    timing = (
        f"clock {best.clock_mhz:.4g} MHz"
        if best.fitted == "clock_mhz"
        else f"time-step period {best.step_period_ms:.4g} ms at {best.clock_mhz:.4g} MHz"
    )
    return "\n".join(
        [
            f"calibrated: {best.timing}, {best.mesh} mesh ({'unused PEs gated' if best.power_gating else 'all PEs powered'}), "
            f"{timing}, leakage {best.sram_leak_uw_per_kb:.3g} uW/KB",
            f"  gives {best.power_mw:.4g} mW and {best.latency_ms:.4g} ms (residuals {100 * best.power_residual:+.2f} %, "
            f"{100 * best.latency_residual:+.2f} %), {best.energy_per_image_uj:.4g} uJ per image, "
            f"{100 * best.leakage_fraction:.1f} % of it leakage",
            f"default (cited constants): {default['power_mw']:.4g} mW, {default['latency_ms']:.4g} ms, "
            f"{default['energy_per_image_uj']:.4g} uJ per image",
        ]
    )
