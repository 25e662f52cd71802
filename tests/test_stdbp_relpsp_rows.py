"""The compiled per-row ReL-PSP engine (convolutions) against the slow reference and the event scan."""

from __future__ import annotations

import math

import pytest
import torch

from snnbp.data.base import DatasetInfo
from snnbp.learner import Batch
from snnbp.stdbp.layers import conv_neuron_function, conv_spike_times, neuron_function
from snnbp.stdbp.learner import ModelParams, build_learner
from snnbp.stdbp.relpsp import relpsp_spike_times
from snnbp.stdbp.relpsp_rows import relpsp_row_spike_times
from test_stdbp_reference import relpsp_reference, relpsp_reference_gradients

F64 = torch.float64


def _problem(seed: int, rows: int = 7, n_in: int = 12, n_out: int = 6, silent: float = 0.3):
    generator = torch.Generator().manual_seed(seed)
    times = torch.rand(rows, n_in, generator=generator, dtype=F64) * 5.0
    times[torch.rand(rows, n_in, generator=generator) < silent] = math.inf
    times[0, 3] = times[0, 5] = 1.5  # a tie
    weight = torch.randn(n_out, n_in, generator=generator, dtype=F64) * 0.5 + 0.15
    return times, weight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spike_times_match_the_slow_reference(seed):
    times, weight = _problem(seed)
    out = relpsp_row_spike_times(times, weight, 1.0)
    expected = torch.tensor(
        [[relpsp_reference(row.tolist(), w.tolist(), 1.0) for w in weight] for row in times], dtype=F64
    )
    assert torch.equal(torch.isinf(out), torch.isinf(expected))
    assert torch.isinf(expected).any() and torch.isfinite(expected).any()
    finite = torch.isfinite(expected)
    torch.testing.assert_close(out[finite], expected[finite], rtol=1e-12, atol=1e-12)


def test_gradients_match_the_algorithm_formulas():
    times, weight = _problem(3)
    w, t = weight.clone().requires_grad_(), times.clone().requires_grad_()
    out = relpsp_row_spike_times(t, w, 1.0)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.where(torch.isfinite(out), out * upstream, torch.zeros_like(out)).sum().backward()
    expected_w, expected_t = torch.zeros_like(weight), torch.zeros_like(times)
    for b in range(times.shape[0]):
        for j in range(weight.shape[0]):
            d_w, d_t = relpsp_reference_gradients(times[b].tolist(), weight[j].tolist(), 1.0)
            expected_w[j] += upstream[b, j] * torch.tensor(d_w, dtype=F64)
            expected_t[b] += upstream[b, j] * torch.tensor(d_t, dtype=F64)
    torch.testing.assert_close(w.grad, expected_w, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(t.grad, expected_t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("clip", [None, 2.0])
@pytest.mark.parametrize("threads", [1, 2])
def test_equals_the_event_scan_with_clipping_and_threads(clip, threads):
    times, weight = _problem(4, rows=40, n_in=30, n_out=9)
    results = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for fn in (relpsp_spike_times, relpsp_row_spike_times):
            w, t = weight.clone().requires_grad_(), times.clone().requires_grad_()
            out = fn(t, w, 1.0, clip=clip)
            torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()
            results.append((out.detach(), w.grad, t.grad))
    finally:
        torch.set_num_threads(previous)
    (scan_out, scan_w, scan_t), (rows_out, rows_w, rows_t) = results
    assert torch.equal(torch.isinf(scan_out), torch.isinf(rows_out))
    finite = torch.isfinite(scan_out)
    torch.testing.assert_close(rows_out[finite], scan_out[finite], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(rows_w, scan_w, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(rows_t, scan_t, rtol=1e-10, atol=1e-12)


def test_gradcheck_float64_of_the_spiking_inputs():
    times, weight = _problem(5, rows=3, n_in=8, n_out=4)
    finite = torch.isfinite(times)

    def f(active: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        out = relpsp_row_spike_times(times.clone().masked_scatter(finite, active), w, 1.0)
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out))

    inputs = (times[finite].clone().requires_grad_(), weight.clone().requires_grad_())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-7, atol=1e-6)


def test_adversarial_rows_and_empty_inputs():
    inf = math.inf
    times = torch.tensor([[inf, inf, inf], [1.0, 1.0, 1.0], [0.0, 1.0, inf]], dtype=F64)
    weight = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, -1.0, 0.0]], dtype=F64)
    out = relpsp_row_spike_times(times, weight, 0.5)
    assert torch.isinf(out[0]).all() and torch.isinf(out[:, 1]).all()
    assert float(out[1, 0]) == pytest.approx(1.0 + 0.5 / 3) and float(out[2, 2]) == pytest.approx(0.5)
    assert relpsp_row_spike_times(torch.empty(0, 3, dtype=F64), weight, 1.0).shape == (0, 3)
    out32 = relpsp_row_spike_times(times.float(), weight.float(), 0.5)
    assert out32.dtype == torch.float32 and torch.equal(torch.isinf(out32), torch.isinf(out))
    with pytest.raises(ValueError, match="theta"):
        relpsp_row_spike_times(times, weight, 0.0)


def test_a_convolution_is_the_same_on_both_engines():
    generator = torch.Generator().manual_seed(6)
    t_in = torch.rand(3, 2, 7, 7, generator=generator, dtype=F64) * 5.0
    t_in[torch.rand(3, 2, 7, 7, generator=generator) < 0.4] = math.inf
    weight = torch.randn(4, 2, 3, 3, generator=generator, dtype=F64) * 0.3 + 0.1
    outs = []
    for neuron in (
        neuron_function("relpsp", 1.0, clip=2.0),
        conv_neuron_function("relpsp", 1.0, engine="rows", clip=2.0),
    ):
        w = weight.clone().requires_grad_()
        out = conv_spike_times(t_in, w, neuron)
        torch.where(torch.isfinite(out), out, torch.zeros_like(out)).sum().backward()
        outs.append((out.detach(), w.grad))
    assert torch.equal(torch.isinf(outs[0][0]), torch.isinf(outs[1][0])) and torch.isfinite(outs[0][0]).any()
    torch.testing.assert_close(outs[0][0].nan_to_num(posinf=0), outs[1][0].nan_to_num(posinf=0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-10, atol=1e-12)


def test_a_cnn_learner_takes_the_same_step_on_both_engines():
    info = DatasetInfo(name="bars", key="bars", num_classes=3, input_shape=(8, 8), kind="image")
    generator = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (12, 8, 8), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 3, (12,), generator=generator)
    weights = []
    for engine in ("scan", "rows"):
        model = ModelParams(
            hidden=(6,),
            conv_channels=(3,),
            conv_kernel=3,
            t_max=5.0,
            t_silent=30.0,
            clip=2.0,
            stats_samples=0,
            engine=engine,
        )
        learner = build_learner(model, info, seed=0)
        learner.train_step(Batch(images, labels, torch.arange(12), "train"))
        weights.append([w.detach().clone() for w in learner.weights])
    for scan, rows in zip(*weights):
        torch.testing.assert_close(rows, scan, rtol=1e-5, atol=1e-6)


def test_an_unknown_engine_or_rows_off_the_cpu_is_refused():
    with pytest.raises(ValueError, match="unknown conv engine 'fast'"):
        conv_neuron_function("relpsp", 1.0, engine="fast")
    with pytest.raises(ValueError, match="CPU only"):
        conv_neuron_function("relpsp", 1.0, engine="rows", device="cuda")
    assert conv_neuron_function("alpha", 1.0, engine="rows").func.__name__ == "alpha_spike_times"
