"""HM2-BP forward layers (ALGORITHMS.md 1.2, 1.9) against slow, obvious per-neuron loops (float64)."""

from __future__ import annotations

import torch

from snnbp.hm2bp.lif import NeuronParams, simulate_lif, simulate_lif_conv, simulate_lif_pool

TAU_M, TAU_S, T_REF = 64.0, 8.0, 2


def reference_lif(currents, vth, margin, tau_m=TAU_M, tau_s=TAU_S, t_ref=T_REF):
    """Per-neuron scalar loop of ALGORITHMS.md 1.2 over precomputed currents ``[T, N]``."""
    steps, n = currents.shape
    out = torch.zeros(steps, n, dtype=torch.float64)
    for i in range(n):
        v = ep = 0.0
        r = 0
        for t in range(steps):
            v -= v / tau_m
            ep -= ep / tau_s
            if t == 0:
                continue
            ep += float(currents[t, i])
            v += ep / tau_s
            if r > 0:
                v = 0.0
                r -= 1
            if v > vth - margin:
                out[t, i] = 1.0
                r = t_ref
                v = 0.0
    return out


def reference_lateral_lif(spikes_in, weight, vth, lateral):
    """Output layer with lateral inhibition: every neuron sees all others' spikes at ``t-1``."""
    steps, n = spikes_in.shape[0], weight.shape[0]
    v, ep, r = [0.0] * n, [0.0] * n, [0] * n
    out = torch.zeros(steps, n, dtype=torch.float64)
    for t in range(steps):
        for i in range(n):
            v[i] -= v[i] / TAU_M
            ep[i] -= ep[i] / TAU_S
        if t == 0:
            continue
        for i in range(n):
            current = sum(float(weight[i, j]) * float(spikes_in[t - 1, j]) for j in range(weight.shape[1]))
            current += lateral * sum(float(out[t - 1, l]) for l in range(n) if l != i)
            ep[i] += current
            v[i] += ep[i] / TAU_S
            if r[i] > 0:
                v[i] = 0.0
                r[i] -= 1
            if v[i] > vth - 1e-6:
                out[t, i] = 1.0
                r[i] = T_REF
                v[i] = 0.0
    return out


def random_raster(shape, p, seed):
    raster = (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).to(torch.float64)
    raster[0] = 0
    return raster


def loop_fc_currents(spikes, weight):
    """``I(t) = W s(t-1)`` by explicit sums, one sample ``[T, N_in]`` -> ``[T, N_out]``."""
    currents = torch.zeros(spikes.shape[0], weight.shape[0], dtype=torch.float64)
    for t in range(1, spikes.shape[0]):
        for i in range(weight.shape[0]):
            currents[t, i] = sum(float(weight[i, j]) for j in range(weight.shape[1]) if spikes[t - 1, j])
    return currents


def test_fc_layer_matches_reference():
    spikes = random_raster((120, 3, 12), 0.2, 0)
    weight = torch.empty(7, 12, dtype=torch.float64).uniform_(-1, 2, generator=torch.Generator().manual_seed(1))
    out = simulate_lif(spikes, weight, vth=2.0)
    assert out.shape == (120, 3, 7) and 20 < out.sum() < out.numel() / 3, "the test needs firing and silent steps"
    for b in range(3):
        assert torch.equal(out[:, b], reference_lif(loop_fc_currents(spikes[:, b], weight), 2.0, 1e-6))


def test_stable_keyword_constants_match_reference_and_the_neuron_object():
    """The stable form ``simulate_lif(spikes, w, vth=, tau_m=, tau_s=, t_ref=)`` (design notes)."""
    spikes = random_raster((150, 2, 10), 0.25, 5)
    weight = torch.empty(6, 10, dtype=torch.float64).uniform_(-0.5, 2, generator=torch.Generator().manual_seed(6))
    out = simulate_lif(spikes, weight, vth=1.5, tau_m=20.0, tau_s=4.0, t_ref=5)
    assert torch.equal(out, simulate_lif(spikes, weight, vth=1.5, neuron=NeuronParams(tau_m=20.0, tau_s=4.0, t_ref=5)))
    assert not torch.equal(out, simulate_lif(spikes, weight, vth=1.5)), "the constants must matter here"
    for b in range(2):
        expected = reference_lif(loop_fc_currents(spikes[:, b], weight), 1.5, 1e-6, tau_m=20.0, tau_s=4.0, t_ref=5)
        assert torch.equal(out[:, b], expected)
    only_t_ref = simulate_lif(spikes, weight, vth=1.5, neuron=NeuronParams(tau_m=20.0), t_ref=5)
    assert torch.equal(only_t_ref, simulate_lif(spikes, weight, vth=1.5, neuron=NeuronParams(tau_m=20.0, t_ref=5)))


