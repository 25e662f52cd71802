"""Deployment questions a hardware designer asks of the YOSO model (``notebooks/30_yoso.ipynb``).

* **Fixed point** (:func:`quantization_sweep`, :func:`smallest_width`): accuracy, energy and latency
  per image at several weight widths and time steps, the memories sized to the word widths
  (:func:`snnbp.yoso.arch.fixed_point_arch`), against the float64 reference on the same time grid.
* **Published chips** (:func:`chip_comparison`): every MNIST result of :data:`snnbp.targets.CHIP_RESULTS`,
  the YOSO paper's point and this project's model, with energy, latency, accuracy and network.
* **Calibration** (:func:`calibrate`, :func:`select_calibrated`): which clock, time-step period, mesh
  and leakage per KB make the model give YOSO's published 0.751 mW and 47.71 ms per image, fitted in
  closed form under each timing hypothesis and checked by a re-run; the fitted values are judged
  against the plausibility bands of ``params/yoso/default.yaml`` (``calibration:``).

Units: time in ms, energy in uJ per image, power in mW, leakage in uW per KB, clock in MHz.
Accuracies are in [0, 1].
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
from snnbp.targets import CHIP_RESULTS, YOSO_PAPER, YOSO_PAPER_ACCURACY
from snnbp.yoso.arch import DEFAULT_PARAMS, YosoArch, fixed_point_arch, with_changes
from snnbp.yoso.energy import PAPER_LATENCY_MS, PAPER_POWER_MW, EnergyParams
from snnbp.yoso.study import TtfsNetwork, decision_agreement, powered_kbytes, run_accelerator

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


# --------------------------------------------------------------------------------- calibration


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


def deployment_metrics(
    *, sweep: pd.DataFrame, dt_ms: float, tolerance: float, chips: pd.DataFrame, calibrated: dict[str, Any]
) -> dict[str, Any]:
    """The ``metrics.json`` entries of this module: ``quantization`` (one record per sweep row;
    ``weight_bits`` null for the float64 rows), ``quantization_summary``, ``chip_comparison`` and
    ``calibrated`` (:func:`calibrated_record`). NaN becomes null."""
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
