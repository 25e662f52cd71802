"""ReL-PSP exact spike times and STDBP gradients (ALGORITHMS.md 2.2, 2.3)."""

from __future__ import annotations

import math

import pytest
import torch

from finite_differences import central_differences
from snnbp.stdbp.relpsp import relpsp_spike_times, relpsp_spike_times_dense, relpsp_time_weight_gradient
from test_stdbp_reference import relpsp_reference, relpsp_reference_gradients

F64 = torch.float64


def _problem(seed: int, batch: int = 6, n_in: int = 15, n_out: int = 9, silent: float = 0.3, mean: float = 0.15):
    generator = torch.Generator().manual_seed(seed)
    times = torch.rand(batch, n_in, generator=generator, dtype=F64) * 5.0
    times[torch.rand(batch, n_in, generator=generator) < silent] = math.inf
    weight = torch.randn(n_out, n_in, generator=generator, dtype=F64) * 0.5 + mean
    return times, weight


def _reference_times(times: torch.Tensor, weight: torch.Tensor, theta: float) -> torch.Tensor:
    return torch.tensor(
        [[relpsp_reference(row.tolist(), w.tolist(), theta) for w in weight] for row in times], dtype=F64
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_matches_slow_reference(seed, chunk):
    times, weight = _problem(seed)
    out = relpsp_spike_times(times, weight, 1.0, chunk=chunk)
    expected = _reference_times(times, weight, 1.0)
    assert torch.equal(torch.isinf(out), torch.isinf(expected))
    assert torch.isinf(expected).any() and torch.isfinite(expected).any()
    finite = torch.isfinite(expected)
    torch.testing.assert_close(out[finite], expected[finite], rtol=1e-12, atol=1e-12)


def test_dense_formulation_agrees():
    times, weight = _problem(3, batch=8, n_in=30, n_out=12)
    fast = relpsp_spike_times(times, weight, 0.7)
    dense = relpsp_spike_times_dense(times, weight, 0.7)
    assert torch.equal(torch.isinf(fast), torch.isinf(dense))
    torch.testing.assert_close(fast[torch.isfinite(fast)], dense[torch.isfinite(dense)], rtol=1e-12, atol=1e-12)


def test_matches_fine_time_grid():
    times, weight = _problem(4, batch=4, n_in=10, n_out=6)
    theta, dt = 1.0, 1e-4
    grid = torch.arange(0.0, 40.0, dt, dtype=F64)
    finite_times = torch.where(torch.isfinite(times), times, torch.full_like(times, 1e9))
    potential = torch.einsum("oi,bit->bot", weight, (grid - finite_times[:, :, None]).clamp(min=0))
    reached = potential >= theta
    grid_time = torch.where(
        reached.any(-1), grid[reached.to(torch.uint8).argmax(-1)], torch.tensor(math.inf, dtype=F64)
    )
    out = relpsp_spike_times(times, weight, theta)
    late = torch.isfinite(out) & (out > 39.0)  # beyond the grid
    assert torch.equal(torch.isinf(out) | late, torch.isinf(grid_time))
    ok = torch.isfinite(grid_time)
    assert ((grid_time[ok] - out[ok]) >= -1e-12).all() and ((grid_time[ok] - out[ok]) <= dt + 1e-9).all()


def _active_function(times: torch.Tensor, theta: float):
    """Spike times as a function of the spiking inputs only (silent ones stay inf)."""
    finite = torch.isfinite(times)

    def f(active: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        full = times.clone().masked_scatter(finite, active)
        out = relpsp_spike_times(full, weight, theta, chunk=3)
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out))

    return f, times[finite].clone()


def test_gradcheck_float64():
    times, weight = _problem(5, batch=3, n_in=8, n_out=5)
    f, active = _active_function(times, 1.0)
    assert torch.autograd.gradcheck(f, (active.requires_grad_(), weight.clone().requires_grad_()), eps=1e-7, atol=1e-6)


def test_gradients_equal_algorithm_formulas():
    times, weight = _problem(6, batch=4, n_in=12, n_out=7)
    w = weight.clone().requires_grad_()
    t = times.clone().requires_grad_()
    out = relpsp_spike_times(t, w, 1.0)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.where(torch.isfinite(out), out * upstream, torch.zeros_like(out)).sum().backward()
    expected_w = torch.zeros_like(weight)
    expected_t = torch.zeros_like(times)
    for b in range(times.shape[0]):
        for j in range(weight.shape[0]):
            d_w, d_t = relpsp_reference_gradients(times[b].tolist(), weight[j].tolist(), 1.0)
            expected_w[j] += upstream[b, j] * torch.tensor(d_w, dtype=F64)
            expected_t[b] += upstream[b, j] * torch.tensor(d_t, dtype=F64)
    torch.testing.assert_close(w.grad, expected_w, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(t.grad, expected_t, rtol=1e-10, atol=1e-12)
    assert (t.grad[torch.isinf(times)] == 0).all()


def test_backward_matches_dense_autograd():
    times, weight = _problem(7, batch=5, n_in=20, n_out=8)
    grads = []
    for fn in (relpsp_spike_times, relpsp_spike_times_dense):
        w = weight.clone().requires_grad_()
        t = times.clone().requires_grad_()
        out = fn(t, w, 1.0)
        torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()
        grads.append((w.grad, t.grad.nan_to_num(nan=0.0)))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-12)


