"""The event-driven HM2-BP engine against the torch reference path: same spikes, same gradients, same training.

Spike rasters must be identical (not close) on random networks of every layer kind and on the
official golden test; gradients equal to float64 rounding (relative 1e-9) and to float32 rounding
(relative 1e-4, relative to the largest entry of each layer's gradient).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from snnbp.data.base import DatasetInfo
from snnbp.hm2bp import event, event_backward, model
from snnbp.hm2bp.learner import build_learner, resolve_engine
from snnbp.hm2bp.params import ModelParams
from snnbp.learner import Batch

MLP = ModelParams(
    layers=("60", "40"),
    thresholds=(4.0, 3.0, 3.0),
    time_steps=150,
    desired=12.0,
    undesired=3.0,
    margin=2.0,
    lambda_reg=10.0,
    beta_reg=0.04,
)
CNN = ModelParams(
    layers=("4C3", "P2", "6C2", "P2", "20"),
    thresholds=(1.0, 0.6, 0.8, 0.6, 1.0, 2.0),
    time_steps=120,
    desired=12.0,
    undesired=3.0,
    margin=2.0,
    lambda_reg=0.0,
    init_conv=1.0,
)
NETWORKS = {"mlp": (MLP, (50,), 6), "cnn": (CNN, (12, 12), 5)}
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


def random_case(name: str, dtype_name: str, batch: int, seed: int, density: float = 0.1):
    """A random network of ``NETWORKS[name]``, random input spikes and labels, and the torch forward pass."""
    params, input_shape, classes = NETWORKS[name]
    params = dataclasses.replace(params, dtype=dtype_name)
    generator = torch.Generator().manual_seed(seed)
    layers = model.build_layers(params, input_shape, classes)
    weights = model.init_weights(layers, params, generator)
    dtype = model.torch_dtype(params)
    inputs = (torch.rand(params.time_steps, batch, int(np.prod(input_shape)), generator=generator) < density).to(dtype)
    inputs[0] = 0.0
    labels = torch.randint(0, classes, (batch,), generator=generator)
    boost = torch.rand(batch, generator=generator, dtype=torch.float64) + 0.5
    rasters, currents = model.forward(layers, weights, inputs, params)
    return params, layers, weights, inputs, labels, boost, rasters, currents


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("batch", [1, 3])
def test_spike_rasters_are_identical(name, dtype_name, batch):
    params, layers, weights, inputs, _, _, rasters, _ = random_case(name, dtype_name, batch, seed=7 + 4 * batch)
    arrays = [event.kernel_layout(layer, w, event.numpy_dtype(params)) for layer, w in zip(layers, weights)]
    spikes = event.forward(layers, arrays, event.spikes_from_raster(inputs), params)
    for k, (layer, raster, ours) in enumerate(zip(layers, rasters[1:], spikes[1:])):
        assert raster.sum() > 0, f"layer {k} ({layer.kind}) is silent: the case does not test it"
        dense = event.raster_from_spikes(ours, layer.out_shape, raster.dtype)
        assert torch.equal(dense, raster), f"layer {k} ({layer.kind}): {int((dense != raster).sum())} spikes differ"
        assert np.array_equal(ours.counts, raster.sum(dim=0).reshape(batch, -1).numpy().astype(np.int64))


def test_events_round_trip_and_are_time_major():
    raster = (torch.rand(30, 2, 17, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    spikes = event.spikes_from_raster(raster)
    assert torch.equal(event.raster_from_spikes(spikes, (17,)), raster)
    for b in range(2):
        for t in range(30):
            fired = spikes.idx[spikes.ptr[b * 30 + t] : spikes.ptr[b * 30 + t + 1]]
            assert fired.tolist() == torch.nonzero(raster[t, b]).flatten().tolist()


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("batch", [1, 4])
def test_gradients_equal_the_torch_path(name, dtype_name, batch):
    params, layers, weights, _, labels, boost, rasters, currents = random_case(name, dtype_name, batch, seed=10 + batch)
    dtype = model.torch_dtype(params)
    reference = model.gradients(layers, weights, rasters, currents, labels, boost.to(dtype), params)
    ours = event_backward.gradients(layers, weights, rasters, labels, boost, params)
    assert torch.equal(ours.output_counts, reference.output_counts)
    torch.testing.assert_close(ours.cost.to(torch.float64), reference.cost.to(torch.float64), rtol=1e-12, atol=0)
    tolerance = TOLERANCE[dtype_name]
    for k, (a, b) in enumerate(zip(reference.grads, ours.grads)):
        if a is None:
            assert b is None
            continue
        assert a.abs().max() > 0, f"layer {k}: zero gradient, the case does not test it"
        error = float((a - b).abs().max() / a.abs().max())
        assert error < tolerance, f"layer {k} ({layers[k].kind}): relative error {error:.2e}"


@pytest.mark.parametrize(
    "option",
    [
        {"use_effect_ratio": False},
        {"use_side_effect": False},
        {"use_lateral_factor": False},
        {"inject_silent_target": False},
        {"pool_divide_by_area": False},
        {"spsp_pre_shift": 0, "spsp_lookback": 0.5},
    ],
)
def test_gradients_equal_with_every_official_quirk_switched(option):
    params, layers, weights, _, labels, boost, rasters, currents = random_case("cnn", "float64", 2, seed=7)
    params = dataclasses.replace(params, **option)
    reference = model.gradients(layers, weights, rasters, currents, labels, boost, params)
    ours = event_backward.gradients(layers, weights, rasters, labels, boost, params)
    for a, b in zip(reference.grads, ours.grads):
        if a is not None:
            assert float((a - b).abs().max()) <= 1e-9 * float(a.abs().max()) + 1e-300


def test_a_wrong_rule_is_detected():
    """Negative control: the comparison fails when the event engine is given other settings."""
    params, layers, weights, _, labels, boost, rasters, currents = random_case("mlp", "float64", 2, seed=3)
    reference = model.gradients(layers, weights, rasters, currents, labels, boost, params)
    ours = event_backward.gradients(
        layers, weights, rasters, labels, boost, dataclasses.replace(params, use_side_effect=False)
    )
    assert float((reference.grads[0] - ours.grads[0]).abs().max()) > 1e-3 * float(reference.grads[0].abs().max())


def test_adam_update_matches_the_torch_step():
    params, layers, weights, _, labels, boost, rasters, currents = random_case("mlp", "float64", 2, seed=5)
    reference = model.gradients(layers, weights, rasters, currents, labels, boost, params)
    network = event.EventNetwork.of(layers, weights, np.dtype("float64"))
    result = event_backward.backward(
        layers, network.weights, [event.spikes_from_raster(r) for r in rasters], labels.numpy(), boost.numpy(), params
    )
    network.update(result.grad_sums, 2, 1e-3, params)
    for layer, w, g, ours in zip(layers, weights, reference.grads, network.weights):
        expected, _ = model.adam_step(w, g, model.AdamState(torch.zeros_like(w), torch.zeros_like(w)), 1e-3)
        torch.testing.assert_close(event.official_view(layer, ours), expected, rtol=0, atol=1e-12)


def learner_pair(engine_a: str, engine_b: str, info: DatasetInfo, params: ModelParams):
    return build_learner(dataclasses.replace(params, engine=engine_a), info, seed=4), build_learner(
        dataclasses.replace(params, engine=engine_b), info, seed=4
    )


def test_learners_train_the_same_with_either_engine():
    info = DatasetInfo("tiny images", "tiny", 5, (12, 12), "image", True)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(6, 12, 12, generator=generator) * 255 * (torch.rand(6, 12, 12, generator=generator) < 0.4)
    images, labels = images.to(torch.uint8), torch.randint(0, 5, (6,), generator=generator)
    params = dataclasses.replace(CNN, dtype="float64", rate_scale=1.5)
    torch_learner, event_learner = learner_pair("torch", "event", info, params)
    for start in (0, 2, 4):
        part = torch.arange(start, start + 2)
        batch = Batch(images[part], labels[part], part, "train")
        assert torch_learner.train_step(batch) == pytest.approx(event_learner.train_step(batch), rel=1e-12)
    stats_torch, stats_event = torch_learner.end_epoch(1), event_learner.end_epoch(1)
    assert stats_torch.keys() == stats_event.keys()
    for key, value in stats_torch.items():
        assert np.allclose(value, stats_event[key], rtol=1e-9, atol=0), key
    for a, b in zip(torch_learner.weights, event_learner.weights):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    test = Batch(images, labels, torch.arange(6), "test")
    assert torch.equal(torch_learner.predict(test), event_learner.predict(test))


def test_state_moves_between_engines():
    info = DatasetInfo("toy", "toy", 6, (50,), "image", True)
    images = torch.randint(0, 256, (4, 50), generator=torch.Generator().manual_seed(2)).to(torch.uint8)
    labels = torch.tensor([0, 1, 2, 3])
    params = dataclasses.replace(MLP, dtype="float64", rate_scale=2.0)
    event_learner, torch_learner = learner_pair("event", "torch", info, params)
    event_learner.train_step(Batch(images[:2], labels[:2], torch.arange(2), "train"))
    torch_learner.load_state_dict(event_learner.state_dict())
    batch = Batch(images[2:], labels[2:], torch.arange(2, 4), "train")
    assert event_learner.train_step(batch) == pytest.approx(torch_learner.train_step(batch), rel=1e-12)
    state_a, state_b = event_learner.state_dict(), torch_learner.state_dict()
    for a, b in zip(state_a["adam"], state_b["adam"]):
        if a is not None:
            assert a["step"] == b["step"] == 2
            torch.testing.assert_close(a["m"], b["m"], rtol=0, atol=1e-12)
    assert all(w is None or w.is_contiguous() for w in state_a["weights"])


def test_engine_choice():
    assert resolve_engine("auto", "cpu") == "event" and resolve_engine("torch", "cpu") == "torch"
    assert resolve_engine("auto", "cuda") == "torch"
    with pytest.raises(ValueError, match="CPU only"):
        resolve_engine("event", "cuda")
    with pytest.raises(ValueError, match="model.engine"):
        resolve_engine("fast", "cpu")


@pytest.mark.parametrize("kind", ["fixed", "fresh", "raster"])
def test_input_flags_are_the_raster(kind):
    generator = torch.Generator().manual_seed(8)
    if kind == "raster":
        info = DatasetInfo("toy rasters", "toy", 6, (90, 50), "raster", True)
        inputs = (torch.rand(3, 90, 50, generator=generator) < 0.1).to(torch.uint8)
    else:
        info = DatasetInfo("toy", "toy", 6, (50,), "image", True)
        inputs = torch.randint(0, 256, (3, 50), generator=generator).to(torch.uint8)
    params = dataclasses.replace(MLP, fixed_encoding=kind == "fixed")
    a, b = (build_learner(params, info, seed=1) for _ in range(2))
    batch = Batch(inputs, torch.zeros(3, dtype=torch.long), torch.arange(3), "train")
    raster, flags = a.encode(batch), b.encode(batch, flags=True)
    assert flags.dtype == torch.uint8 and raster.sum() > 0
    assert torch.equal(flags.permute(1, 0, 2).to(raster.dtype), raster)


def test_results_do_not_depend_on_the_thread_count():
    import numba

    params, layers, weights, inputs, labels, boost, rasters, _ = random_case("mlp", "float32", 2, seed=21)
    outcomes = []
    for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        torch.set_num_threads(threads)
        arrays = [event.kernel_layout(layer, w, np.dtype("float32")) for layer, w in zip(layers, weights)]
        spikes = event.forward(layers, arrays, event.spikes_from_raster(inputs), params)
        outcomes.append(
            (
                [s.flags.copy() for s in spikes],
                event_backward.gradients(layers, weights, rasters, labels, boost, params).grads,
            )
        )
    torch.set_num_threads(1)
    for a, b in zip(outcomes[0][0], outcomes[1][0]):
        assert np.array_equal(a, b)
    for a, b in zip(outcomes[0][1], outcomes[1][1]):
        assert torch.equal(a, b)