def test_fc_sparse_and_dense_input_paths_agree_with_reference():
    weight = torch.randn(9, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for spikes in (random_raster((80, 2, 40), 0.03, 3), random_raster((80, 2, 40), 0.5, 4)):
        out = simulate_lif(spikes, weight, vth=1.5)
        assert out.sum() > 0
        for b in range(2):
            assert torch.equal(out[:, b], reference_lif(loop_fc_currents(spikes[:, b], weight), 1.5, 1e-6))


def test_fc_threshold_margin_and_refractory_on_constant_drive():
    """A neuron driven exactly to ``vth`` fires only through the 1e-6 margin; refractory clamps v for t_ref steps."""
    steps = 40
    spikes_in = torch.zeros(steps, 1, 1, dtype=torch.float64)
    spikes_in[0] = 1.0
    weight = torch.full((1, 1), 8.0, dtype=torch.float64)  # ep = 8, v = ep / tau_s = 1 at t = 1
    assert simulate_lif(spikes_in, weight, vth=1.0)[1, 0, 0] == 1.0  # v == vth fires (v > vth - 1e-6)
    assert simulate_lif(spikes_in, weight, vth=1.0 + 2e-6)[1, 0, 0] == 0.0
    strong = torch.full((1, 1), 400.0, dtype=torch.float64)
    train = simulate_lif(spikes_in, strong, vth=1.0)[:, 0, 0]
    times = torch.nonzero(train).flatten().tolist()
    assert times[:3] == [1, 4, 7]  # fire, 2 refractory steps with v clamped to 0, fire again
    assert torch.equal(train, reference_lif(strong[0, 0] * spikes_in[:, 0].roll(1, 0), 1.0, 1e-6)[:, 0])


def test_lateral_inhibition_matches_reference():
    spikes = random_raster((90, 2, 10), 0.3, 5)
    weight = torch.empty(4, 10, dtype=torch.float64).uniform_(0, 1.5, generator=torch.Generator().manual_seed(6))
    out = simulate_lif(spikes, weight, vth=1.0, lateral=-1.0)
    assert out.sum() > 5
    assert not torch.equal(out, simulate_lif(spikes, weight, vth=1.0)), "inhibition must change the rasters"
    for b in range(2):
        assert torch.equal(out[:, b], reference_lateral_lif(spikes[:, b], weight, 1.0, -1.0))


def test_conv_layer_matches_loop_reference_with_strict_threshold():
    g = torch.Generator().manual_seed(7)
    spikes = random_raster((60, 2, 2, 7, 7), 0.3, 7)
    kernel = torch.empty(3, 2, 3, 3, dtype=torch.float64).uniform_(-0.5, 1.0, generator=g)
    out = simulate_lif_conv(spikes, kernel, vth=1.0)
    assert out.shape == (60, 2, 3, 5, 5) and out.sum() > 10
    for b in range(2):
        currents = torch.zeros(60, 3 * 5 * 5, dtype=torch.float64)
        for t in range(1, 60):
            for c in range(3):
                for y in range(5):
                    for x in range(5):
                        patch = spikes[t - 1, b, :, y : y + 3, x : x + 3]
                        currents[t, c * 25 + y * 5 + x] = (patch * kernel[c]).sum()  # cross-correlation
        assert torch.equal(out[:, b].reshape(60, -1), reference_lif(currents, 1.0, 0.0))


def test_pool_layer_matches_loop_reference():
    spikes = random_raster((70, 1, 2, 4, 4), 0.4, 8)
    out = simulate_lif_pool(spikes, 2, vth=2.0)
    assert out.shape == (70, 1, 2, 2, 2) and out.sum() > 5
    currents = torch.zeros(70, 2 * 2 * 2, dtype=torch.float64)
    for t in range(1, 70):
        for c in range(2):
            for y in range(2):
                for x in range(2):
                    currents[t, c * 4 + y * 2 + x] = spikes[t - 1, 0, c, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2].sum()
    assert torch.equal(out[:, 0].reshape(70, -1), reference_lif(currents, 2.0, 1e-6))


def test_float32_fast_path_matches_float64_on_sparse_input():
    spikes = random_raster((200, 4, 100), 0.02, 9)
    weight = torch.empty(30, 100, dtype=torch.float64).uniform_(-1, 1, generator=torch.Generator().manual_seed(10))
    exact = simulate_lif(spikes, weight, vth=1.0)
    fast = simulate_lif(spikes.float(), weight.float(), vth=1.0)
    assert fast.dtype == torch.float32 and exact.sum() > 20
    assert (fast.double() != exact).float().mean() < 1e-3
