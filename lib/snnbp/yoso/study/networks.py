"""Trained checkpoints as the accelerator takes them: a fully connected ReL-PSP network and its test inputs."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnbp.config import (
    DataParams,
    RunParams,
)
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.notation import layer_sizes_name
from snnbp.paths import resolve
from snnbp.stdbp.export import export_network, latency_inputs, model_predictions
from snnbp.yoso.conv import cnn_layers, layer_outputs
from snnbp.yoso.mapping import Wiring


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


TRAIN_HINT = "train it first: snnbp run params/<profile>/<run>.yaml"


def existing_file(path: str | Path, what: str, hint: str = "") -> Path:
    """``path`` (relative to the project root, or absolute) as an absolute :class:`Path`, checked to be a file.

    Raises:
        FileNotFoundError: naming ``what``, the path (resolved) and the ``hint``.
    """
    path = resolve(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    return path


def restore_checkpoint(
    checkpoint: str | Path, method: str, test: tuple[LabelledSplit, DatasetInfo] | None, n_images: int | None
) -> tuple[RunParams, dict[str, Any], Any, LabelledSplit, DatasetInfo]:
    """Read ``checkpoint`` (of ``method``), rebuild its learner and take the first ``n_images`` test
    samples (of ``test`` when given, else of the checkpoint's dataset, ignoring its ``test_limit``)."""
    from snnbp.datasets import load_dataset
    from snnbp.run_folder import read_checkpoint, restore_learner

    path = existing_file(checkpoint, f"{method} checkpoint", TRAIN_HINT)
    state, params = read_checkpoint(path)
    if params.method != method:
        raise ValueError(f"{path}: a {params.method!r} checkpoint, expected {method!r}")
    if test is None:
        _, split, info = load_dataset(DataParams(params.data.dataset, train_limit=0, test_limit=n_images))
    else:
        split, info = test
    if n_images is not None and n_images > len(split):
        raise ValueError(f"{n_images} test images requested but the {info.name} test split has {len(split)}")
    return params, state, restore_learner(state, params, info), split.head(n_images), info


def _recorded_accuracy(state: dict[str, Any]) -> float | None:
    history = state.get("history") or []
    return history[-1].get("test_accuracy") if history else None


@dataclass(frozen=True)
class TtfsNetwork:
    """A trained ReL-PSP network as the accelerator takes it, with its test inputs.

    Attributes:
        weights: per layer ``[N_out, N_in]`` float64 (model units); a convolution + pooling layer
            as its unrolled matrix (:func:`snnbp.yoso.conv.unroll_conv`).
        theta: the firing threshold of every neuron.
        t_in: latency-coded test images in ms (``inf``: silent pixel), float64.
        labels: the images' classes.
        model_prediction: the trained model's own prediction (exact spike times, float32).
        network: e.g. ``"784-800-10"``.
        dataset: the dataset's display name.
        dataset_key: its params-file key (e.g. ``"mnist"``).
        t_max: the latency code's window (ms).
        epoch: the checkpoint's epoch.
        recorded_test_accuracy: the test accuracy the training run recorded (its whole test split).
        layers: for a CNN, each weight layer's :class:`snnbp.yoso.mapping.Wiring` (convolution +
            pooling) or width (fully connected), for :func:`snnbp.yoso.mapping.map_conv_network`;
            empty for a fully connected network.

    Shape:
        - t_in: ``[B, N_0]``; labels, model_prediction: ``[B]``.
    """

    weights: tuple[torch.Tensor, ...]
    theta: float
    t_in: torch.Tensor
    labels: torch.Tensor
    model_prediction: torch.Tensor
    network: str
    dataset: str
    dataset_key: str
    t_max: float
    epoch: int
    recorded_test_accuracy: float | None
    layers: tuple[Wiring | int, ...] = ()

    @property
    def is_convolutional(self) -> bool:
        """Whether the network has convolution + pooling layers."""
        return bool(self.layers) and not all(isinstance(layer, int) for layer in self.layers)

    @property
    def outputs(self) -> list[int]:
        """Spiking outputs per weight layer (pooled neurons of a convolution + pooling layer)."""
        return layer_outputs(self.layers) if self.layers else [w.shape[0] for w in self.weights]

    @property
    def n_images(self) -> int:
        """Test images held."""
        return int(self.labels.shape[0])

    @property
    def layer_sizes(self) -> list[int]:
        """``[N_0, N_1, ..., N_L]``."""
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def model_accuracy(self) -> float:
        """The trained model's accuracy on these images."""
        return float((self.model_prediction == self.labels).double().mean())


def load_stdbp(
    checkpoint: str | Path,
    n_images: int | None = None,
    *,
    test: tuple[LabelledSplit, DatasetInfo] | None = None,
    batch_size: int = 1000,
) -> TtfsNetwork:
    """Load an STDBP checkpoint into the simulator's weights, threshold and latency-coded inputs.

    The inputs are the learner's own latency code of the first ``n_images`` test images (flattened
    for a CNN); the model's predictions come from the learner's exact (float32) forward pass on the
    same images. A CNN's convolution + pooling layers become sparse layers (:mod:`snnbp.yoso.conv`).

    Args:
        checkpoint: an ``snnbp.train`` checkpoint of method ``stdbp``.
        n_images: test images to take (None: the whole test split).
        test: ``(split, info)`` to use instead of loading the checkpoint's dataset (tests).
        batch_size: images per model forward pass.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: not an STDBP checkpoint, not the ReL-PSP kernel, or more images requested
            than the test split has.
    """
    params, state, learner, split, info = restore_checkpoint(checkpoint, "stdbp", test, n_images)
    exported = export_network(learner)
    if exported.kernel != "relpsp":
        raise ValueError(f"{checkpoint}: kernel {exported.kernel!r}; the accelerator implements the ReL-PSP neuron")
    weights, layers = exported.weights, ()
    if not exported.is_fully_connected:
        dense, wired = cnn_layers(exported.kinds, exported.sizes, exported.kernels, weights, exported.input_shape)
        weights, layers = tuple(dense), tuple(wired)
    return TtfsNetwork(
        weights=weights,
        theta=exported.theta,
        t_in=latency_inputs(learner, split.inputs),
        labels=split.labels.clone(),
        model_prediction=model_predictions(learner, split, batch_size),
        network=exported.network,
        dataset=info.name,
        dataset_key=info.key,
        t_max=exported.t_max,
        epoch=int(state["epoch"]),
        recorded_test_accuracy=_recorded_accuracy(state),
        layers=layers,
    )


def subset(net: TtfsNetwork, n_images: int) -> TtfsNetwork:
    """The same network with only its first ``n_images`` test images."""
    return dataclasses.replace(
        net, t_in=net.t_in[:n_images], labels=net.labels[:n_images], model_prediction=net.model_prediction[:n_images]
    )


def truncate_hidden(net: TtfsNetwork, width: int) -> TtfsNetwork:
    """The network with every hidden layer cut to its first ``width`` neurons (not retrained).

    Hidden neurons are exchangeable at initialisation, so the first ``width`` are a random subset.
    The model predictions are kept from the full network (they are not those of the truncation).

    Raises:
        ValueError: ``width`` exceeds a hidden layer's width, the network has no hidden layer or
            is convolutional.
    """
    if net.is_convolutional:
        raise ValueError(f"network {net.network} is convolutional; only fully connected networks are truncated")
    if len(net.weights) < 2:
        raise ValueError(f"network {net.network} has no hidden layer to truncate")
    widths = [w.shape[0] for w in net.weights[:-1]]
    if width > min(widths):
        raise ValueError(f"cannot truncate hidden layers of widths {widths} to {width} neurons")
    weights = [net.weights[0][:width]]
    weights += [w[:width, :width] for w in net.weights[1:-1]]
    weights.append(net.weights[-1][:, :width])
    sizes = [net.layer_sizes[0]] + [width] * (len(net.weights) - 1) + [net.layer_sizes[-1]]
    return dataclasses.replace(net, weights=tuple(weights), network=layer_sizes_name(sizes))
