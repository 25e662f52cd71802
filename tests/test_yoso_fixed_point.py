"""YOSO fixed-point arithmetic: bit-exact against a step-by-step fixed-point recursion (shifted,
saturating potentials and slopes, both rounding modes), within the documented error bound of the
float64 reference on the same time grid, and memories sized to the word widths."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from snnbp.config import ConfigError
from snnbp.yoso import load_arch, load_energy, map_network, op_energies_pj, simulate, to_hardware
from snnbp.yoso.arch import SramSpec, fixed_point_arch, with_changes
from snnbp.yoso.sim import round_fixed, time_to_step


def small_arch(**changes):
    """A roomy mesh, dt = 0.1 ms, the whole window simulated."""
    base = dataclasses.replace(
        load_arch(),
        dt_ms=0.1,
        t_window_ms=30.0,
        neurons_per_pe=16,
        step_sync_cycles=1,
        stop_at_first_output=False,
        weight_sram=SramSpec(4096, 64),
        state_sram=SramSpec(64, 64),
        route_sram=SramSpec(64, 16),
    )
    return with_changes(base, **changes)


def fixed_point_reference(k_in, w_q, theta_q, shift, rounding, slope_limit, potential_limit, last_step):
    """The fixed-point step recursion, one sample, all neurons of one layer, in numpy.

    Step n: sweep ``V = clamp(V + R(S / 2^shift))`` and compare with theta (neurons not yet fired),
    then the events of step n: ``S = clamp(S + sum_{k_i = n} w_q)``."""
    rnd = np.round if rounding == "nearest" else np.floor  # np.round: ties to even, as torch.round
    n_out = w_q.shape[0]
    slope, potential = np.zeros(n_out), np.zeros(n_out)
    fire = np.full(n_out, math.inf)
    for n in range(last_step + 1):
        potential = np.clip(potential + rnd(slope / 2**shift), -potential_limit, potential_limit)
        new = (potential >= theta_q) & ~np.isfinite(fire)
        fire[new] = n
        arriving = k_in == n
        slope = np.clip(slope + w_q[:, arriving].sum(1), -slope_limit, slope_limit)
    return fire


def random_case(seed, n_in=30, n_out=12, nonneg=False, batch=6):
    rng = np.random.default_rng(seed)
    w = rng.normal(0.6 if nonneg else 0.15, 0.4, size=(n_out, n_in))
    w = np.abs(w) if nonneg else w
    t = rng.uniform(0.0, 5.0, size=(batch, n_in))
    t[rng.random((batch, n_in)) < 0.3] = math.inf
    return torch.tensor(w), torch.tensor(t)


@pytest.mark.parametrize("rounding", ["nearest", "floor"])
@pytest.mark.parametrize("widths", [(6, 7, 8), (8, 9, 12), (4, 5, 6)])
def test_simulator_is_bit_exact_with_the_fixed_point_recursion(rounding, widths):
    weight_bits, slope_bits, potential_bits = widths
    arch = small_arch(weight_bits=weight_bits, slope_bits=slope_bits, potential_bits=potential_bits, rounding=rounding)
    w, t_in = random_case(1 + weight_bits)
    net = to_hardware([w], [2.0], arch)
    assert net.shifts[0] > 0  # the threshold does not fit: the potential drops low bits
    assert net.thresholds[0] <= net.potential_limit
    result = simulate(net, map_network([30, 12], arch), t_in, progress=False)
    k_in = time_to_step(t_in, arch).numpy()
    changed = {"slope": 0, "potential": 0}
    for b in range(t_in.shape[0]):
        args = (k_in[b], net.weights[0].numpy(), net.thresholds[0], net.shifts[0], rounding)
        expected = fixed_point_reference(*args, net.slope_limit, net.potential_limit, arch.n_steps - 1)
        assert np.allclose(result.spike_times[0][b].numpy(), expected * arch.dt_ms, rtol=0, atol=1e-9, equal_nan=False)
        assert np.array_equal(np.isfinite(expected), torch.isfinite(result.spike_times[0][b]).numpy())
        changed["slope"] += int(
            (fixed_point_reference(*args, math.inf, net.potential_limit, arch.n_steps - 1) != expected).sum()
        )
        changed["potential"] += int(
            (fixed_point_reference(*args, net.slope_limit, math.inf, arch.n_steps - 1) != expected).sum()
        )
    assert changed["slope"] > 0  # slope saturation changes spikes here: it is exercised
    if widths == (4, 5, 6):
        assert changed["potential"] > 0  # and so does potential saturation


def float_potentials(k_in: np.ndarray, w: np.ndarray, dt: float, last_step: int) -> np.ndarray:
    """``V_f(n) = dt sum_i w_i max(0, n - k_i)`` for n = 0..last_step (model units). Shape ``[n, N_out]``."""
    n = np.arange(last_step + 1)[:, None]
    ramps = np.where(
        np.isfinite(k_in)[None, :], np.maximum(0.0, n - np.where(np.isfinite(k_in), k_in, 0.0)[None, :]), 0.0
    )
    return dt * ramps @ w.T


@pytest.mark.parametrize("rounding", ["nearest", "floor"])
@pytest.mark.parametrize("case", ["signed, wide state", "non-negative, shifted potential"])
def test_fixed_point_spikes_lie_within_the_error_bound_of_the_float_reference(rounding, case):
    nonneg = case.startswith("non-negative")
    potential_bits = 9 if nonneg else 32
    arch = small_arch(weight_bits=6, slope_bits=32, potential_bits=potential_bits, rounding=rounding)
    theta = 2.0
    w, t_in = random_case(7, nonneg=nonneg)
    net = to_hardware([w], [theta], arch)
    shift, scale, dt = net.shifts[0], net.scales[0], arch.dt_ms
    assert (shift > 0) == nonneg
    assert float(net.weights[0].abs().sum(1).max()) < net.slope_limit  # no slope saturation
    result = simulate(net, map_network([30, 12], arch), t_in, progress=False)
    last = arch.n_steps - 1
    k_in = time_to_step(t_in, arch).numpy()
    e_w = scale / 2 if rounding == "nearest" else scale
    e_r = 0.0 if shift == 0 else (2**shift / 2 if rounding == "nearest" else 2**shift)
    raise_theta = scale * dt * 2**shift  # the threshold rounded up by less than one potential LSB
    fired_some = 0
    for b in range(t_in.shape[0]):
        v_f = float_potentials(k_in[b], w.numpy(), dt, last)
        n = np.arange(last + 1)[:, None]
        finite = np.isfinite(k_in[b])
        ramp_sum = np.maximum(0.0, n - np.where(finite, k_in[b], 0.0)[None, :])[:, finite].sum(1, keepdims=True)
        k_min = k_in[b][finite].min()
        bound = e_w * dt * ramp_sum + e_r * scale * dt * np.maximum(0.0, n - k_min)
        steps = result.spike_times[0][b].numpy() / dt
        for j, step in enumerate(steps):
            if math.isfinite(step):
                fired_some += 1
                s = int(round(step))
                assert v_f[s, j] >= theta - bound[s, 0] - 1e-9
                assert (v_f[:s, j] < theta + raise_theta + bound[:s, 0] + 1e-9).all()
            else:
                assert (v_f[:, j] < theta + raise_theta + bound[:, 0] + 1e-9).all()
    assert fired_some > 10  # the bound was tested on real crossings


def test_float_reference_has_no_fixed_point_limits():
    arch = small_arch()
    net = to_hardware([torch.ones(2, 3)], [1.0], arch, quantise=False)
    assert not net.quantised and net.shifts == () and math.isinf(net.slope_limit) and math.isinf(net.potential_limit)
    assert net.thresholds == (1.0 / arch.dt_ms,)


def test_rounding_modes():
    x = torch.tensor([-1.5, -0.5, 0.5, 1.5, 2.7, -2.7])
    assert round_fixed(x, "nearest").tolist() == [-2.0, -0.0, 0.0, 2.0, 3.0, -3.0]
    assert round_fixed(x, "floor").tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0, -3.0]
    with pytest.raises(ValueError, match="rounding must be"):
        round_fixed(x, "up")
    with pytest.raises(ConfigError, match=r"key 'arch.rounding' must be one of \['nearest', 'floor'\]"):
        with_changes(load_arch(), rounding="stochastic")


def test_memories_follow_the_word_widths():
    arch, energy = load_arch(), load_energy()
    narrow, wide = fixed_point_arch(arch, 4, 12), fixed_point_arch(arch, 16, 24)
    assert (
        narrow.weight_sram.words * 2 == arch.weight_sram.words and wide.weight_sram.words == 2 * arch.weight_sram.words
    )
    assert narrow.weight_sram.width_bits == wide.weight_sram.width_bits == arch.weight_sram.width_bits
    assert narrow.state_sram.width_bits == 25 and wide.state_sram.width_bits == 49
    assert narrow.state_words_per_neuron == wide.state_words_per_neuron == 1
    sizes = [784, 800, 10]
    for fp in (narrow, wide):  # the same weights fit: the mapping does not change
        assert [len(l.pe_ids) for l in map_network(sizes, fp).layers] == [
            len(l.pe_ids) for l in map_network(sizes, arch).layers
        ]
    e_n, e_a, e_w = (op_energies_pj(a, energy) for a in (narrow, arch, fixed_point_arch(arch, 16, 24)))
    assert e_n["weight_sram_reads"] < e_a["weight_sram_reads"] < e_w["weight_sram_reads"]  # sqrt(size) rule
    assert e_n["state_sram_reads"] < e_w["state_sram_reads"] and e_n["potential_adds"] < e_w["potential_adds"]
    assert narrow.weight_row_words(80) == 5 and wide.weight_row_words(80) == 20
    with pytest.raises(ConfigError, match="widths must be >= 2 bits"):
        fixed_point_arch(arch, 1)
