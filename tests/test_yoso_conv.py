"""Spiking CNNs on the YOSO simulator: the unrolled convolution against a neuron-by-neuron exact
reference and the STDBP model, the mapping by pooling windows, and the counts against a
step-by-step hardware emulation that delivers each spike only to the PEs it reaches."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from snnbp.stdbp.layers import neuron_function
from snnbp.stdbp.model import architecture, forward
from snnbp.yoso import load_arch, simulate, to_hardware
from snnbp.yoso.arch import SramSpec
from snnbp.yoso.conv import cnn_layers, conv_pool_wiring, layer_outputs, unroll_conv
from snnbp.yoso.mapping import MappingError, map_conv_network

INF = math.inf


def roomy_arch(**changes):
    base = dataclasses.replace(
        load_arch(),
        dt_ms=0.5,
        t_window_ms=60.0,
        neurons_per_pe=24,
        step_sync_cycles=1,
        weight_sram=SramSpec(1024, 64),
        state_sram=SramSpec(64, 64),
        route_sram=SramSpec(256, 16),
    )
    return dataclasses.replace(base, **changes)


def exact_neuron(t_in: np.ndarray, w: np.ndarray, theta: float) -> float:
    """First crossing of ``sum_i w_i max(0, t - t_i) = theta`` by walking the sorted inputs."""
    order = [i for i in np.argsort(t_in, kind="stable") if np.isfinite(t_in[i])]
    total_w = total_wt = 0.0
    for pos, i in enumerate(order):
        total_w += w[i]
        total_wt += w[i] * t_in[i]
        nxt = t_in[order[pos + 1]] if pos + 1 < len(order) else INF
        if total_w > 0 and t_in[i] <= (theta + total_wt) / total_w < nxt:
            return (theta + total_wt) / total_w
    return INF


def conv_pool_reference(t_in: np.ndarray, weight: np.ndarray, theta: float, pool: int) -> np.ndarray:
    """Exact conv (valid, stride 1) neuron by neuron, then the earliest spike of each window.
    One sample: ``[C, H, W]`` -> ``[O, H_p, W_p]``."""
    out_ch, _, k, _ = weight.shape
    conv_h, conv_w = t_in.shape[1] - k + 1, t_in.shape[2] - k + 1
    conv = np.full((out_ch, conv_h, conv_w), INF)
    for o in range(out_ch):
        for y in range(conv_h):
            for x in range(conv_w):
                conv[o, y, x] = exact_neuron(t_in[:, y : y + k, x : x + k].ravel(), weight[o].ravel(), theta)
    ph, pw = conv_h // pool, conv_w // pool
    return conv[:, : ph * pool, : pw * pool].reshape(out_ch, ph, pool, pw, pool).min(axis=(2, 4))


def random_images(rng, batch, shape, t_max=8.0, silent=0.3, dt=None):
    t = rng.uniform(0.0, t_max, size=(batch, *shape))
    if dt is not None:
        t = np.round(t / dt) * dt
    t[rng.random(t.shape) < silent] = INF
    return t


def test_wiring_numbers_neurons_by_window_and_prunes_uncovered_positions():
    wiring = conv_pool_wiring((2, 6, 7), out_channels=3, kernel=2, pool=2)  # conv 5x6 -> pooled 2x3
    assert wiring.n_out == 2 * 3 * 4 * 3  # 6 windows x 4 positions x 3 channels (row 4 pruned)
    assert wiring.n_emitters == 3 * 2 * 3 and wiring.window == 12 and wiring.emitters_per_window == 3
    assert wiring.weight_rows == 2 and wiring.row_weights == 2 * 2 * 3
    assert wiring.pre.shape == wiring.post.shape == (wiring.n_out * 2 * 2 * 2,)
    # neuron 13 = window 1 (wy 0, wx 1), position 0 (dy 0, dx 0), channel 1 -> pooled (1, 0, 1)
    assert wiring.emitter[13] == 1 * 6 + 0 * 3 + 1
    # its inputs: channels 0 and 1 at rows 0-1, columns 2-3
    expected = sorted(c * 42 + y * 7 + x for c in range(2) for y in (0, 1) for x in (2, 3))
    assert sorted(wiring.pre[wiring.post == 13].tolist()) == expected
    with pytest.raises(ValueError, match="leave no output"):
        conv_pool_wiring((1, 3, 3), out_channels=1, kernel=3, pool=2)


@pytest.mark.parametrize("seed", [0, 1])
def test_unrolled_conv_on_the_grid_equals_exact_reference(seed):
    """Grid-aligned inputs: every simulated pooled spike step is ceil(t_exact / dt) of the exact
    neuron-by-neuron reference (the first layer has no earlier quantisation)."""
    rng = np.random.default_rng(seed)
    arch = roomy_arch(dt_ms=0.25)
    weight = rng.normal(0.25, 0.6, size=(3, 2, 3, 3))
    t_in = random_images(rng, 4, (2, 7, 7), dt=arch.dt_ms)
    wiring = conv_pool_wiring((2, 7, 7), 3, 3, 2)
    dense = unroll_conv(torch.tensor(weight), wiring, 2 * 49)
    head = torch.zeros(2, wiring.n_emitters, dtype=torch.float64)
    head[0, 0] = 1.0
    head[1, 5] = 1.0
    mapping = map_conv_network(98, [wiring, 2], arch)
    net = to_hardware([dense, head], [1.0, 0.01], arch, quantise=False, outputs=[wiring.n_emitters, 2])
    res = simulate(net, mapping, torch.tensor(t_in.reshape(4, -1)), progress=False)
    for b in range(4):
        exact = conv_pool_reference(t_in[b], weight, 1.0, 2).ravel()
        expected = np.where(np.isfinite(exact), np.ceil(exact / arch.dt_ms - 1e-9) * arch.dt_ms, INF)
        expected[expected > arch.t_window_ms] = INF
        got = res.spike_times[0][b].numpy()
        # the accelerator stops at the first output spike; what it computes functionally is complete
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def small_cnn(rng, nonneg):
    specs = architecture((11, 11), 3, conv_channels=(2, 3), conv_kernel=2, pool_size=2, hidden=(5,))
    shapes = [(2, 1, 2, 2), (3, 2, 2, 2), (5, 12), (3, 5)]
    weights = []
    for shape in shapes:
        fan_in = math.prod(shape[1:])
        w = rng.normal(0.5, 1.0, size=shape) * 2.0 / math.sqrt(fan_in)
        weights.append(torch.tensor(np.abs(w) if nonneg else w))
    return specs, weights


def hardware_cnn(specs, weights, arch, quantise):
    dense, layers = cnn_layers(
        [s.kind for s in specs], [s.size for s in specs], [s.kernel for s in specs], weights, (11, 11)
    )
    net = to_hardware(dense, 1.0, arch, quantise=quantise, outputs=layer_outputs(layers))
    return net, map_conv_network(121, layers, arch), layers


def test_cnn_spike_times_within_the_documented_bound_of_the_stdbp_model():
    """Non-negative weights: after l weighted layers 0 <= t_sim - t_exact < (l + 1) dt (sim module
    docstring), pooled layers included; decisions equal wherever the output margin exceeds it."""
    rng = np.random.default_rng(3)
    arch = roomy_arch(dt_ms=0.001, t_window_ms=60.0, stop_at_first_output=False)
    specs, weights = small_cnn(rng, nonneg=True)
    t_in = random_images(rng, 24, (11, 11), silent=0.2)
    model = forward(torch.tensor(t_in), specs, weights, neuron_function("relpsp", 1.0))
    exact = [model[1].reshape(24, -1), model[3].reshape(24, -1), model[4], model[5]]
    net, mapping, _ = hardware_cnn(specs, weights, arch, quantise=False)
    res = simulate(net, mapping, torch.tensor(t_in.reshape(24, -1)), progress=False)
    for layer, (sim_t, model_t) in enumerate(zip(res.spike_times, exact), start=1):
        both = torch.isfinite(model_t)
        assert torch.equal(torch.isfinite(sim_t), both), layer
        diff = (sim_t - model_t)[both]
        assert float(diff.min()) >= -1e-9 and float(diff.max()) < (layer + 1) * arch.dt_ms, layer
    top2 = torch.sort(exact[-1], dim=1).values[:, :2]
    clear = (top2[:, 1] - top2[:, 0]) > (len(exact) + 1) * arch.dt_ms
    assert int(clear.sum()) >= 8
    assert torch.equal(res.prediction[clear], torch.argmin(exact[-1], dim=1)[clear])


def test_mapping_places_whole_windows_with_kernel_sized_weight_memory():
    arch = roomy_arch()
    specs, weights = small_cnn(np.random.default_rng(0), nonneg=False)
    _, mapping, layers = hardware_cnn(specs, weights, arch, quantise=True)
    conv1, conv2, fc, out = mapping.layers
    # conv1: 10x10 conv -> 5x5 windows of 4 positions x 2 channels = 8 neurons, at most 3 per PE
    assert conv1.n_out == 25 * 8 and conv1.neurons == (24,) * 7 + (16,) * 2
    assert conv2.n_in == 50 and conv2.n_out == 4 * 12 and conv2.neurons == (24, 24)
    assert fc.n_in == 12 and out.n_dest == 1 and len(mapping.used_pes) == 9 + 2 + 1 + 1
    # conv2 pooled neurons go to the fc layer's single PE; conv1's to the conv2 PEs they reach
    assert set(conv2.emitter_dests) == {1}
    assert set(conv1.emitter_dests) <= {1, 2} and 2 in conv1.emitter_dests
    with pytest.raises(
        MappingError, match=r"layer 2 \(50 inputs\): PE 0 .* holds 12 neurons .* neurons_per_pe, but the limit is 4"
    ):
        map_conv_network(121, layers, roomy_arch(neurons_per_pe=4))
    with pytest.raises(MappingError, match="weight_sram"):
        map_conv_network(121, layers, roomy_arch(weight_sram=SramSpec(1, 64)))
    with pytest.raises(MappingError, match="must come first"):
        map_conv_network(121, [3, layers[0], 2], arch)


def stepped_reference(t_in, net, mapping, arch):
    """The hardware's step recursion neuron by neuron: each input spike goes only to the PEs
    holding a neuron it reaches; a pooled neuron fires with the first spike of its window."""
    steps_in = [math.ceil(t / arch.dt_ms - 1e-9) if math.isfinite(t) else None for t in t_in]
    keys = (
        "spikes_in",
        "weight_sram_reads",
        "slope_adds",
        "potential_adds",
        "compares",
        "spikes_out",
        "route_sram_reads",
    )
    counts = {k: {} for k in keys}

    def bump(name, l, pe, by=1):
        counts[name][(l, pe)] = counts[name].get((l, pe), 0) + by

    state = []
    for lmap, w in zip(mapping.layers, net.weights):
        w = w.numpy()
        pe = np.asarray(lmap.pe_ids)[lmap.neuron_pe]
        if lmap.wiring is None:
            connected = np.ones_like(w, dtype=bool)
            emitter, row = (
                np.arange(lmap.n_out),
                {p: arch.weight_row_words(n) for p, n in zip(lmap.pe_ids, lmap.neurons)},
            )
            dests = [lmap.n_dest] * lmap.n_out
        else:
            connected = np.zeros_like(w, dtype=bool)
            connected[lmap.wiring.post, lmap.wiring.pre] = True
            emitter = lmap.wiring.emitter
            row = {p: arch.weight_row_words(lmap.wiring.row_weights) for p in lmap.pe_ids}
            dests = lmap.emitter_dests
        state.append(
            dict(
                w=w,
                pe=pe,
                connected=connected,
                emitter=emitter,
                row=row,
                dests=dests,
                slope=np.zeros(lmap.n_out),
                pot=np.zeros(lmap.n_out),
                touched=np.zeros(lmap.n_out, bool),
                fire=[None] * lmap.n_out,
                emitted=[None] * lmap.n_emit,
                sparse=lmap.wiring is not None,
            )
        )
    thetas = net.thresholds
    for n in range(arch.n_steps):
        spikes = [i for i, k in enumerate(steps_in) if k == n]
        for l, s in enumerate(state):
            fired_now = []
            for j in range(len(s["fire"])):  # sweep
                if s["touched"][j] and s["fire"][j] is None:
                    s["pot"][j] += s["slope"][j]
                    bump("potential_adds", l, s["pe"][j])
                    bump("compares", l, s["pe"][j])
                    if s["pot"][j] >= thetas[l]:
                        s["fire"][j] = n
                        e = s["emitter"][j]
                        if s["sparse"]:
                            bump("compares", l, s["pe"][j])  # the window's flag test
                        if s["emitted"][e] is None:
                            s["emitted"][e] = n
                            fired_now.append(e)
                            bump("spikes_out", l, s["pe"][j])
                            bump("route_sram_reads", l, s["pe"][j], s["dests"][e])
            for i in spikes:  # events
                reached = np.nonzero(s["connected"][:, i])[0]
                for p in sorted(set(s["pe"][reached].tolist())):
                    bump("spikes_in", l, p)
                    local = [j for j in reached if s["pe"][j] == p and s["fire"][j] is None]
                    if local:
                        bump("weight_sram_reads", l, p, s["row"][p])
                    for j in local:
                        s["slope"][j] += s["w"][j, i]
                        s["touched"][j] = True
                        bump("slope_adds", l, p)
            spikes = fired_now
        if arch.stop_at_first_output and any(e is not None for e in state[-1]["emitted"]):
            break
    return counts


@pytest.mark.parametrize("quantise", [False, True])
def test_cnn_counts_equal_stepped_reference(quantise):
    rng = np.random.default_rng(11)
    arch = roomy_arch(dt_ms=0.5, t_window_ms=40.0)
    specs, weights = small_cnn(rng, nonneg=False)
    net, mapping, _ = hardware_cnn(specs, weights, arch, quantise=quantise)
    t_in = random_images(rng, 3, (11, 11))
    res = simulate(net, mapping, torch.tensor(t_in.reshape(3, -1)), chunk_size=2, progress=False)
    assert bool(torch.isfinite(res.spike_times[-1]).any(1).all()), "every image should reach a decision"
    for b in range(3):
        ref = stepped_reference(t_in[b].ravel(), net, mapping, arch)
        for name, table in ref.items():
            got = {
                (l, p): float(res.counts.ops[name][b, l, p])
                for l in range(len(mapping.layers))
                for p in range(arch.n_pes)
                if res.counts.ops[name][b, l, p] != 0
            }
            assert got == {k: float(v) for k, v in table.items() if v}, (b, name)
