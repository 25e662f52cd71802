"""What a trained STDBP network gives a tool outside training (the accelerator model, an importer):
its layers and weights, its threshold and time window, the latency code of images, and its own
decisions on them. Plain tensors and tuples; nothing here imports the tool.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snnbp.data.base import LabelledSplit
from snnbp.learner import Batch
from snnbp.stdbp.learner import StdbpLearner


@dataclass(frozen=True)
class ExportedNetwork:
    """A trained first-spike network as plain data.

    Attributes:
        kinds: ``"conv"``, ``"pool"`` or ``"fc"`` per layer (:class:`snnbp.stdbp.model.LayerSpec`).
        sizes: output channels (conv), window (pool) or width (fc), per layer.
        kernels: the convolution kernel size per layer (0 for pool and fc).
        weights: one per conv and fc layer, float64 on the CPU: ``[O, C, k, k]`` and ``[N_out, N_in]``.
        input_shape: ``(H, W)`` of images, or ``(N,)``.
        kernel: the PSP kernel, ``"relpsp"`` or ``"alpha"``.
        theta: the firing threshold of every neuron.
        t_max: the latency code's window (ms).
        network: e.g. ``"784-800-10"`` or ``"28x28-16C3-P2-32C3-P2-800-128-10"``.
    """

    kinds: tuple[str, ...]
    sizes: tuple[int, ...]
    kernels: tuple[int, ...]
    weights: tuple[torch.Tensor, ...]
    input_shape: tuple[int, ...]
    kernel: str
    theta: float
    t_max: float
    network: str

    @property
    def is_fully_connected(self) -> bool:
        """Whether every layer is fully connected."""
        return all(kind == "fc" for kind in self.kinds)


def export_network(learner: StdbpLearner) -> ExportedNetwork:
    """The learner's architecture, weights and neuron settings (:class:`ExportedNetwork`)."""
    return ExportedNetwork(
        kinds=tuple(spec.kind for spec in learner.specs),
        sizes=tuple(spec.size for spec in learner.specs),
        kernels=tuple(spec.kernel for spec in learner.specs),
        weights=tuple(w.detach().to(torch.float64).cpu() for w in learner.weights),
        input_shape=tuple(learner.input_shape),
        kernel=learner.params.kernel,
        theta=float(learner.params.theta),
        t_max=float(learner.params.t_max),
        network=learner.network,
    )


def latency_inputs(learner: StdbpLearner, images: torch.Tensor) -> torch.Tensor:
    """The learner's own latency code of ``images``, flattened, float64 on the CPU (ms; ``inf``:
    no spike). Shape: ``[B, H, W]`` uint8 images (or coded ``[B, N]``) -> ``[B, N_0]``."""
    return learner.encode(images).to(torch.float64).cpu().reshape(images.shape[0], -1)


def model_predictions(learner: StdbpLearner, split: LabelledSplit, batch_size: int = 1000) -> torch.Tensor:
    """The learner's exact (float32) decisions on ``split``, ``batch_size`` images at a time. Shape: ``[B]``."""
    predictions = [
        learner.predict(
            Batch(
                split.inputs[i : i + batch_size],
                split.labels[i : i + batch_size],
                torch.arange(i, min(i + batch_size, len(split))),
                "test",
            )
        )
        for i in range(0, len(split), batch_size)
    ]
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)
