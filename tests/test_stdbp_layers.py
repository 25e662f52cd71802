"""Spiking convolution, first-spike pooling, architectures and the spike-time loss."""

from __future__ import annotations

import math

import pytest
import torch

from snnbp.stdbp.layers import conv_spike_times, first_spike_pool, neuron_function
from snnbp.stdbp.loss import first_spike_prediction, late_label_penalty, spike_time_cross_entropy
from snnbp.stdbp.model import architecture, forward, layer_shapes, network_name
from test_stdbp_reference import alpha_reference, relpsp_reference

F64 = torch.float64


def _images(seed: int, batch: int = 2, channels: int = 2, size: int = 6):
    generator = torch.Generator().manual_seed(seed)
    times = torch.rand(batch, channels, size, size, generator=generator, dtype=F64) * 4.0
    times[torch.rand(times.shape, generator=generator) < 0.3] = math.inf
    return times, generator


@pytest.mark.parametrize("kernel", ["relpsp", "alpha"])
def test_conv_matches_loop_reference(kernel):
    times, generator = _images(0)
    weight = torch.randn(3, 2, 3, 3, generator=generator, dtype=F64) * 0.4 + 0.1
    neuron = neuron_function(kernel, 1.0, tau=1.5)
    out = conv_spike_times(times, weight, neuron)
    assert out.shape == (2, 3, 4, 4)
    for b in range(2):
        for o in range(3):
            for y in range(4):
                for x in range(4):
                    patch = times[b, :, y : y + 3, x : x + 3].reshape(-1).tolist()
                    w = weight[o].reshape(-1).tolist()
                    expected = (
                        relpsp_reference(patch, w, 1.0)
                        if kernel == "relpsp"
                        else alpha_reference(patch, w, 1.0, 1.5, points=200)
                    )
                    if math.isinf(expected):
                        assert math.isinf(out[b, o, y, x])
                    else:
                        assert float(out[b, o, y, x]) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_conv_gradients_against_central_differences():
    times, generator = _images(1, batch=1, channels=1, size=5)
    weight = torch.randn(2, 1, 3, 3, generator=generator, dtype=F64) * 0.4 + 0.2
    neuron = neuron_function("relpsp", 1.0)
    finite = torch.isfinite(times)

    def f(active, w):
        out = conv_spike_times(times.clone().masked_scatter(finite, active), w, neuron)
        return torch.where(torch.isfinite(out), out, torch.zeros_like(out))

    assert torch.autograd.gradcheck(
        f, (times[finite].clone().requires_grad_(), weight.clone().requires_grad_()), eps=1e-7, atol=1e-6
    )


def test_first_spike_pool_matches_loop_and_routes_gradient_to_argmin():
    times, _ = _images(2, batch=2, channels=2, size=5)
    times.requires_grad_()
    pooled = first_spike_pool(times, 2)
    assert pooled.shape == (2, 2, 2, 2)
    for b in range(2):
        for c in range(2):
            for y in range(2):
                for x in range(2):
                    window = times[b, c, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2].detach()
                    assert float(pooled[b, c, y, x].detach()) == float(window.min())
    finite = torch.isfinite(pooled)
    torch.where(finite, pooled, torch.zeros_like(pooled)).sum().backward()
    assert int((times.grad != 0).sum()) == int(finite.sum())
    assert torch.isfinite(times.grad).all()
    chosen = times.detach()[times.grad != 0]
    assert torch.equal(chosen.sort().values, pooled.detach()[finite].sort().values)


@pytest.mark.parametrize(("kernel", "flatten"), [(3, 800), (5, 512)])
def test_cnn_architecture_shapes(kernel, flatten):
    specs = architecture((28, 28), 10, conv_channels=(16, 32), conv_kernel=kernel, hidden=(128,))
    shapes = layer_shapes(specs, (28, 28))
    assert math.prod(shapes[3]) == flatten
    assert network_name(specs, (28, 28)) == f"28x28-16C{kernel}-P2-32C{kernel}-P2-{flatten}-128-10"
    assert network_name(architecture((28, 28), 10, hidden=(800,)), (28, 28)) == "784-800-10"
    with pytest.raises(ValueError, match="empty"):
        layer_shapes(architecture((8, 8), 10, conv_channels=(4, 4, 4), conv_kernel=3), (8, 8))


