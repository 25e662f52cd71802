"""HM2-BP forward layers and S-PSP against slow, obvious reference loops (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from snnbp.hm2bp.lif import simulate_lif, simulate_lif_conv, simulate_lif_pool
from snnbp.hm2bp.spsp import spsp

TAU_M, TAU_S, T_REF = 64.0, 8.0, 2


def reference_lif(currents, vth, margin, lateral=0.0):
    """Per-neuron scalar loop of ALGORITHMS.md 1.2 over precomputed currents [T, N]."""
    steps, n = currents.shape
    out = torch.zeros(steps, n, dtype=torch.float64)
    for i in range(n):
        v = ep = 0.0
        r = 0
        for t in range(steps):
            v -= v / TAU_M
            ep -= ep / TAU_S
            if t == 0:
                continue
            current = float(currents[t, i])
            if lateral:
                current += lateral * float(out[t - 1].sum() - out[t - 1, i])
            ep += current
            v += ep / TAU_S
            if r > 0:
                v = 0.0
                r -= 1
            if v > vth - margin:
                out[t, i] = 1.0
                r = T_REF
                v = 0.0
    return out


def reference_lateral_lif(spikes_in, weight, vth, lateral):
    """Output layer with lateral inhibition: needs all neurons per step, so loop time outside."""
    steps, n = spikes_in.shape[0], weight.shape[0]
    v = [0.0] * n
    ep = [0.0] * n
    r = [0] * n
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


def reference_spsp(pre, post):
    """Direct double sum over (post firing f, pre spike g) for every pair, ALGORITHMS.md 1.3."""
    n_out, n_in = post.shape[1], pre.shape[1]
    e = torch.zeros(n_out, n_in, dtype=torch.float64)
    c = 1.0 - TAU_S / TAU_M
    for i in range(n_out):
        taus = torch.nonzero(post[:, i]).flatten().tolist()
        for j in range(n_in):
            pres = torch.nonzero(pre[:, j]).flatten().tolist()
            if not pres:
                continue
            if not taus:
                e[i, j] = 0.1
                continue
            total = 0.0
            for f, tau in enumerate(taus):
                reset_end = 1 if f == 0 else taus[f - 1] + T_REF
                s = tau - reset_end
                for tg in pres:
                    if max(1, tau - 4 * TAU_M) <= tg < tau and tg + T_REF <= tau:
                        u = tau - (tg + T_REF)
                        m = min(s, u)
                        total += math.exp(-max(u - s, 0) / TAU_S) * (math.exp(-m / TAU_M) - math.exp(-m / TAU_S)) / c
            e[i, j] = total
    return e


def random_raster(steps, batch, n, p, seed):
    g = torch.Generator().manual_seed(seed)
    raster = (torch.rand(steps, batch, n, generator=g) < p).to(torch.float64)
    raster[0] = 0
    return raster


def test_fc_layer_matches_reference():
    spikes = random_raster(120, 3, 12, 0.2, 0)
    weight = torch.empty(7, 12, dtype=torch.float64).uniform_(-1, 2, generator=torch.Generator().manual_seed(1))
    out = simulate_lif(spikes, weight, vth=2.0)
    assert out.sum() > 20, "the test needs firing neurons"
    for b in range(3):
        currents = torch.zeros(120, 7, dtype=torch.float64)
        currents[1:] = spikes[:-1, b] @ weight.t()
        assert torch.equal(out[:, b], reference_lif(currents, 2.0, 1e-6))


def test_fc_sparse_and_dense_paths_agree():
    weight = torch.randn(9, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    sparse = random_raster(80, 2, 40, 0.03, 3)
    dense = random_raster(80, 2, 40, 0.5, 4)
    for spikes in (sparse, dense):
        out = simulate_lif(spikes, weight, vth=1.5)
        for b in range(2):
            currents = torch.zeros(80, 9, dtype=torch.float64)
            currents[1:] = spikes[:-1, b] @ weight.t()
            assert torch.equal(out[:, b], reference_lif(currents, 1.5, 1e-6))


def test_lateral_inhibition_matches_reference():
    spikes = random_raster(90, 2, 10, 0.3, 5)
    weight = torch.empty(4, 10, dtype=torch.float64).uniform_(0, 1.5, generator=torch.Generator().manual_seed(6))
    out = simulate_lif(spikes, weight, vth=1.0, lateral=-1.0)
    assert out.sum() > 5
    for b in range(2):
        assert torch.equal(out[:, b], reference_lateral_lif(spikes[:, b], weight, 1.0, -1.0))


def test_conv_layer_matches_loop_reference():
    g = torch.Generator().manual_seed(7)
    spikes = (torch.rand(60, 2, 2, 7, 7, generator=g) < 0.3).to(torch.float64)
    spikes[0] = 0
    kernel = torch.empty(3, 2, 3, 3, dtype=torch.float64).uniform_(-0.5, 1.0, generator=g)
    out = simulate_lif_conv(spikes, kernel, vth=1.0)
    assert out.sum() > 10
    for b in range(2):
        currents = torch.zeros(60, 3 * 5 * 5, dtype=torch.float64)
        for t in range(1, 60):
            for c in range(3):
                for y in range(5):
                    for x in range(5):
                        patch = spikes[t - 1, b, :, y:y + 3, x:x + 3]
                        currents[t, c * 25 + y * 5 + x] = (patch * kernel[c]).sum()
        assert torch.equal(out[:, b].reshape(60, -1), reference_lif(currents, 1.0, 0.0))


def test_pool_layer_matches_loop_reference():
    g = torch.Generator().manual_seed(8)
    spikes = (torch.rand(70, 1, 2, 4, 4, generator=g) < 0.4).to(torch.float64)
    spikes[0] = 0
    out = simulate_lif_pool(spikes, 2, vth=2.0)
    assert out.sum() > 5
    currents = torch.zeros(70, 2 * 2 * 2, dtype=torch.float64)
    for t in range(1, 70):
        for c in range(2):
            for y in range(2):
                for x in range(2):
                    currents[t, c * 4 + y * 2 + x] = spikes[t - 1, 0, c, 2 * y:2 * y + 2, 2 * x:2 * x + 2].sum()
    assert torch.equal(out[:, 0].reshape(70, -1), reference_lif(currents, 2.0, 1e-6))


@pytest.mark.parametrize("steps, p_pre, seed", [(60, 0.1, 0), (400, 0.03, 1), (330, 0.2, 2)])
def test_spsp_matches_pair_reference(steps, p_pre, seed):
    pre = random_raster(steps, 2, 6, p_pre, seed)
    post = random_raster(steps, 2, 5, 0.08, seed + 10)
    post[:, :, 4] = 0  # a silent post neuron (probe value)
    pre[:, :, 5] = 0  # a silent pre neuron
    e = spsp(pre, post)
    assert e.shape == (2, 5, 6) and e.dtype == torch.float64
    for b in range(2):
        torch.testing.assert_close(e[b], reference_spsp(pre[:, b], post[:, b]), rtol=1e-9, atol=1e-12)


def test_spsp_refractory_and_long_gaps():
    steps = 400
    pre = torch.zeros(steps, 1, 3, dtype=torch.float64)
    post = torch.zeros(steps, 1, 2, dtype=torch.float64)
    pre[[5, 11, 12, 13, 200, 290], 0, 0] = 1  # spikes inside refractory periods and far back
    pre[[1, 2, 3], 0, 1] = 1
    pre[[399], 0, 2] = 1
    post[[12, 300, 305, 399], 0, 0] = 1
    post[[3, 4], 0, 1] = 1
    torch.testing.assert_close(spsp(pre, post)[0], reference_spsp(pre[:, 0], post[:, 0]), rtol=1e-9, atol=1e-12)


def test_spsp_float32_close_to_float64():
    pre = random_raster(400, 2, 30, 0.05, 3)
    post = random_raster(400, 2, 20, 0.05, 4)
    torch.testing.assert_close(spsp(pre.float(), post.float()).double(), spsp(pre, post), rtol=1e-4, atol=1e-5)