def test_central_differences_of_weights():
    times, weight = _problem(8, batch=2, n_in=6, n_out=3)
    w = weight.clone().requires_grad_()
    out = relpsp_spike_times(times, w, 1.0)
    torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()

    def total(ww):
        out = relpsp_spike_times(times, ww, 1.0)
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum()

    torch.testing.assert_close(w.grad, central_differences(total, weight), rtol=1e-6, atol=1e-7)


def test_adversarial_cases_are_finite():
    inf = math.inf
    times = torch.tensor(
        [
            [inf, inf, inf, inf],  # all silent
            [1.0, 1.0, 1.0, 1.0],  # ties
            [0.0, 0.5, 2.0, inf],
            [0.0, 0.0, inf, 3.0],
        ],
        dtype=F64,
    )
    weight = torch.tensor(
        [
            [1.0, 1.0, 1.0, 1.0],
            [-1.0, -1.0, -1.0, -1.0],  # never fires
            [0.0, 0.0, 0.0, 0.0],  # zero weights
            [2.0, -2.0, 1e-9, 0.5],  # slope ~ 0 after the second input
            [0.25, 0.25, -0.5, 0.0],  # total exactly 0 when all fire
        ],
        dtype=F64,
    )
    w = weight.clone().requires_grad_()
    t = times.clone().requires_grad_()
    out = relpsp_spike_times(t, w, 1.0)
    assert torch.isinf(out[0]).all() and torch.isinf(out[:, 1]).all() and torch.isinf(out[:, 2]).all()
    assert float(out[1, 0].detach()) == pytest.approx(1.25)  # four tied inputs: 1 + 1 / 4
    assert not torch.isnan(out).any()
    torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()
    assert torch.isfinite(w.grad).all() and torch.isfinite(t.grad).all()
    assert (t.grad[0] == 0).all()
    expected = _reference_times(times, weight, 1.0)
    torch.testing.assert_close(out.detach(), expected)


@pytest.mark.parametrize("chunk", [1, 16])
def test_crossing_before_a_zero_final_slope(chunk):
    # V = t reaches 0.5 at t = 0.5; the second input makes the final slope exactly 0
    times = torch.tensor([[0.0, 1.0]], dtype=F64)
    out = relpsp_spike_times(times, torch.tensor([[1.0, -1.0]], dtype=F64), 0.5, chunk=chunk)
    assert float(out) == pytest.approx(0.5)


def test_clip_caps_the_inverse_slope():
    times = torch.tensor([[0.0, 1.0]], dtype=F64)
    weight = torch.tensor([[1.0, -0.999]], dtype=F64)  # slope 0.001 after t = 1: V(1) = 1 < 1.5
    grads = {}
    for clip in (None, 10.0):
        w = weight.clone().requires_grad_()
        relpsp_spike_times(times, w, 1.5, clip=clip).sum().backward()
        grads[clip] = w.grad
    t_out = 1.0 + 0.5 / 0.001
    torch.testing.assert_close(grads[None], torch.tensor([[(0.0 - t_out) / 0.001, (1.0 - t_out) / 0.001]], dtype=F64))
    torch.testing.assert_close(grads[10.0], torch.tensor([[(0.0 - t_out) * 10.0, (1.0 - t_out) * 10.0]], dtype=F64))


def test_float32_and_empty_inputs():
    times, weight = _problem(9, batch=4, n_in=10, n_out=5)
    out32 = relpsp_spike_times(times.float(), weight.float(), 1.0)
    out64 = relpsp_spike_times(times, weight, 1.0)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-5)
    assert relpsp_spike_times(torch.empty(0, 10), weight.float(), 1.0).shape == (0, 5)
    with pytest.raises(ValueError, match="theta"):
        relpsp_spike_times(times, weight, 0.0)


def test_time_weight_gradient_matrix():
    times, weight = _problem(10, batch=3, n_in=9, n_out=4)
    out = relpsp_spike_times(times, weight, 1.0)
    matrix = relpsp_time_weight_gradient(times, weight, out)
    for b in range(3):
        for j in range(4):
            d_w, _ = relpsp_reference_gradients(times[b].tolist(), weight[j].tolist(), 1.0)
            torch.testing.assert_close(matrix[b, j], torch.tensor(d_w, dtype=F64), rtol=1e-10, atol=1e-12)
