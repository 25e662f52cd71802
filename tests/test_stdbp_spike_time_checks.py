"""Trajectories, time-grid simulation and Jacobian sweeps of snnbp.stdbp.spike_time_checks (ALGORITHMS.md 2.2, 2.3)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from snnbp.stdbp.alpha import alpha_kernel, alpha_spike_times, alpha_time_weight_gradient
from snnbp.stdbp.relpsp import relpsp_spike_times, relpsp_time_weight_gradient
from snnbp.stdbp.spike_time_checks import (
    autograd_jacobians,
    central_difference_jacobians,
    convergence_order,
    grid_error_bounds,
    grid_error_sweep,
    max_relative_error,
    membrane_potential,
    relpsp_grid_spike_times,
    relpsp_kernel,
)
from test_stdbp_reference import alpha_potential, relpsp_reference_gradients

F64 = torch.float64
INF = math.inf


def _layer(seed: int, batch: int = 3, n_in: int = 12, n_out: int = 6, mean: float = 0.1, window: float = 5.0):
    generator = torch.Generator().manual_seed(seed)
    times = torch.rand(batch, n_in, generator=generator, dtype=F64) * window
    times[torch.rand(batch, n_in, generator=generator) < 0.25] = INF
    weight = torch.randn(n_out, n_in, generator=generator, dtype=F64) * 0.4 + mean
    return times, weight


def test_membrane_potential_hand_example():
    # inputs at 1 and 2 ms with weights 1 and -0.5: V = 0 before 1, t - 1 on [1, 2], then 0.5 t
    t_in = torch.tensor([[1.0, 2.0, INF]], dtype=F64)
    weight = torch.tensor([[1.0, -0.5, 7.0]], dtype=F64)
    t = torch.tensor([0.0, 1.0, 1.5, 2.0, 4.0], dtype=F64)
    v = membrane_potential(t, t_in, weight)
    assert v.shape == (1, 1, 5)
    torch.testing.assert_close(v[0, 0], torch.tensor([0.0, 0.0, 0.5, 1.0, 2.0], dtype=F64))


def test_membrane_potential_reaches_theta_at_the_exact_spike_times():
    times, weight = _layer(0)
    out = relpsp_spike_times(times, weight, 1.0)
    fired = torch.isfinite(out)
    assert fired.any() and (~fired).any()
    for b, j in zip(*torch.nonzero(fired, as_tuple=True)):
        at = out[b, j]
        v = membrane_potential(torch.stack([at - 1e-7, at]), times[b : b + 1], weight[j : j + 1])[0, 0]
        assert float(v[1]) == pytest.approx(1.0, abs=1e-12) and float(v[0]) < 1.0


def test_membrane_potential_with_the_alpha_kernel_matches_the_reference():
    times, weight = _layer(1, batch=1, n_in=6, n_out=2)
    t = torch.linspace(0.0, 8.0, 17, dtype=F64)
    v = membrane_potential(t, times, weight, partial(alpha_kernel, tau=1.5))
    expected = torch.tensor(
        [[alpha_potential(float(x), times[0].tolist(), w.tolist(), 1.5) for x in t] for w in weight], dtype=F64
    )
    torch.testing.assert_close(v[0], expected)


def test_relpsp_kernel():
    torch.testing.assert_close(relpsp_kernel(torch.tensor([-INF, -1.0, 0.0, 2.5])), torch.tensor([0.0, 0.0, 0.0, 2.5]))


def test_grid_hand_example():
    # one input at 0.05 ms, weight 0.5: seen at step 1 (0.1 ms), V_n = 0.05 (n - 1) >= 1 first at n = 21
    t_in = torch.tensor([[0.05]], dtype=F64)
    out = relpsp_grid_spike_times(t_in, torch.tensor([[0.5]], dtype=F64), 1.0, dt=0.1, t_max=10.0)
    assert float(out) == pytest.approx(2.1)
    assert float(relpsp_spike_times(t_in, torch.tensor([[0.5]], dtype=F64), 1.0)) == pytest.approx(2.05)


def test_grid_silent_and_late_neurons_are_inf():
    t_in = torch.tensor([[0.0, 1.0, INF]], dtype=F64)
    weight = torch.tensor([[1.0, -2.0, 5.0], [0.01, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=F64)
    out = relpsp_grid_spike_times(t_in, weight, 2.0, dt=0.01, t_max=50.0)
    assert torch.isinf(out).all()  # peaks at 1 < 2; fires at 200 ms > t_max; never
    assert float(relpsp_spike_times(t_in, weight, 2.0)[0, 1]) == pytest.approx(200.0)


@pytest.mark.parametrize("chunk_steps", [1, 7, 4096])
def test_grid_equals_the_sampled_potential_of_the_rounded_inputs(chunk_steps):
    # the Euler recursion is exact for grid-aligned inputs: compare with V computed from its definition
    times, weight = _layer(2, batch=2, n_in=8, n_out=5)
    dt, t_max, theta = 0.05, 12.0, 1.0
    out = relpsp_grid_spike_times(times, weight, theta, dt, t_max, chunk_steps=chunk_steps)
    steps = torch.arange(0, int(math.ceil(t_max / dt)) + 1, dtype=F64)
    rounded = torch.ceil(times / dt)  # in steps; inf stays inf
    v = membrane_potential(steps, rounded, weight) * dt  # [B, N_out, T], V_n = dt sum w (n - k)^+
    reached = v >= theta - 1e-12
    expected = torch.where(
        reached.any(-1), steps[reached.to(torch.uint8).argmax(-1)] * dt, torch.full(out.shape, INF, dtype=F64)
    )
    assert torch.isfinite(expected).any() and torch.isinf(expected).any()
    torch.testing.assert_close(out, expected)


def test_grid_with_positive_weights_is_late_by_less_than_two_steps():
    generator = torch.Generator().manual_seed(3)
    times = torch.rand(3, 30, generator=generator, dtype=F64) * 4.0
    weight = torch.rand(8, 30, generator=generator, dtype=F64) * 0.1
    exact = relpsp_spike_times(times, weight, 1.0)
    for dt in (0.1, 0.01):
        error = relpsp_grid_spike_times(times, weight, 1.0, dt, 40.0) - exact
        assert (error >= -1e-9).all() and (error < 2 * dt + 1e-9).all()


def test_grid_rejects_negative_times_and_bad_steps():
    with pytest.raises(ValueError, match=">= 0"):
        relpsp_grid_spike_times(torch.tensor([[-1.0]]), torch.ones(1, 1), 1.0, 0.1, 5.0)
    with pytest.raises(ValueError, match="positive"):
        relpsp_grid_spike_times(torch.tensor([[1.0]]), torch.ones(1, 1), 1.0, 0.0, 5.0)


def test_grid_error_bounds_hand_example():
    t_in = torch.tensor([[0.0, 1.0, 9.0]], dtype=F64)
    weight = torch.tensor([[1.0, -0.5, 3.0], [-1.0, 0.0, 0.0]], dtype=F64)
    exact = relpsp_spike_times(t_in, weight, 1.5)  # V(1) = 1, then slope 0.5: t = 2
    bounds = grid_error_bounds(t_in, weight, exact)
    assert float(exact[0, 0]) == pytest.approx(2.0) and math.isinf(float(exact[0, 1]))
    assert float(bounds.amplification[0, 0]) == pytest.approx(3.0)  # (1 + 0.5) / (1 - 0.5)
    assert float(bounds.lower[0, 0]) == pytest.approx(-1.0) and float(bounds.upper[0, 0]) == pytest.approx(3.0)
    assert math.isinf(float(bounds.amplification[0, 1]))


def test_grid_error_sweep_converges_within_the_bounds():
    times, weight = _layer(4, batch=4, n_in=40, n_out=10, mean=0.05)
    exact = relpsp_spike_times(times, weight, 1.0)
    sweep = grid_error_sweep(times, weight, 1.0, exact, [0.1, 0.01, 0.001], 60.0)
    assert sweep.compared[0] > 10 and sweep.mismatched == [0, 0, 0]
    assert sweep.within_bounds == sweep.compared
    assert sweep.max_error[2] < sweep.max_error[0] / 10
    assert 0.5 * 0.001 < sweep.mean_error[2] < 2 * 0.001  # about one step late on average
    assert convergence_order(sweep.dt, sweep.mean_error) == pytest.approx(1.0, abs=0.15)


def test_convergence_order_of_power_laws():
    dts = [0.1, 0.01, 0.001]
    assert convergence_order(dts, [3 * d for d in dts]) == pytest.approx(1.0)
    assert convergence_order(dts, [d**2 for d in dts]) == pytest.approx(2.0)


def _smooth_neuron(t_in: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """t_bj = sum_i w_ji^3 t_bi^2, inf where the sum is negative (a stand-in with known derivatives)."""
    value = (t_in**2) @ (weight**3).t()
    return torch.where(value >= 0, value, torch.full_like(value, INF))


def test_central_differences_of_a_smooth_neuron():
    t_in = torch.tensor([[1.0, 2.0, 0.5], [0.3, 1.5, 2.0]], dtype=F64)
    weight = torch.tensor([[1.0, 0.5, -0.2], [0.7, 0.1, 0.9], [-2.0, -1.0, 0.0]], dtype=F64)
    jac = central_difference_jacobians(_smooth_neuron, t_in, weight, eps=1e-6)
    fires = torch.isfinite(_smooth_neuron(t_in, weight))[:, :, None]
    expected_w = torch.where(fires, 3 * weight[None] ** 2 * t_in[:, None, :] ** 2, torch.zeros(()))
    expected_t = torch.where(fires, 2 * t_in[:, None, :] * weight[None] ** 3, torch.zeros(()))
    assert not fires[:, 2].any()  # neuron 2 is silent: zeros, not nan
    torch.testing.assert_close(jac.weight, expected_w, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(jac.t_in, expected_t, rtol=1e-7, atol=1e-8)
    auto = autograd_jacobians(lambda t, w: _smooth_neuron(t, w).nan_to_num(posinf=0.0), t_in, weight)
    torch.testing.assert_close(auto.weight, expected_w)
    torch.testing.assert_close(auto.t_in, expected_t)


def test_relpsp_jacobians_match_the_reference_formulas():
    times, weight = _layer(5)
    neuron = partial(relpsp_spike_times, theta=1.0)
    auto = autograd_jacobians(neuron, times, weight)
    numeric = central_difference_jacobians(neuron, times, weight, eps=1e-7)
    for b in range(times.shape[0]):
        for j in range(weight.shape[0]):
            d_w, d_t = relpsp_reference_gradients(times[b].tolist(), weight[j].tolist(), 1.0)
            torch.testing.assert_close(auto.weight[b, j], torch.tensor(d_w, dtype=F64), rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(auto.t_in[b, j], torch.tensor(d_t, dtype=F64), rtol=1e-10, atol=1e-12)
    assert (auto.weight != 0).any() and (auto.t_in[:, :, torch.isinf(times).any(0)] == 0).any()
    assert max_relative_error(auto.weight, numeric.weight) < 1e-5
    assert max_relative_error(auto.t_in, numeric.t_in) < 1e-5
    closed = relpsp_time_weight_gradient(times, weight, neuron(times, weight))
    assert max_relative_error(closed, auto.weight) < 1e-12


def test_alpha_jacobians_agree():
    times, weight = _layer(6, n_in=8, n_out=4, mean=0.6)
    neuron = partial(alpha_spike_times, theta=1.0, tau=1.5)
    auto = autograd_jacobians(neuron, times, weight)
    numeric = central_difference_jacobians(neuron, times, weight, eps=1e-6)
    assert torch.isfinite(neuron(times, weight)).sum() >= 4
    assert max_relative_error(auto.weight, numeric.weight) < 1e-5
    assert max_relative_error(auto.t_in, numeric.t_in) < 1e-5
    closed = alpha_time_weight_gradient(times, weight, neuron(times, weight), 1.5)
    assert max_relative_error(closed, auto.weight) < 1e-12


def test_max_relative_error():
    reference = torch.tensor([10.0, -1.0, 1e-6], dtype=F64)
    assert max_relative_error(reference * (1 + 1e-3), reference) == pytest.approx(1e-3)
    # the tiny entry is measured against 1e-3 * 10 = 0.01, not against itself
    assert max_relative_error(torch.tensor([10.0, -1.0, 2e-6], dtype=F64), reference) == pytest.approx(1e-4)
    assert max_relative_error(torch.tensor([10.0, -1.0, 2e-6], dtype=F64), reference, floor=0.0) == pytest.approx(1.0)
    assert max_relative_error(torch.tensor([10.0, -2.0, 1e-6], dtype=F64), reference) == pytest.approx(1.0)
