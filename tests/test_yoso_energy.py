"""YOSO energy: per-operation energies from the cited constants, energy = counts x constants +
leakage x latency, metrics and the comparison with the paper."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from snnbp.yoso import (
    BREAKDOWN,
    COUNTERS,
    energy_report,
    evaluate,
    leakage_power_uw,
    load_arch,
    load_energy,
    map_network,
    op_energies_pj,
    paper_ratio,
    rate_coded_counts,
    simulate,
    to_hardware,
)
from snnbp.yoso.arch import SramSpec


def test_op_energies_follow_the_stated_rules():
    arch, params = load_arch(), load_energy()
    e = op_energies_pj(arch, params)

    def sram(kb, width):  # Horowitz: 10 pJ at 8 KB, 20 pJ at 32 KB (64-bit) -> 10 sqrt(kb / 8) w / 64
        return 10.0 * math.sqrt(kb / 8.0) * width / 64.0

    assert e["weight_sram_reads"] == pytest.approx(sram(64.0, 64))
    assert e["state_sram_reads"] == e["state_sram_writes"] == pytest.approx(sram(1.0, 64))
    assert e["route_sram_reads"] == pytest.approx(sram(0.5, 16))
    assert e["fifo_push"] == e["fifo_pop"] == pytest.approx(sram(16 * 32 / 8 / 1024, 32))
    assert e["slope_adds"] == pytest.approx(0.1 * 20 / 32)
    assert e["potential_adds"] == e["compares"] == pytest.approx(0.1)
    assert e["hops"] == pytest.approx(3.5 * 45 / 14) and e["deliveries"] == pytest.approx(1.7 * 45 / 14, rel=1e-3)
    assert set(e) <= set(COUNTERS)
    assert {op for ops in BREAKDOWN.values() for op in ops} == set(e)


def test_energy_is_counts_times_constants_plus_leakage():
    arch = dataclasses.replace(
        load_arch(),
        mesh_rows=2,
        mesh_cols=2,
        dt_ms=1.0,
        t_window_ms=50.0,
        step_sync_cycles=1,
        weight_sram=SramSpec(1024, 64),
        state_sram=SramSpec(64, 64),
        route_sram=SramSpec(64, 16),
    )
    params = load_energy()
    mapping = map_network([2, 2, 1], arch, pes_per_layer=[2, 1])
    net = to_hardware(
        [torch.tensor([[2.0, 1.0], [1.0, -1.0]]), torch.tensor([[1.0, 1.0]])], [5.0, 2.0], arch, quantise=False
    )
    res = simulate(net, mapping, torch.tensor([[0.0, 2.0]]))
    report = energy_report(res.counts, mapping, params)
    # hand counts of this network: tests/test_yoso_sim.py::test_counts_and_cycles_of_a_tiny_network_by_hand
    hand = {
        "fifo_push": 5,
        "fifo_pop": 5,
        "weight_sram_reads": 5,
        "state_sram_reads": 15,
        "state_sram_writes": 15,
        "route_sram_reads": 2,
        "slope_adds": 5,
        "potential_adds": 10,
        "compares": 10,
        "hops": 4,
        "deliveries": 6,
    }
    w_kb, s_kb, r_kb, f_kb = 8.0, 0.5, 0.125, 16 * 32 / 8 / 1024
    per_op = {
        "fifo_push": 10 * math.sqrt(f_kb / 8) * 32 / 64,
        "fifo_pop": 10 * math.sqrt(f_kb / 8) * 32 / 64,
        "weight_sram_reads": 10 * math.sqrt(w_kb / 8),
        "state_sram_reads": 10 * math.sqrt(s_kb / 8),
        "state_sram_writes": 10 * math.sqrt(s_kb / 8),
        "route_sram_reads": 10 * math.sqrt(r_kb / 8) * 16 / 64,
        "slope_adds": 0.1 * 20 / 32,
        "potential_adds": 0.1,
        "compares": 0.1,
        "hops": 11.25,
        "deliveries": 5.46,
    }
    latency_ms = 60 / (arch.clock_mhz * 1e3)
    leak_uw = 3 * (w_kb + s_kb + r_kb + f_kb) * 3.18
    assert leakage_power_uw(mapping, params) == pytest.approx(leak_uw)
    expected = sum(hand[k] * per_op[k] for k in hand) + leak_uw * latency_ms * 1e3
    assert float(report.total_pj[0]) == pytest.approx(expected)
    assert float(report.energy_pj["leakage"][0]) == pytest.approx(leak_uw * latency_ms * 1e3)
    assert float(report.energy_pj["routing"][0]) == pytest.approx(4 * 11.25 + 6 * 5.46)
    m = report.metrics()
    assert m["energy_per_image_uj"] == pytest.approx(expected * 1e-6)
    assert m["latency_ms"] == pytest.approx(latency_ms)
    assert m["power_mw"] == pytest.approx(expected * 1e-6 / latency_ms)
    assert sum(m["breakdown_uj"].values()) == pytest.approx(m["energy_per_image_uj"])
    assert sum(m["breakdown_fraction"].values()) == pytest.approx(1.0)
    assert set(m["breakdown_uj"]) == set(BREAKDOWN) | {"leakage"}
    gated_off = dataclasses.replace(arch, power_gate_unused_pes=False)
    assert leakage_power_uw(dataclasses.replace(mapping, arch=gated_off), params) == pytest.approx(leak_uw * 4 / 3)


def test_paper_ratio():
    r = paper_ratio({"power_mw": 0.751 * 2, "latency_ms": 47.71 / 2, "energy_per_image_uj": 0.751 * 47.71})
    assert r == pytest.approx({"power_ratio": 2.0, "latency_ratio": 0.5, "energy_ratio": 1.0})


def test_evaluate_end_to_end_and_rate_coding_costs_more():
    rng = np.random.default_rng(0)
    arch = dataclasses.replace(load_arch(), dt_ms=0.5, t_window_ms=40.0)
    w1, w2 = np.abs(rng.normal(0.1, 0.3, (30, 50))), np.abs(rng.normal(0.1, 0.3, (4, 30)))
    t_in = torch.tensor(np.where(rng.random((8, 50)) < 0.5, rng.uniform(0, 10, (8, 50)), np.inf))
    labels = torch.arange(8) % 4
    run = evaluate([w1, w2], [2.0, 1.0], t_in, labels=labels, arch=arch)
    m = run.metrics
    for key in (
        "power_mw",
        "latency_ms",
        "energy_per_image_uj",
        "breakdown_uj",
        "power_ratio",
        "latency_ratio",
        "energy_ratio",
        "accuracy",
        "pes_used",
        "spikes_per_layer",
        "ops",
        "overflow_risk_neurons",
    ):
        assert key in m
    assert m["accuracy"] == float((run.sim.prediction == labels).double().mean())
    assert m["pes_used"] == 2 and m["overflow_risk_neurons"] == 0.0
    assert m["energy_per_image_uj"] == pytest.approx(float(run.energy.total_pj.mean()) * 1e-6)
    # The same network driven by a rate code for 80 steps costs far more events and sweeps.
    raster = [torch.tensor(rng.random((80, 8, n)) < 0.05, dtype=torch.float32) for n in (50, 30, 4)]
    rate = rate_coded_counts(raster, run.mapping)
    assert float(rate.total("potential_adds").mean()) > 10 * m["ops"]["potential_adds"]
    rate_energy = energy_report(rate, run.mapping, load_energy()).metrics()
    assert rate_energy["energy_per_image_uj"] > m["energy_per_image_uj"]
