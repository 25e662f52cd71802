"""YOSO deployment studies: the fixed-point sweep and the smallest width, the published chips side
by side, and the calibration to YOSO's published power and latency (closed-form fits checked by
re-runs, plausibility, the selection rule, the records)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from snnbp.config import ConfigError
from snnbp.targets import CHIP_RESULTS, OTHER_CHIPS
from snnbp.yoso import PAPER_LATENCY_MS, PAPER_POWER_MW, load_arch, load_energy, study
from snnbp.yoso import calibration as calib
from snnbp.yoso import deployment as dep
from snnbp.yoso.arch import with_changes


def _net(sizes=(20, 16, 4), images=12, seed=0):
    rng = np.random.default_rng(seed)
    weights = tuple(
        torch.tensor(np.abs(rng.normal(0.2, 0.3, (n_out, n_in)))) for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )
    t_in = torch.tensor(np.where(rng.random((images, sizes[0])) < 0.6, rng.uniform(0, 5, (images, sizes[0])), np.inf))
    exact = study.run_accelerator(
        study.TtfsNetwork(
            weights,
            1.0,
            t_in,
            torch.zeros(images, dtype=torch.long),
            torch.zeros(images, dtype=torch.long),
            "",
            "random",
            "random",
            5.0,
            0,
            None,
        ),
        with_changes(load_arch(), dt_ms=1e-3, t_window_ms=30.0),
        load_energy(),
        quantise=False,
    )
    labels = exact.sim.prediction.clone()  # the labels are the fine-grid decisions: float accuracy near 1
    return study.TtfsNetwork(
        weights, 1.0, t_in, labels, labels.clone(), "-".join(map(str, sizes)), "random", "random", 5.0, 0, None
    )


def test_the_sweep_has_a_float_reference_and_memories_that_follow_the_widths():
    net, arch, energy = _net(), load_arch(), load_energy()
    sweep = dep.quantization_sweep(net, arch, energy, [2, 4, 8, 16], [0.1, 0.2], progress=False)
    assert len(sweep) == 2 * 5 and list(sweep["arithmetic"]).count("float64") == 2
    fixed = sweep[(sweep["arithmetic"] == "fixed") & np.isclose(sweep["dt_ms"], 0.1)].sort_values("weight_bits")
    assert fixed["state_bits"].tolist() == [10, 12, 16, 24]
    assert fixed["weight_sram_kb"].is_monotonic_increasing and fixed["energy_per_image_uj"].is_monotonic_increasing
    assert sweep[sweep["arithmetic"] == "float64"]["energy_per_image_uj"].isna().all()
    # 16 bits reproduce the float64 decisions of this small network; the rule names the smallest such width
    width = dep.smallest_width(sweep, 0.1, 0.005)
    assert width is not None and width <= 16
    ref = float(sweep[(sweep["arithmetic"] == "float64") & np.isclose(sweep["dt_ms"], 0.1)]["test_accuracy"].iloc[0])
    for _, row in fixed.iterrows():
        if row.weight_bits < width:
            assert row.test_accuracy < ref - 0.005
        elif row.weight_bits == width:
            assert row.test_accuracy >= ref - 0.005
    assert "smallest weight width within 0.5 percentage points" in dep.quantization_lines(sweep, 0.1, 0.005)
    with pytest.raises(ValueError, match="no float64 row at dt 0.3 ms"):
        dep.smallest_width(sweep, 0.3)
    with pytest.raises(ValueError, match="widths must be >= 2 bits"):
        dep.quantization_sweep(net, arch, energy, [1], [0.1], progress=False)


def test_smallest_width_reads_the_table():
    sweep = pd.DataFrame(
        {
            "dt_ms": [0.1] * 4,
            "arithmetic": ["float64", "fixed", "fixed", "fixed"],
            "weight_bits": [0, 4, 6, 8],
            "test_accuracy": [0.980, 0.970, 0.976, 0.981],
        }
    )
    assert dep.smallest_width(sweep, 0.1, 0.005) == 6
    assert dep.smallest_width(sweep, 0.1, 0.001) == 8
    assert dep.smallest_width(sweep.iloc[:2], 0.1, 0.005) is None


def test_the_chip_table_spans_the_quoted_ranges_and_holds_every_kind():
    for chip in OTHER_CHIPS:  # the per-measurement rows agree with the ranges quoted per chip
        rows = [r for r in CHIP_RESULTS if r.chip == chip.chip]
        assert rows, chip.chip
        energies = [r.energy_uj for r in rows]
        assert min(energies) == pytest.approx(chip.energy_uj[0], rel=0.02)
        assert max(energies) == pytest.approx(chip.energy_uj[1], rel=0.02)
    ours = dep.model_point(
        "YOSO model",
        "784-800-10",
        {"energy_per_image_uj": 1.5, "latency_ms": 0.2, "accuracy": 0.97},
        "results/cpu/yoso_mnist/metrics.json",
    )
    table = dep.chip_comparison([ours])
    assert list(table.columns) == dep.CHIP_COLUMNS
    assert list(table["kind"]).count("published") == len(CHIP_RESULTS)
    paper = table[table["kind"] == "paper"].iloc[0]
    assert paper["energy_per_image_uj"] == pytest.approx(PAPER_POWER_MW * PAPER_LATENCY_MS)
    assert table["accuracy"].between(0.8, 1.0).all() and (table["energy_per_image_uj"] > 0).all()
    assert table.iloc[-1]["kind"] == "simulated" and table.iloc[-1]["citation"].endswith("metrics.json")


def test_calibration_fits_reproduce_the_published_numbers_under_each_hypothesis():
    net, arch, energy = _net(images=8), load_arch(), load_energy()
    bands = calib.load_plausible()
    table = calib.calibrate(net, arch, energy, [[4, 4]], bands, progress=False)
    assert len(table) == len(calib.CALIBRATION_TIMINGS) * 2
    feasible = table[table["sram_leak_uw_per_kb"] > 0]
    assert not feasible.empty
    # every number is from a re-run with the fitted values: they meet both targets
    assert (feasible["latency_residual"].abs() < 0.01).all() and (feasible["power_residual"].abs() < 1e-6).all()
    assert feasible["power_mw"].to_numpy() == pytest.approx(PAPER_POWER_MW)
    clock = table[table["fitted"] == "clock_mhz"]
    assert clock["step_period_ms"].isna().all() and (clock["clock_mhz"] < arch.clock_mhz).all()
    real = table[table["fitted"] == "step_period_ms"]
    assert (real["clock_mhz"] == arch.clock_mhz).all() and (real["step_period_ms"] > 0).all()
    # powered SRAM: gating off powers every PE of the mesh
    gated, full = table[table["power_gating"]], table[~table["power_gating"]]
    assert (full["powered_kb"].to_numpy() > gated["powered_kb"].to_numpy()).all()
    for row in table.itertuples():
        value = row.clock_mhz if row.fitted == "clock_mhz" else row.step_period_ms
        low, high = getattr(bands, row.fitted)
        leak_ok = bands.sram_leak_uw_per_kb[0] <= row.sram_leak_uw_per_kb <= bands.sram_leak_uw_per_kb[1]
        assert row.plausible == (low <= value <= high and leak_ok)
    best = calib.select_calibrated(table, arch, energy)
    default = study.run_accelerator(net, arch, energy).metrics
    record = calib.calibrated_record(best, default, table, bands)
    json.dumps(record, allow_nan=False)  # strict JSON: NaN stored as null
    assert record["published"] == {"power_mw": PAPER_POWER_MW, "latency_ms": PAPER_LATENCY_MS}
    if best is not None:
        assert best["plausible"] and abs(best["power_residual"]) <= 0.01
        assert record["selected"]["timing"] == best["timing"] and "residuals" in record
        assert "calibrated:" in calib.calibration_lines(best, default)
    else:
        assert record["selected"] is None


def test_selection_takes_the_least_change_among_plausible_fits():
    arch, energy = load_arch(), load_energy()
    table = pd.DataFrame(
        {
            "timing": ["a", "b", "c", "d"],
            "mesh": ["4x4"] * 4,
            "power_gating": [True] * 4,
            "fitted": ["clock_mhz", "step_period_ms", "step_period_ms", "clock_mhz"],
            "clock_mhz": [50.0, 100.0, 100.0, 90.0],
            "step_period_ms": [math.nan, 0.05, 0.12, math.nan],
            "sram_leak_uw_per_kb": [1.0, 1.0, 3.0, 3.0],
            "power_residual": [0.0, 0.0, 0.0, 0.2],
            "latency_residual": [0.0, 0.0, 0.0, 0.0],
            "plausible": [True, True, True, True],
        }
    )
    assert calib.select_calibrated(table, arch, energy)["timing"] == "c"  # d misses the power by 20 %
    assert calib.select_calibrated(table.assign(plausible=False), arch, energy) is None


def test_plausible_ranges_need_reasons(tmp_path):
    path = tmp_path / "yoso.yaml"
    path.write_text(
        "calibration:\n  clock_mhz: [10.0, 1000.0]\n  step_period_ms: [0.001, 1.0]\n"
        "  sram_leak_uw_per_kb: [0.01, 3.0]\n  reasons: {clock_mhz: x, step_period_ms: y}\n"
    )
    with pytest.raises(ConfigError, match="missing key 'calibration.reasons.sram_leak_uw_per_kb'"):
        calib.load_plausible(path)
    path.write_text(path.read_text().replace("[0.01, 3.0]", "[3.0, 0.01]"))
    with pytest.raises(ConfigError, match="'calibration.sram_leak_uw_per_kb' must be \\[low, high\\]"):
        calib.load_plausible(path)
