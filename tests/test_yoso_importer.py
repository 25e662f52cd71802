"""Networks trained elsewhere on the YOSO model: plain matrices, and an snntorch Linear + Leaky(beta=1)
network trained for a few steps, whose held-spike run the accelerator reproduces (decisions equal,
layer l exactly l steps later)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from snnbp.yoso import evaluate, load_arch
from snnbp.yoso.arch import SramSpec
from snnbp.yoso.importer import evaluate_import, from_matrices, from_snntorch, held_spike_steps

DT = 0.5
N_STEPS = 60


def roomy_arch():
    return dataclasses.replace(
        load_arch(),
        dt_ms=DT,
        t_window_ms=DT * (N_STEPS - 1),
        neurons_per_pe=32,
        stop_at_first_output=False,
        weight_sram=SramSpec(1024, 64),
        state_sram=SramSpec(64, 64),
        route_sram=SramSpec(64, 16),
    )


def synthetic_steps(seed: int, batch: int = 48, n_in: int = 24, n_classes: int = 3):
    """Class c: the inputs of group c spike early (steps 0-4), the others late (8-20) or never."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, batch)
    steps = rng.integers(8, 21, (batch, n_in)).astype(float)
    group = np.arange(n_in) % n_classes
    early = group[None, :] == labels[:, None]
    steps[early] = rng.integers(0, 5, early.sum())
    steps[rng.random((batch, n_in)) < 0.2] = math.inf
    return torch.tensor(steps), torch.tensor(labels)


def test_plain_matrices_are_the_simulator_on_the_same_weights():
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.3, 0.3, (8, 24)), rng.normal(0.3, 0.3, (3, 8))]
    k_in, labels = synthetic_steps(1, batch=10)
    net = from_matrices(weights, [1.0, 0.5])
    assert net.network == "24-8-3" and net.thetas == (1.0, 0.5)
    run = evaluate_import(net, k_in * DT, labels=labels, arch=roomy_arch())
    direct = evaluate([torch.tensor(w) for w in weights], [1.0, 0.5], k_in * DT, labels=labels, arch=roomy_arch())
    assert torch.equal(run.sim.prediction, direct.sim.prediction)
    assert run.metrics["energy_per_image_uj"] == direct.metrics["energy_per_image_uj"] > 0


@pytest.mark.parametrize(
    "bad, message",
    [
        (([np.ones((2, 3)), np.ones((2, 4))], 1.0), "layer 2: 4 inputs but layer 1 has 2 neurons"),
        (([np.ones((2, 3))], [1.0, 2.0]), "2 thresholds for 1 weight matrices"),
        (([np.ones((2, 3))], 0.0), "layer 1: threshold must be > 0"),
        (([np.full((2, 3), np.nan)], 1.0), "layer 1: weight holds NaN or inf"),
        (([np.ones(3)], 1.0), r"layer 1: weight must be \[N_out, N_in\]"),
    ],
)
def test_bad_matrices_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        from_matrices(*bad)


snn = pytest.importorskip("snntorch", reason="snntorch is an optional dependency (make bench installs it)")


def snntorch_model(seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(24, 16, bias=False),
        snn.Leaky(beta=1.0, threshold=2.0, init_hidden=True),
        torch.nn.Linear(16, 3, bias=False),
        snn.Leaky(beta=1.0, threshold=2.0, init_hidden=True),
    ).double()
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.mul_(0.5).add_(0.15)
    return model


def train_a_few_steps(
    model: torch.nn.Sequential, k_in: torch.Tensor, labels: torch.Tensor, steps: int = 8
) -> list[float]:
    """Surrogate-gradient training in the held-spike convention: the output neurons' held spikes
    summed over the window are the logits (earlier first spike = more held steps)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(steps):
        for module in model:
            if hasattr(module, "reset_mem"):
                module.reset_mem()
        held = [None, None]
        logits = 0.0
        for n in range(N_STEPS):
            x = (k_in <= n).double()
            for l in range(2):
                spikes = model[2 * l + 1](model[2 * l](x)).double()
                held[l] = spikes if held[l] is None else torch.maximum(held[l], spikes)
                x = held[l]
            logits = logits + held[1]
        loss = torch.nn.functional.cross_entropy(logits / N_STEPS * 5, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    return losses


def test_a_trained_snntorch_network_decides_on_the_accelerator_as_in_snntorch():
    k_in, labels = synthetic_steps(2)
    model = snntorch_model(3)
    losses = train_a_few_steps(model, k_in, labels)
    assert losses[-1] < losses[0]  # it did train
    with torch.no_grad():
        reference = held_spike_steps(model, k_in, N_STEPS)
    net = from_snntorch(model, DT)
    assert net.network == "24-16-3" and net.source == "snntorch (dt 0.5 ms)"
    assert net.thetas == pytest.approx((2.0 * DT, 2.0 * DT))
    run = evaluate_import(net, k_in * DT, labels=labels, arch=roomy_arch(), quantise=False)
    for l, (ours, theirs) in enumerate(zip(run.sim.spike_times, reference), start=1):
        steps = ours / DT
        early = torch.isfinite(theirs) & (theirs + l <= N_STEPS - 1)  # within the accelerator's window too
        assert early.sum() > 0
        assert torch.allclose(steps[early], theirs[early] + l)  # each layer adds one step of delay
    out = reference[-1]
    fired = torch.isfinite(out).any(1)
    snn_class = torch.where(fired, torch.argmin(out, 1), -1)
    assert fired.float().mean() > 0.5
    assert torch.equal(run.sim.prediction, snn_class)
    assert run.metrics["energy_per_image_uj"] > 0 and run.metrics["latency_ms"] > 0


def test_what_the_accelerator_cannot_run_is_refused():
    biased = torch.nn.Sequential(torch.nn.Linear(4, 2), snn.Leaky(beta=1.0, init_hidden=True))
    with pytest.raises(ValueError, match="layer 1: Linear has a non-zero bias"):
        from_snntorch(biased, DT)
    leaky = torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(ValueError, match="layer 1: Leaky beta is 0.9; only non-leaky neurons"):
        from_snntorch(leaky, DT)
    other = torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False), torch.nn.ReLU())
    with pytest.raises(ValueError, match="layer 1: expected Linear then Leaky, got Linear then ReLU"):
        from_snntorch(other, DT)
    with pytest.raises(ValueError, match="dt_ms must be > 0"):
        from_snntorch(snntorch_model(0), 0.0)
