"""The official HM2-BP code's own golden test (jinyyy666/mm-bp-snn, ``test/cnn_mnist``), reproduced.

A spiking CNN 28x28-5C5-P2-3C5-P2-100-10 (T = 450) on one MNIST "5" (its README in the data
root decodes the files). Checked: (1) the forward rasters of every layer from the recorded input
spikes and initial weights, spike for spike; (2) the sign (and the zeros) of every weight's
official one-step update: Adam's first step moves a weight by ``-lr sign(g)``, so the recorded
trained weights give the sign of the official gradient; (3) the forward rasters after our own
update. The data are read in place through :func:`snnbp.paths.data_root`.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from snnbp.hm2bp import model
from snnbp.hm2bp.params import ModelParams
from snnbp.paths import data_root

GOLDEN = data_root() / "hm2bp_golden" / "cnn_mnist"
STEPS = 450
LAYER_NAMES = ("conv1", "pool1", "conv2", "pool2", "hidden", "output")
# Config/SpikingCNNMnistConfig_test.txt, transcribed in the golden README
PARAMS = ModelParams(
    layers=("5C5", "P2", "3C5", "P2", "100"),
    thresholds=(5.0, 2.0, 5.0, 2.0, 10.0, 5.0),
    time_steps=STEPS,
    lambda_reg=10.0,
    beta_reg=0.4,
)
LABEL = 5

pytestmark = pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"official golden test data not found at {GOLDEN}")


def read_events(path: Path, neurons: int) -> torch.Tensor:
    """``neuron time`` lines (``-1 -1`` markers ignored) -> raster ``[T, N]``."""
    raster = torch.zeros(STEPS, neurons)
    pairs = np.loadtxt(path, dtype=np.int64, ndmin=2)
    pairs = pairs[pairs[:, 0] >= 0]
    raster[pairs[:, 1], pairs[:, 0]] = 1.0
    return raster


def read_maps(path: Path) -> torch.Tensor:
    """One line per feature map of ``T * H * W`` 0/1 values -> raster ``[T, C, H, W]``."""
    maps = np.loadtxt(path, dtype=np.float32, ndmin=2)
    side = int(round((maps.shape[1] / STEPS) ** 0.5))
    return torch.from_numpy(maps).reshape(maps.shape[0], STEPS, side, side).permute(1, 0, 2, 3)


def read_fc(path: Path, n_in: int, n_out: int) -> torch.Tensor:
    """``index pre_name post_name weight`` lines -> ``[N_out, N_in]``."""
    weight = torch.zeros(n_out, n_in)
    for line in path.read_text().split("\n"):
        if line.strip():
            _, pre, post, value = line.split()
            weight[int(post.rsplit("_", 1)[1]), int(pre.rsplit("_", 1)[1])] = float(value)
    return weight


def read_weights(trained: bool, dtype: torch.dtype) -> list[torch.Tensor | None]:
    suffix = "_trained" if trained else ""
    folder = GOLDEN / "weights"
    conv1 = torch.from_numpy(np.loadtxt(folder / f"conv1_info{suffix}.txt", dtype=np.float32)).reshape(5, 1, 5, 5)
    conv2 = torch.from_numpy(np.loadtxt(folder / f"conv2_info{suffix}.txt", dtype=np.float32)).reshape(3, 5, 5, 5)
    hidden = read_fc(folder / f"hidden_info{suffix}.txt", 48, 100)
    output = read_fc(folder / f"output_info{suffix}.txt", 100, 10)
    return [w if w is None else w.to(dtype) for w in (conv1, None, conv2, None, hidden, output)]


def read_rasters(phase: str) -> list[torch.Tensor]:
    spikes = GOLDEN / "spikes"
    return [
        read_maps(spikes / name / phase / f"{name}_1.dat")
        if name not in ("hidden", "output")
        else read_events(spikes / name / phase / f"{name}.dat", 100 if name == "hidden" else 10)
        for name in LAYER_NAMES
    ]


def network(dtype_name: str):
    params = dataclasses.replace(PARAMS, dtype=dtype_name)
    return params, model.build_layers(params, (28, 28), 10)


def input_spikes(dtype: torch.dtype) -> torch.Tensor:
    return read_events(GOLDEN / "input_spikes_0_5.dat", 784).to(dtype)[:, None, :]


def official_update_signs(dtype: torch.dtype) -> list[torch.Tensor | None]:
    """Sign of the official weight change (+1, 0, -1): every change is +-0.001 or 0."""
    before, after = read_weights(False, dtype), read_weights(True, dtype)
    return [None if b is None else torch.sign(torch.round((a - b) * 1000.0)) for b, a in zip(before, after)]


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_forward_rasters_reproduced_exactly(dtype_name):
    _, rasters, _ = our_gradients(dtype_name)
    for name, ours, official in zip(LAYER_NAMES, rasters[1:], read_rasters("train")):
        mismatches = int((ours[:, 0].float() != official).sum())
        assert mismatches == 0, f"{name}: {mismatches} spike mismatches ({int(official.sum())} official spikes)"
    assert [int(r.sum()) for r in rasters[1:]] == [15747, 5150, 1810, 601, 127, 0]


@functools.cache
def our_gradients(dtype_name: str, **change):
    """Our forward pass and gradients on the golden sample (cached: several tests read them)."""
    params, layers = network(dtype_name)
    params = dataclasses.replace(params, **change)
    dtype = model.torch_dtype(params)
    weights = read_weights(False, dtype)
    rasters, currents = model.forward(layers, weights, input_spikes(dtype), params)
    labels = torch.tensor([LABEL])
    return (
        weights,
        rasters,
        model.gradients(layers, weights, rasters, currents, labels, torch.ones(1, dtype=dtype), params),
    )


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_one_step_update_signs_agree_for_every_weight(dtype_name):
    _, _, result = our_gradients(dtype_name)
    for name, grad, official in zip(
        LAYER_NAMES, result.grads, official_update_signs(model.torch_dtype(network(dtype_name)[0]))
    ):
        if grad is None:
            continue
        ours = -torch.sign(grad)
        disagree = int((ours != official).sum())
        assert disagree == 0, f"{name}: {disagree} of {grad.numel()} update signs differ from the official code"
    assert result.output_counts.sum() == 0 and float(result.cost[0]) == 35.0**2


def test_golden_signs_detect_a_missing_rule():
    """Without the effect ratio (or the side effect) the hidden/conv signs no longer agree: the check can fail."""
    for change in ({"use_effect_ratio": False}, {"use_side_effect": False}):
        _, _, result = our_gradients("float64", **change)
        disagree = sum(
            int((-torch.sign(g) != o).sum())
            for g, o in zip(result.grads, official_update_signs(torch.float64))
            if g is not None
        )
        assert disagree > 10, change


def test_forward_after_our_update_matches_official_test_rasters():
    params, layers = network("float32")
    weights, _, result = our_gradients("float32")
    updated = [
        w if w is None else model.adam_step(w, g, model.AdamState(torch.zeros_like(w), torch.zeros_like(w)), 1e-3)[0]
        for w, g in zip(weights, result.grads)
    ]
    for ours, official in zip(updated, read_weights(True, torch.float32)):
        if ours is not None:
            torch.testing.assert_close(ours, official, rtol=0, atol=1e-6)
    rasters, _ = model.forward(layers, updated, input_spikes(torch.float32), params)
    for name, raster, official in zip(LAYER_NAMES, rasters[1:], read_rasters("test")):
        assert int((raster[:, 0] != official).sum()) == 0, name


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_event_engine_reproduces_the_golden_rasters_and_signs(dtype_name):
    """The event-driven engine on the same sample: every official spike, every official update sign."""
    from snnbp.hm2bp import event, event_backward

    params, layers = network(dtype_name)
    dtype = model.torch_dtype(params)
    weights = read_weights(False, dtype)
    arrays = [event.kernel_layout(layer, w, event.numpy_dtype(params)) for layer, w in zip(layers, weights)]
    spikes = event.forward(layers, arrays, event.spikes_from_raster(input_spikes(dtype)), params)
    rasters = [input_spikes(dtype)]
    for name, layer, ours, official in zip(LAYER_NAMES, layers, spikes[1:], read_rasters("train")):
        dense = event.raster_from_spikes(ours, layer.out_shape, dtype)
        rasters.append(dense)
        assert int((dense[:, 0].float() != official).sum()) == 0, name
    result = event_backward.gradients(
        layers, weights, rasters, torch.tensor([LABEL]), torch.ones(1, dtype=torch.float64), params
    )
    for name, grad, official in zip(LAYER_NAMES, result.grads, official_update_signs(dtype)):
        if grad is not None:
            assert int((-torch.sign(grad) != official).sum()) == 0, name