def test_cnn_forward_runs_and_is_differentiable():
    specs = architecture((10, 10), 3, conv_channels=(2,), conv_kernel=3, hidden=(5,))
    generator = torch.Generator().manual_seed(3)
    weights = [
        (torch.randn(2, 1, 3, 3, generator=generator) * 0.3 + 0.3).requires_grad_(),
        (torch.randn(5, 32, generator=generator) * 0.2 + 0.1).requires_grad_(),
        (torch.randn(3, 5, generator=generator) * 0.3 + 0.3).requires_grad_(),
    ]
    images = torch.rand(4, 10, 10, generator=generator) * 3
    outputs = forward(images, specs, weights, neuron_function("relpsp", 1.0))
    assert [tuple(o.shape) for o in outputs] == [(4, 2, 8, 8), (4, 2, 4, 4), (4, 5), (4, 3)]
    loss = spike_time_cross_entropy(outputs[-1], torch.tensor([0, 1, 2, 0]), 10.0)
    loss.backward()
    assert all(torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0 for w in weights)


def test_loss_gradient_is_label_minus_softmax():
    t_out = torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.0, 2.0]], dtype=F64, requires_grad=True)
    labels = torch.tensor([1, 0])
    spike_time_cross_entropy(t_out, labels, 10.0).backward()
    p = torch.softmax(-t_out.detach(), dim=1)
    expected = (torch.nn.functional.one_hot(labels, 3).to(F64) - p) / 2
    torch.testing.assert_close(t_out.grad, expected)


def test_late_and_silent_outputs_in_loss_and_prediction():
    inf = math.inf
    t_out = torch.tensor([[inf, 2.0, 5.0], [inf, inf, inf], [1.0, 1.0, inf]], dtype=F64, requires_grad=True)
    labels = torch.tensor([0, 2, 1])
    loss = spike_time_cross_entropy(t_out, labels, 4.0)
    assert torch.isfinite(loss)
    loss.backward()
    # silent (inf) and late (5 >= 4) outputs count as firing at t_silent = 4, with zero gradient
    assert (t_out.grad[t_out.detach() >= 4.0] == 0).all() and (t_out.grad[t_out.detach() < 4.0] != 0).all()
    windowed = torch.tensor([[4.0, 2.0, 4.0], [4.0, 4.0, 4.0], [1.0, 1.0, 4.0]], dtype=F64)
    expected = torch.nn.functional.cross_entropy(-windowed, labels)
    assert float(loss.detach()) == pytest.approx(float(expected))
    assert first_spike_prediction(t_out.detach()).tolist() == [1, 0, 0]  # earliest; all silent -> 0; tie -> lowest


def test_late_label_penalty_raises_the_weight_sum():
    inf = math.inf
    t_in = torch.tensor([[0.0, inf, 1.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]], dtype=F64)
    weight = torch.tensor([[-1.0, 5.0, 0.5], [1.0, 1.0, 1.0]], dtype=F64, requires_grad=True)
    t_out = torch.tensor([[inf, 1.0], [inf, 0.5], [1.0, 7.0]], dtype=F64)  # row 0 silent label, row 2 late label
    penalty = late_label_penalty(t_in, weight, t_out, torch.tensor([0, 1, 1]), 6.0)
    assert float(penalty.detach()) == pytest.approx((0.5 - 3.0) / 3)  # -(-1 + 0.5) and -(1 + 1 + 1), mean over 3
    penalty.backward()
    torch.testing.assert_close(weight.grad, torch.tensor([[-1.0, 0.0, -1.0], [-1.0, -1.0, -1.0]], dtype=F64) / 3)
