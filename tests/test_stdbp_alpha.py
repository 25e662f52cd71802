"""Alpha-PSP exact spike times and implicit-function gradients (ALGORITHMS.md 2.2, 2.3, 2.9)."""

from __future__ import annotations

import math

import pytest
import torch

from finite_differences import central_differences
from snnbp.stdbp.alpha import alpha_kernel, alpha_kernel_derivative, alpha_spike_times, alpha_time_weight_gradient
from test_stdbp_reference import alpha_potential, alpha_reference

F64 = torch.float64
TAU = 1.5


def _problem(seed: int, batch: int = 4, n_in: int = 10, n_out: int = 6, silent: float = 0.25):
    generator = torch.Generator().manual_seed(seed)
    times = torch.rand(batch, n_in, generator=generator, dtype=F64) * 5.0
    times[torch.rand(batch, n_in, generator=generator) < silent] = math.inf
    weight = torch.randn(n_out, n_in, generator=generator, dtype=F64) * 0.6 + 0.15
    return times, weight


def test_kernel_shape():
    x = torch.tensor([-1.0, 0.0, TAU, 2 * TAU], dtype=F64)
    torch.testing.assert_close(alpha_kernel(x, TAU), torch.tensor([0.0, 0.0, 1.0, 2 * math.exp(-1.0)], dtype=F64))
    assert alpha_kernel_derivative(x, TAU)[2] == 0  # peak
    grid = torch.linspace(0.1, 5.0, 50, dtype=F64, requires_grad=True)
    (derivative,) = torch.autograd.grad(alpha_kernel(grid, TAU).sum(), grid)
    torch.testing.assert_close(alpha_kernel_derivative(grid.detach(), TAU), derivative)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_slow_reference(seed):
    times, weight = _problem(seed)
    out = alpha_spike_times(times, weight, 1.0, tau=TAU)
    expected = torch.tensor(
        [[alpha_reference(row.tolist(), w.tolist(), 1.0, TAU, points=400) for w in weight] for row in times], dtype=F64
    )
    assert torch.isinf(expected).any() and torch.isfinite(expected).any()
    assert torch.equal(torch.isinf(out), torch.isinf(expected))
    finite = torch.isfinite(expected)
    torch.testing.assert_close(out[finite], expected[finite], rtol=1e-9, atol=1e-9)
    for b, j in zip(*torch.nonzero(finite, as_tuple=True)):
        value = alpha_potential(float(out[b, j]), times[b].tolist(), weight[j].tolist(), TAU)
        assert value == pytest.approx(1.0, abs=1e-12)


def test_matches_fine_time_grid():
    times, weight = _problem(2)
    dt = 1e-4
    grid = torch.arange(0.0, 30.0, dt, dtype=F64)
    lag = grid - torch.where(torch.isfinite(times), times, torch.full_like(times, 1e9))[:, :, None]
    potential = torch.einsum("oi,bit->bot", weight, alpha_kernel(lag, TAU))
    reached = potential >= 1.0
    grid_time = torch.where(
        reached.any(-1), grid[reached.to(torch.uint8).argmax(-1)], torch.tensor(math.inf, dtype=F64)
    )
    out = alpha_spike_times(times, weight, 1.0, tau=TAU)
    assert torch.equal(torch.isinf(out), torch.isinf(grid_time))
    ok = torch.isfinite(grid_time)
    assert ((grid_time[ok] - out[ok]) >= -1e-12).all() and ((grid_time[ok] - out[ok]) <= dt + 1e-9).all()


def test_gradcheck_float64():
    times, weight = _problem(3, batch=3, n_in=7, n_out=4)
    finite = torch.isfinite(times)

    def f(active, w):
        out = alpha_spike_times(times.clone().masked_scatter(finite, active), w, 1.0, tau=TAU)
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out))

    inputs = (times[finite].clone().requires_grad_(), weight.clone().requires_grad_())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-7, atol=1e-5)


def test_central_differences_of_weights_and_times():
    times, weight = _problem(4, batch=2, n_in=6, n_out=4)
    w = weight.clone().requires_grad_()
    t = times.clone().requires_grad_()
    out = alpha_spike_times(t, w, 1.0, tau=TAU)
    torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()

    def total(tt, ww):
        return alpha_spike_times(tt, ww, 1.0, tau=TAU).nan_to_num(nan=0.0, posinf=0.0).sum()

    torch.testing.assert_close(w.grad, central_differences(lambda ww: total(times, ww), weight), rtol=0, atol=1e-6)
    spiking = [tuple(int(i) for i in k) for k in torch.nonzero(torch.isfinite(times))]
    numeric = central_differences(lambda tt: total(tt, weight), times, entries=spiking)
    finite = torch.isfinite(times)
    torch.testing.assert_close(t.grad[finite], numeric[finite], rtol=0, atol=1e-6)
    assert (t.grad[torch.isinf(times)] == 0).all()


def test_time_weight_gradient_matrix_matches_autograd():
    times, weight = _problem(5, batch=2, n_in=6, n_out=3)
    out = alpha_spike_times(times, weight, 1.0, tau=TAU)
    matrix = alpha_time_weight_gradient(times, weight, out, TAU)
    for b in range(2):
        for j in range(3):
            w = weight.clone().requires_grad_()
            value = alpha_spike_times(times[b : b + 1], w, 1.0, tau=TAU)[0, j]
            if math.isfinite(float(value.detach())):
                (grad,) = torch.autograd.grad(value, w)
                torch.testing.assert_close(matrix[b, j], grad[j])
            else:
                assert (matrix[b, j] == 0).all()


def test_adversarial_cases_are_finite():
    inf = math.inf
    times = torch.tensor([[inf, inf, inf], [1.0, 1.0, 1.0], [0.0, 0.3, 40.0]], dtype=F64)
    weight = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, -0.5, 1.0 + 1e-12]], dtype=F64)
    w = weight.clone().requires_grad_()
    t = times.clone().requires_grad_()
    out = alpha_spike_times(t, w, 1.0, tau=TAU, clip=100.0)
    assert torch.isinf(out[0]).all() and torch.isinf(out[:, 1]).all() and torch.isinf(out[:, 2]).all()
    assert not torch.isnan(out).any()
    # a single input of weight exactly 1 + 1e-12 reaches theta = 1 almost at its peak (tangent)
    assert float(out[2, 3].detach()) == pytest.approx(40.0 + TAU, abs=1e-4)
    torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()
    assert torch.isfinite(w.grad).all() and torch.isfinite(t.grad).all()
    assert (t.grad[0] == 0).all()
    # near the peak V' ~ 0: the exact |dt/dw| = K / V' explodes, the clipped one is 100 * K
    tangent = weight[3:].clone().requires_grad_()
    t_tangent = alpha_spike_times(times[2:], tangent, 1.0, tau=TAU, clip=100.0)[0, 0]
    (grad,) = torch.autograd.grad(t_tangent, tangent)
    lag = t_tangent.detach() - times[2, 2]
    assert float(grad[0, 2]) == pytest.approx(-100.0 * float(alpha_kernel(lag, TAU)))
