"""YOSO simulator: spike times against a step-by-step hardware emulation and the exact ReL-PSP
model (with the documented quantisation bound), hand-computed counts and cycles, rate-coded counts."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from snnbp.yoso import load_arch, map_network, overflow_risk, rate_coded_counts, simulate, to_hardware
from snnbp.yoso.arch import SramSpec

INF = math.inf


def small_arch(**changes):
    """A roomy 4x4 mesh with dt = 1 ms (hardware units = model units for unquantised weights)."""
    base = dataclasses.replace(
        load_arch(),
        dt_ms=1.0,
        t_window_ms=400.0,
        neurons_per_pe=8,
        step_sync_cycles=1,
        weight_sram=SramSpec(1024, 64),
        state_sram=SramSpec(64, 64),
        route_sram=SramSpec(64, 16),
    )
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------- slow, obvious references


def exact_relpsp(t_in: np.ndarray, weight: np.ndarray, theta: float) -> np.ndarray:
    """Exact first crossing of V_j(t) = sum_i w_ij max(0, t - t_i) (ALGORITHMS.md 2.2), per neuron,
    by walking the sorted inputs. One sample: t_in [N_in] -> [N_out]."""
    order = [i for i in np.argsort(t_in, kind="stable") if np.isfinite(t_in[i])]
    out = np.full(weight.shape[0], INF)
    for j in range(weight.shape[0]):
        total_w, total_wt = 0.0, 0.0
        for pos, i in enumerate(order):
            total_w += weight[j, i]
            total_wt += weight[j, i] * t_in[i]
            nxt = t_in[order[pos + 1]] if pos + 1 < len(order) else INF
            if total_w > 0:
                t_star = (theta + total_wt) / total_w
                if t_in[i] <= t_star < nxt:
                    out[j] = t_star
                    break
    return out


def stepped_reference(t_in, weights, thetas, dt, n_steps, pe_of, stop_at_first_output=True):
    """The hardware's step recursion, neuron by neuron (module docstring of snnbp.yoso.sim).

    Returns spike steps per layer and per-(layer, PE) counts of the counters it can see."""
    steps_in = [math.ceil(t / dt - 1e-9) if math.isfinite(t) else None for t in t_in]
    n_layers = len(weights)
    slope = [np.zeros(w.shape[0]) for w in weights]
    pot = [np.zeros(w.shape[0]) for w in weights]
    touched = [np.zeros(w.shape[0], bool) for w in weights]
    fire = [[None] * w.shape[0] for w in weights]
    keys = ("spikes_in", "weight_sram_reads", "slope_adds", "potential_adds", "spikes_out")
    counts = {k: {} for k in keys}

    def bump(name, l, pe, by=1):
        counts[name][(l, pe)] = counts[name].get((l, pe), 0) + by

    for n in range(n_steps):
        prev_spikes = [i for i, k in enumerate(steps_in) if k == n]
        for l in range(n_layers):
            w = weights[l]
            fired_now = []
            for j in range(w.shape[0]):  # sweep
                if touched[l][j] and fire[l][j] is None:
                    pot[l][j] += slope[l][j]
                    bump("potential_adds", l, pe_of[l][j])
                    if pot[l][j] >= thetas[l]:
                        fire[l][j] = n
                        fired_now.append(j)
                        bump("spikes_out", l, pe_of[l][j])
            for i in prev_spikes:  # events
                for pe in sorted(set(pe_of[l])):
                    bump("spikes_in", l, pe)
                    local = [j for j in range(w.shape[0]) if pe_of[l][j] == pe]
                    if any(fire[l][j] is None for j in local):
                        bump("weight_sram_reads", l, pe)
                    for j in local:
                        if fire[l][j] is None:
                            slope[l][j] += w[j, i]
                            touched[l][j] = True
                            bump("slope_adds", l, pe)
            prev_spikes = fired_now
        if stop_at_first_output and any(f is not None for f in fire[-1]):
            break
    as_steps = [np.array([INF if f is None else f for f in layer], dtype=float) for layer in fire]
    return as_steps, counts


def random_net(rng, sizes, nonneg=False, scale=1.0):
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.normal(0.3 if nonneg else 0.15, 1.0, size=(n_out, n_in)) * scale
        weights.append(np.abs(w) if nonneg else w)
    return weights


def random_inputs(rng, batch, n_in, t_max, silent=0.3):
    t = rng.uniform(0.0, t_max, size=(batch, n_in))
    t[rng.random((batch, n_in)) < silent] = INF
    return t


# ---------------------------------------------------------------- functional equivalence


@pytest.mark.parametrize("quantise", [True, False])
def test_spike_steps_equal_stepped_hardware_recursion(quantise):
    rng = np.random.default_rng(1)
    arch = small_arch(dt_ms=0.5, t_window_ms=60.0, stop_at_first_output=False)
    sizes = [12, 9, 4]
    mapping = map_network(sizes, arch, pes_per_layer=[3, 2])
    pe_of = [np.repeat(np.arange(len(l.pe_ids)), l.neurons) for l in mapping.layers]
    for trial in range(3):
        weights = random_net(rng, sizes)
        net = to_hardware([torch.tensor(w) for w in weights], [3.0, 2.0], arch, quantise=quantise)
        t_in = random_inputs(rng, 5, sizes[0], 10.0)
        result = simulate(net, mapping, torch.tensor(t_in))
        for b in range(t_in.shape[0]):
            ref, _ = stepped_reference(
                t_in[b], [w.numpy() for w in net.weights], net.thresholds, arch.dt_ms, arch.n_steps, pe_of, False
            )
            for l in range(len(sizes) - 1):
                got = result.spike_times[l][b].numpy() / arch.dt_ms
                np.testing.assert_array_equal(np.round(got), ref[l], err_msg=f"trial {trial} sample {b} layer {l + 1}")


def test_nonnegative_weights_stay_within_documented_bound():
    """0 <= t_sim - t_exact < (l + 1) dt after l layers, unconditionally for w >= 0."""
    rng = np.random.default_rng(2)
    dt = 0.25
    arch = small_arch(dt_ms=dt, t_window_ms=500.0, stop_at_first_output=False)
    sizes = [20, 15, 6]
    mapping = map_network(sizes, arch)
    checked = 0
    for _ in range(3):
        weights = random_net(rng, sizes, nonneg=True, scale=0.5)
        thetas = [4.0, 3.0]
        t_in = random_inputs(rng, 6, sizes[0], 8.0)
        result = simulate(
            to_hardware([torch.tensor(w) for w in weights], thetas, arch, quantise=False), mapping, torch.tensor(t_in)
        )
        for b in range(t_in.shape[0]):
            t_prev = t_in[b]
            for l, (w, theta) in enumerate(zip(weights, thetas), start=1):
                exact = exact_relpsp(t_prev, w, theta)
                sim = result.spike_times[l - 1][b].numpy()
                np.testing.assert_array_equal(np.isfinite(sim), np.isfinite(exact))
                fin = np.isfinite(exact)
                diff = sim[fin] - exact[fin]
                assert (diff >= -1e-9).all() and (diff < (l + 1) * dt).all(), (l, diff.min(), diff.max())
                checked += fin.sum()
                t_prev = exact
    assert checked > 100


def test_mixed_sign_weights_within_propagated_bound_when_causal_set_is_stable():
    """|t_sim - t_exact| <= E + dt with E = sum_C |w_ij| eps_i / sum_C w_ij (sim module docstring),
    checked where no input lies within the error of t_exact (the causal set cannot change) and the
    potential stays clear of theta before the crossing (no grazing)."""
    rng = np.random.default_rng(3)
    dt = 0.01
    arch = small_arch(dt_ms=dt, t_window_ms=100.0, stop_at_first_output=False)
    sizes = [16, 12, 5]
    mapping = map_network(sizes, arch)
    checked = total = 0
    for _ in range(4):
        weights = random_net(rng, sizes, scale=0.6)
        thetas = [2.0, 1.5]
        t_in = random_inputs(rng, 6, sizes[0], 6.0)
        net = to_hardware([torch.tensor(w) for w in weights], thetas, arch, quantise=False)
        result = simulate(net, mapping, torch.tensor(t_in))
        for b in range(t_in.shape[0]):
            t_prev, sim_prev = t_in[b], t_in[b]
            eps_prev, ok_prev = np.where(np.isfinite(t_in[b]), dt, 0.0), np.ones(sizes[0], bool)
            for l, (w, theta) in enumerate(zip(weights, thetas), start=1):
                exact = exact_relpsp(t_prev, w, theta)
                sim = result.spike_times[l - 1][b].numpy()
                eps = np.zeros(w.shape[0])
                ok = np.zeros(w.shape[0], bool)
                fin = np.isfinite(t_prev)
                same_inputs = np.array_equal(fin, np.isfinite(sim_prev))
                for j in np.flatnonzero(np.isfinite(exact)):
                    causal = t_prev < exact[j]
                    slope = w[j, causal].sum()
                    eps[j] = (np.abs(w[j, causal]) * eps_prev[causal]).sum() / slope + dt
                    gap = np.abs(t_prev[fin] - exact[j]).min()
                    drift = np.abs(w[j, fin]).sum() * eps_prev[fin].max()  # max change of V by input errors
                    kinks = t_prev[fin & causal]
                    v_kinks = [(w[j, fin] * np.maximum(0.0, tk - t_prev[fin])).sum() for tk in kinks]
                    clear = all(v < theta - drift for v in v_kinks)
                    ok[j] = (
                        same_inputs
                        and ok_prev[causal].all()
                        and clear
                        and slope > 0.05
                        and gap > eps[j] + eps_prev[fin].max()
                    )
                total += int(np.isfinite(exact).sum())
                for j in np.flatnonzero(ok):
                    assert abs(sim[j] - exact[j]) <= eps[j] + 1e-9, (l, j, sim[j], exact[j], eps[j])
                    checked += 1
                t_prev, sim_prev, eps_prev, ok_prev = exact, sim, eps, ok
    assert checked > 0.5 * total, (checked, total)


def test_classification_agrees_with_exact_model_when_margin_exceeds_quantisation():
    rng = np.random.default_rng(4)
    dt = 0.01
    arch = small_arch(dt_ms=dt, t_window_ms=50.0)
    sizes = [20, 16, 5]
    mapping = map_network(sizes, arch)
    weights = random_net(rng, sizes, nonneg=True, scale=0.4)
    thetas = [3.0, 4.0]
    t_in = random_inputs(rng, 40, sizes[0], 8.0)
    result = simulate(
        to_hardware([torch.tensor(w) for w in weights], thetas, arch, quantise=False), mapping, torch.tensor(t_in)
    )
    agreed = 0
    for b in range(t_in.shape[0]):
        out = exact_relpsp(exact_relpsp(t_in[b], weights[0], thetas[0]), weights[1], thetas[1])
        first, second = np.sort(out)[:2]
        if second - first > 3 * dt:  # bound for two layers: [0, 3 dt)
            assert int(result.prediction[b]) == int(np.argmin(out))
            agreed += 1
    assert agreed >= 10


def test_matches_stdbp_relpsp_spike_times_when_available():
    stdbp = pytest.importorskip("snnbp.stdbp")
    if not hasattr(stdbp, "relpsp_spike_times"):
        pytest.skip("snnbp.stdbp.relpsp_spike_times not available yet")
    rng = np.random.default_rng(5)
    w = random_net(rng, [14, 9])[0]
    t_in = random_inputs(rng, 4, 14, 5.0)
    got = stdbp.relpsp_spike_times(torch.tensor(t_in), torch.tensor(w), 2.0).detach().double().numpy()
    ref = np.stack([exact_relpsp(t, w, 2.0) for t in t_in])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    dt = 0.1
    arch = small_arch(dt_ms=dt, t_window_ms=400.0, stop_at_first_output=False)
    sim = simulate(
        to_hardware([torch.tensor(np.abs(w))], [2.0], arch, quantise=False),
        map_network([14, 9], arch),
        torch.tensor(t_in),
    )
    exact = stdbp.relpsp_spike_times(torch.tensor(t_in), torch.tensor(np.abs(w)), 2.0).detach().double()
    fin = torch.isfinite(exact)
    diff = sim.spike_times[0][fin] - exact[fin]
    assert bool((diff >= -1e-6).all()) and bool((diff < 2 * dt).all())


def test_quantised_weights_keep_times_close_to_float_ones():
    rng = np.random.default_rng(6)
    arch = small_arch(dt_ms=0.1, t_window_ms=200.0, weight_bits=12, stop_at_first_output=False)
    sizes = [30, 10]
    mapping = map_network(sizes, arch)
    weights = random_net(rng, sizes, nonneg=True)
    t_in = torch.tensor(random_inputs(rng, 8, 30, 5.0))
    t_float = simulate(
        to_hardware([torch.tensor(w) for w in weights], [5.0], arch, quantise=False), mapping, t_in
    ).spike_times[0]
    net_q = to_hardware([torch.tensor(w) for w in weights], [5.0], arch, quantise=True)
    assert all(bool((w == torch.round(w)).all()) and float(w.abs().max()) <= 2047 for w in net_q.weights)
    t_q = simulate(net_q, mapping, t_in).spike_times[0]
    fin = torch.isfinite(t_float)
    assert torch.equal(fin, torch.isfinite(t_q))
    assert float((t_q[fin] - t_float[fin]).abs().max()) <= 0.2 + 1e-9


def test_overflow_risk_is_a_static_range_bound():
    arch = load_arch()
    weights = [torch.ones(3, 784), -torch.ones(2, 3)]
    net = to_hardware(weights, [1.0, 1.0], arch)  # layer 1: all weights 127 -> |S| <= 127 * 784 < 2^19
    assert [r.tolist() for r in overflow_risk(net, arch)] == [[False] * 3, [False] * 2]
    narrow = dataclasses.replace(arch, slope_bits=17)
    assert overflow_risk(net, narrow)[0].all() and not overflow_risk(net, narrow)[1].any()
    short = dataclasses.replace(arch, potential_bits=24)  # 127 * 784 * 1000 steps > 2^23
    assert overflow_risk(net, short)[0].all()


def test_inputs_are_validated():
    arch = small_arch()
    mapping = map_network([3, 2], arch)
    net = to_hardware([torch.ones(2, 3)], [1.0], arch)
    with pytest.raises(ValueError, match=r"t_in must be \[B, 3\]"):
        simulate(net, mapping, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=">= 0 ms"):
        simulate(net, mapping, torch.tensor([[-1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        to_hardware([torch.ones(2, 3)], [0.0], arch)
    with pytest.raises(ValueError, match="layer 2: 4 inputs but layer 1 has 2"):
        to_hardware([torch.ones(2, 3), torch.ones(1, 4)], [1.0, 1.0], arch)


# ---------------------------------------------------------------- counts and cycles


def test_counts_and_cycles_of_a_tiny_network_by_hand():
    """Two inputs (t = 0, 2 ms), neurons A (w = 2, 1; theta 5) and B (w = 1, -1; theta 5) on PEs 0
    and 1, output C (w = 1, 1; theta 2) on PE 2. A fires at step 3, B never, C at step 5 (stop)."""
    arch = small_arch(mesh_rows=2, mesh_cols=2)
    mapping = map_network([2, 2, 1], arch, pes_per_layer=[2, 1])
    net = to_hardware(
        [torch.tensor([[2.0, 1.0], [1.0, -1.0]]), torch.tensor([[1.0, 1.0]])], [5.0, 2.0], arch, quantise=False
    )
    res = simulate(net, mapping, torch.tensor([[0.0, 2.0]]))
    assert res.spike_times[0][0].tolist() == [3.0, INF]
    assert res.spike_times[1][0].tolist() == [5.0]
    assert int(res.prediction[0]) == 0
    c = res.counts
    assert int(c.stop_step[0]) == 5

    def at(name):
        return {(l, p): float(c.ops[name][0, l, p]) for l in range(2) for p in range(4) if c.ops[name][0, l, p] != 0}

    assert at("spikes_in") == {(0, 0): 2, (0, 1): 2, (1, 2): 1}
    assert at("fifo_push") == at("fifo_pop") == at("spikes_in")
    assert at("weight_sram_reads") == {(0, 0): 2, (0, 1): 2, (1, 2): 1}
    assert at("slope_adds") == {(0, 0): 2, (0, 1): 2, (1, 2): 1}
    assert at("potential_adds") == {(0, 0): 3, (0, 1): 5, (1, 2): 2}
    assert at("compares") == at("potential_adds")
    assert at("state_sram_reads") == {(0, 0): 5, (0, 1): 7, (1, 2): 3}
    assert at("state_sram_writes") == at("state_sram_reads")
    assert at("spikes_out") == {(0, 0): 1, (1, 2): 1}
    assert at("route_sram_reads") == {(0, 0): 1, (1, 2): 1}
    # port (0,0) -> PE0 (0,0): 0 hops, -> PE1 (0,1): 1 hop; PE0 -> PE2 (1,0): 1; PE2 -> port: 1
    assert at("hops") == {(0, 1): 2, (1, 2): 2}
    assert at("deliveries") == {(0, 0): 2, (0, 1): 2, (1, 2): 2}
    # cycle model (counts.layer_cycles): per event max(1 weight word, 2 state words, 1) = 2, sweep 2,
    # fill 3 per non-empty phase, XY latency 1 (layer 1) and 2 (layer 2), sync 1 per step.
    assert at("busy_cycles") == {(0, 0): 25, (0, 1): 35, (1, 2): 15}
    assert float(c.cycles[0]) == 60
    assert at("fifo_max_occupancy") == {(0, 0): 1, (0, 1): 1, (1, 2): 1}
    assert float(c.total("stall_cycles")[0]) == 0
    assert float(res.latency_ms[0]) == pytest.approx(60 / (arch.clock_mhz * 1e3))
    assert c.idle_cycles()[0].tolist() == [35, 25, 45, 60]
    real_time = simulate(
        net, map_network([2, 2, 1], dataclasses.replace(arch, real_time=True), [2, 1]), torch.tensor([[0.0, 2.0]])
    )
    assert float(real_time.counts.cycles[0]) == 6 * arch.dt_ms * arch.clock_mhz * 1e3  # 6 steps of 1 ms each


def test_counts_equal_stepped_reference_on_random_networks():
    rng = np.random.default_rng(7)
    arch = small_arch(dt_ms=0.5, t_window_ms=40.0)
    sizes = [10, 7, 3]
    mapping = map_network(sizes, arch, pes_per_layer=[3, 1])
    pe_ids = [np.asarray(l.pe_ids)[np.repeat(np.arange(len(l.pe_ids)), l.neurons)] for l in mapping.layers]
    weights = random_net(rng, sizes, scale=0.8)
    net = to_hardware([torch.tensor(w) for w in weights], [2.0, 1.0], arch)
    t_in = random_inputs(rng, 6, sizes[0], 8.0)
    res = simulate(net, mapping, torch.tensor(t_in))
    for b in range(t_in.shape[0]):
        _, ref = stepped_reference(
            t_in[b], [w.numpy() for w in net.weights], net.thresholds, arch.dt_ms, arch.n_steps, pe_ids
        )
        for name, table in ref.items():
            got = {
                (l, p): float(res.counts.ops[name][b, l, p])
                for l in range(2)
                for p in range(arch.n_pes)
                if res.counts.ops[name][b, l, p] != 0
            }
            assert got == {k: float(v) for k, v in table.items() if v}, (b, name)


def test_rate_coded_counts_by_hand():
    """One input spiking at steps 0 and 2, one LIF output neuron spiking at step 1, T = 3."""
    arch = small_arch(mesh_rows=1, mesh_cols=2)
    mapping = map_network([1, 1], arch)
    x_in = torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1)
    x_out = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1)
    c = rate_coded_counts([x_in, x_out], mapping)
    totals = {k: float(v) for k, v in c.mean_totals().items()}
    assert totals["spikes_in"] == 2 and totals["fifo_push"] == 2 and totals["weight_sram_reads"] == 2
    assert totals["slope_adds"] == 2  # one update per event per neuron: LIF neurons never retire
    assert totals["potential_adds"] == 6 and totals["compares"] == 3  # 3 steps x (2 adds, 1 compare)
    assert totals["state_sram_reads"] == 5 and totals["spikes_out"] == 1
    assert totals["hops"] == 0 and totals["deliveries"] == 2 + 1  # port -> PE0 twice, PE0 -> port once
    assert int(c.stop_step[0]) == 2
    with pytest.raises(ValueError, match="layer sizes"):
        rate_coded_counts([x_in, torch.zeros(3, 1, 2)], mapping)


def test_chunking_does_not_change_results():
    rng = np.random.default_rng(8)
    arch = small_arch(dt_ms=0.5, t_window_ms=30.0)
    sizes = [10, 6, 3]
    mapping = map_network(sizes, arch)
    net = to_hardware([torch.tensor(w) for w in random_net(rng, sizes)], [2.0, 1.0], arch)
    t_in = torch.tensor(random_inputs(rng, 9, 10, 6.0))
    a, b = simulate(net, mapping, t_in, chunk_size=2), simulate(net, mapping, t_in, chunk_size=64)
    for x, y in zip(a.spike_times, b.spike_times):
        assert torch.equal(x, y)
    for name in a.counts.ops:
        assert torch.equal(a.counts.ops[name], b.counts.ops[name]), name
    assert torch.equal(a.counts.cycles, b.counts.cycles)
