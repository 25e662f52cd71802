"""HM2-BP backward pass (ALGORITHMS.md 1.4-1.9) against direct per-pair loops and finite differences (float64)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from finite_differences import central_differences
from snnbp.hm2bp import backprop, model, simulate_lif, spsp
from snnbp.hm2bp.boosting import boost_weights
from snnbp.hm2bp.params import ModelParams
from test_hm2bp_spsp import reference_pair

F64 = torch.float64


def random_raster(shape, p, seed):
    raster = (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).to(F64)
    raster[0] = 0
    return raster


def loop_fc(pre, post, weight, delta, vth, lam=None):
    """Weight gradient (no regulariser) and pre-delta of one FC layer by explicit loops over pairs.

    delta: ``[B, N_out]`` already divided by vth; returns (grad, pre_delta undivided).
    """
    batch, n_out, n_in = pre.shape[1], weight.shape[0], weight.shape[1]
    grad = torch.zeros(n_out, n_in, dtype=F64)
    pre_delta = torch.zeros(batch, n_in, dtype=F64)
    for b in range(batch):
        o_post = [int(post[:, b, i].sum()) for i in range(n_out)]
        o_pre = [int(pre[:, b, j].sum()) for j in range(n_in)]
        e = [[reference_pair(pre[:, b, j], post[:, b, i]) for j in range(n_in)] for i in range(n_out)]
        for i in range(n_out):
            sigma = (
                sum(float(weight[i, l]) * (e[i][l] / o_post[i] if o_post[i] > 0 else 0.5) for l in range(n_in)) / vth
            )
            factor = 1.0 if lam is None else float(lam[b, i])
            for j in range(n_in):
                grad[i, j] += float(delta[b, i]) * e[i][j] * (1 + sigma) * factor / batch
                rho = e[i][j] / o_pre[j] if o_post[i] > 0 and o_pre[j] > 0 else 1.0
                pre_delta[b, j] += float(delta[b, i]) * float(weight[i, j]) * rho
    return grad, pre_delta


def fc_case(seed, batch=3, n_in=12, n_out=5, steps=150):
    pre = random_raster((steps, batch, n_in), 0.08, seed)
    pre[:, 0, 3] = 0  # a silent pre neuron
    weight = torch.empty(n_out, n_in, dtype=F64).uniform_(-0.5, 2.0, generator=torch.Generator().manual_seed(seed + 1))
    post = simulate_lif(pre, weight, vth=2.0)
    post[:, 1, 2] = 0  # a silent post neuron (probe value, side-effect ratio 0.5)
    delta = torch.randn(batch, n_out, dtype=F64, generator=torch.Generator().manual_seed(seed + 2))
    return pre, post, weight, delta


PARAMS = ModelParams(dtype="float64")


@pytest.mark.parametrize("seed", [0, 1])
def test_fc_gradient_and_pre_delta_match_pair_loops(seed):
    pre, post, weight, delta = fc_case(seed)
    assert post.sum() > 10
    grad, pre_delta = model.fc_backward(weight, pre, post, delta, 2.0, PARAMS)
    ref_grad, ref_pre = loop_fc(pre, post, weight, delta, 2.0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(pre_delta, ref_pre, rtol=1e-9, atol=1e-12)


def test_fused_first_layer_gradient_equals_explicit_one():
    pre, post, weight, delta = fc_case(3, batch=20, n_in=30, n_out=8, steps=200)
    currents = torch.zeros(200, 20, 8, dtype=F64)
    currents[1:] = pre[:-1] @ weight.t()
    fused, none = model.fc_backward(weight, pre, post, delta, 2.0, PARAMS, need_pre_delta=False, currents=currents)
    explicit, _ = model.fc_backward(weight, pre, post, delta, 2.0, PARAMS)
    assert none is None
    torch.testing.assert_close(fused, explicit, rtol=1e-9, atol=1e-12)
    no_side = dataclasses.replace(PARAMS, use_side_effect=False)
    torch.testing.assert_close(
        model.fc_backward(weight, pre, post, delta, 2.0, no_side, need_pre_delta=False, currents=currents)[0],
        model.fc_backward(weight, pre, post, delta, 2.0, no_side)[0],
        rtol=1e-9,
        atol=1e-12,
    )


def test_output_gradient_with_lateral_factor_matches_loops():
    pre, post, weight, delta = fc_case(4, n_out=4)
    labels = torch.tensor([0, 2, 3])
    e_lateral = spsp(post, post)
    lam = backprop.lateral_factor(e_lateral, post.sum(0), labels, 2.0, 1.0)
    grad, _ = model.fc_backward(weight, pre, post, delta, 2.0, PARAMS, lam=lam)
    torch.testing.assert_close(grad, loop_fc(pre, post, weight, delta, 2.0, lam)[0], rtol=1e-9, atol=1e-12)


def test_lateral_factor_matches_loop():
    post = random_raster((200, 2, 4), 0.05, 5)
    post[:, 0, 1] = 0  # silent non-target: d = 0
    post[:, 1, 3] = 0  # silent target: d = 1 / vth
    labels = torch.tensor([2, 3])
    vth, w0 = 5.0, 1.0
    lam = backprop.lateral_factor(spsp(post, post), post.sum(0), labels, vth, w0)
    for b in range(2):
        counts = post[:, b].sum(0).tolist()
        d = [1 / vth if counts[x] > 0 or x == labels[b] else 0.0 for x in range(4)]

        def rho(j, l, b=b, counts=counts):  # e_{l|j} / o_j of sample b
            return 1.0 if counts[j] == 0 or counts[l] == 0 else reference_pair(post[:, b, j], post[:, b, l]) / counts[j]

        for j in range(4):
            loop = sum(rho(j, l) * d[l] * rho(l, j) * d[j] for l in range(4) if l != j)
            assert float(lam[b, j]) == pytest.approx(1 / (1 - w0 * w0 * loop), rel=1e-9)
    assert not torch.allclose(lam, torch.ones_like(lam)), "the case must exercise the loop factor"


def test_conv_backward_matches_loops():
    pre = random_raster((120, 2, 2, 6, 6), 0.1, 6)
    kernel = torch.empty(3, 2, 3, 3, dtype=F64).uniform_(-0.3, 1.0, generator=torch.Generator().manual_seed(7))
    post = model.layer_forward(model.Layer("conv", (2, 6, 6), (3, 4, 4), 4.0, 0.0, size=3), kernel, pre, PARAMS)[0]
    post[:, 0, 1, 2, 2] = 0  # a silent output position
    assert 20 < post.sum() < post.numel() / 4
    delta = torch.randn(2, 3, 4, 4, dtype=F64, generator=torch.Generator().manual_seed(8))
    grad, pre_delta = model.conv_backward(kernel, pre, post, delta, 4.0, PARAMS)
    ref_grad = torch.zeros_like(kernel)
    ref_pre = torch.zeros(2, 2, 6, 6, dtype=F64)
    for b in range(2):
        for c in range(3):
            for y in range(4):
                for x in range(4):
                    o_post = int(post[:, b, c, y, x].sum())
                    taps = [(ci, ky, kx) for ci in range(2) for ky in range(3) for kx in range(3)]
                    e = {t: reference_pair(pre[:, b, t[0], y + t[1], x + t[2]], post[:, b, c, y, x]) for t in taps}
                    sigma = (
                        sum(
                            float(kernel[c, ci, ky, kx]) * (e[(ci, ky, kx)] / o_post if o_post else 0.5)
                            for ci, ky, kx in taps
                        )
                        / 4.0
                    )
                    for ci, ky, kx in taps:
                        ref_grad[c, ci, ky, kx] += float(delta[b, c, y, x]) * e[(ci, ky, kx)] * (1 + sigma) / 2
                        o_pre = int(pre[:, b, ci, y + ky, x + kx].sum())
                        rho = e[(ci, ky, kx)] / o_pre if o_post and o_pre else 1.0
                        ref_pre[b, ci, y + ky, x + kx] += float(delta[b, c, y, x]) * float(kernel[c, ci, ky, kx]) * rho
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(pre_delta, ref_pre, rtol=1e-9, atol=1e-12)


def test_pool_backward_routes_by_area_and_ratio():
    pre = random_raster((150, 1, 2, 4, 4), 0.1, 9)
    post = model.layer_forward(model.Layer("pool", (2, 4, 4), (2, 2, 2), 1.0, 1e-6, size=2), None, pre, PARAMS)[0]
    delta = torch.randn(1, 2, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(10))
    routed = model.pool_backward(pre, post, delta, 2, PARAMS)
    for c in range(2):
        for y in range(4):
            for x in range(4):
                o_post, o_pre = int(post[:, 0, c, y // 2, x // 2].sum()), int(pre[:, 0, c, y, x].sum())
                e = reference_pair(pre[:, 0, c, y, x], post[:, 0, c, y // 2, x // 2])
                rho = e / o_pre if o_post and o_pre else 1.0
                assert float(routed[0, c, y, x]) == pytest.approx(
                    float(delta[0, c, y // 2, x // 2]) / 4 * rho, rel=1e-9
                )


def test_margin_error_and_cost():
    counts = torch.tensor([[40.0, 5.0, 11.0, 0.0], [29.0, 12.0, 3.0, 10.0]])
    d, cost = backprop.margin_error(counts, torch.tensor([0, 0]))
    assert d.tolist() == [[0.0, 0.0, 6.0, 0.0], [-6.0, 7.0, 0.0, 0.0]]  # |o - y| <= 5 gives no error
    assert cost.tolist() == [36.0, 85.0]


def test_silent_target_injection():
    raster = torch.zeros(400, 2, 3)
    raster[10, 1, 1] = 1
    out = backprop.inject_target_spikes(raster, torch.tensor([1, 1]))
    assert torch.nonzero(out[:, 0, 1]).flatten().tolist() == list(range(11, 400, 11))  # floor(400/35) = 11
    assert torch.equal(out[:, 1], raster[:, 1]) and out[:, 0, [0, 2]].sum() == 0


def test_regulariser_gradient_is_the_derivative_of_its_energy():
    """R(w) = d/dw of (lambda N L / 2) sum_i exp(beta (S_i - 1)), S_i = mean_j (w_ij / L)^2 (central differences)."""
    weight = torch.empty(3, 2, 2, 2, dtype=F64).uniform_(-9, 9, generator=torch.Generator().manual_seed(11))
    lam, beta, limit = 10.0, 0.4, 8.0
    fan_in = 8

    def energy(w):
        s = ((w / limit) ** 2).reshape(3, -1).mean(1)
        return (lam * fan_in * limit / 2 * torch.exp(beta * (s - 1))).sum()

    grad = backprop.regulariser_gradient(weight, lambda_reg=lam, beta_reg=beta, limit=limit)
    torch.testing.assert_close(grad, central_differences(energy, weight), rtol=1e-6, atol=1e-8)
    assert torch.equal(backprop.regulariser_gradient(weight, lambda_reg=0.0, beta_reg=beta), torch.zeros_like(weight))


def test_adam_step_matches_torch_adam():
    weight = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(12))
    reference = torch.nn.Parameter(weight.clone())
    optimiser = torch.optim.Adam([reference], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    state = model.AdamState(torch.zeros_like(weight), torch.zeros_like(weight))
    for k in range(5):
        grad = torch.randn(4, 5, dtype=F64, generator=torch.Generator().manual_seed(20 + k))
        weight, state = model.adam_step(weight, grad, state, 1e-3)
        reference.grad = grad
        optimiser.step()
    torch.testing.assert_close(weight, reference.detach(), rtol=1e-12, atol=1e-14)
    assert state.step == 5


def test_learning_rate_schedule_matches_the_official_log():
    rates = [model.learning_rate(1e-3, e) for e in range(4)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3 / math.sqrt(2), 1e-3 / math.sqrt(3)])
    assert model.learning_rate(1e-3, 9, decay=False) == 1e-3


def test_boosting_matches_loop():
    weights = torch.tensor([1.0, 1.0, 2.0, 1.0, 1.5], dtype=F64)
    labels = torch.tensor([0, 0, 0, 1, 1])
    wrong = torch.tensor([True, False, True, False, False])
    boosted = boost_weights(weights, labels, wrong, 2)
    err0 = (1.0 + 2.0) / 4.0
    assert boosted.tolist() == pytest.approx([math.exp(err0 / 20), 1.0, 2 * math.exp(err0 / 20), 1.0, 1.5])


def test_macro_relation_count_is_total_psp_over_threshold():
    """ALGORITHMS.md 1.4: o_i ~ sum_j w_ij e_ij / vth. The approximation error shrinks as vth grows
    (more inputs per output spike); measured on random rasters (median relative error about
    18 % at vth 5, 8 % at vth 10, 3 % at vth 20; correlation >= 0.97)."""
    g = torch.Generator().manual_seed(0)
    pre = (torch.rand(400, 4, 200, generator=g) < 0.02).to(F64)
    pre[0] = 0
    weight = torch.empty(40, 200, dtype=F64).uniform_(-0.5, 1.5, generator=g)
    for vth, tolerance in ((5.0, 0.25), (20.0, 0.06)):
        post = simulate_lif(pre, weight, vth=vth)
        counts = post.sum(0)
        macro = (spsp(pre, post) * weight).sum(-1) / vth
        firing = counts >= 3
        assert firing.sum() > 50
        relative = ((macro - counts).abs() / counts)[firing]
        assert relative.median() < tolerance
        assert torch.corrcoef(torch.stack([macro[firing], counts[firing]]))[0, 1] > 0.95
