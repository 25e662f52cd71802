"""The non-spiking reference: a ReLU multilayer perceptron trained with Adam and cross-entropy.

It exercises the whole path (data -> loop -> checkpoints -> records) and stays in the results
table as the ANN row against which the spiking methods are read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from snnbp.analysis import MagnitudeStats
from snnbp.data.base import DatasetInfo
from snnbp.learner import Batch
from snnbp.notation import layer_sizes_name
from snnbp.seeding import derive_seed


@dataclass(frozen=True)
class ModelParams:
    """The ``model:`` section of an ANN params file.

    Attributes:
        hidden: hidden-layer widths (``[800]`` gives 784-800-10).
        lr: Adam learning rate.
        weight_decay: L2 penalty coefficient of Adam.
        gradient_stats: record ``|dL/dw|`` of every weight matrix (biases excluded) at every step,
            log-binned on :data:`snnbp.analysis.LOG_BIN_EDGES`; each epoch's record then holds
            ``dldw_hist``, ``dldw_mean_abs``, ``dldw_max_abs`` and ``dldw_count``, the statistics the
            STDBP learner records (notebook 01 compares them). Results do not change.
    """

    hidden: tuple[int, ...] = (800,)
    lr: float = 1e-3
    weight_decay: float = 0.0
    gradient_stats: bool = False


def build_mlp(sizes: list[int], generator: torch.Generator) -> nn.Sequential:
    """``Linear -> ReLU`` blocks for consecutive ``sizes``; the last layer has no activation.

    Weights use PyTorch's default (Kaiming-uniform) initialisation drawn from ``generator``.
    """
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        bound = 1.0 / n_in**0.5
        with torch.no_grad():
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if index < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class AnnLearner:
    """Plain supervised learner: intensities scaled to [0, 1], softmax cross-entropy, Adam."""

    def __init__(self, model: ModelParams, info: DatasetInfo, *, seed: int, device: str = "cpu") -> None:
        n_inputs = 1
        for size in info.input_shape:
            n_inputs *= size
        sizes = [n_inputs, *model.hidden, info.num_classes]
        self.network = layer_sizes_name(sizes)
        generator = torch.Generator().manual_seed(derive_seed(seed, "model"))
        self.device = device
        self.net = build_mlp(sizes, generator).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=model.lr, weight_decay=model.weight_decay)
        self.gradient_stats = model.gradient_stats
        self.dldw = MagnitudeStats()

    def _features(self, batch: Batch) -> torch.Tensor:
        inputs = batch.inputs.to(self.device)
        return inputs.reshape(inputs.shape[0], -1).to(torch.float32) / (255.0 if inputs.dtype == torch.uint8 else 1.0)

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One Adam step on the mean cross-entropy of ``batch``."""
        self.net.train()
        logits = self.net(self._features(batch))
        labels = batch.labels.to(self.device)
        loss = nn.functional.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.gradient_stats:
            for name, parameter in self.net.named_parameters():
                if name.endswith("weight"):
                    self.dldw.add(parameter.grad)
        self.optimizer.step()
        correct = (logits.argmax(dim=1) == labels).sum().item()
        return {"loss": float(loss.item()), "correct": float(correct)}

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        """Arg-max class of the logits, ``[B]``."""
        self.net.eval()
        return self.net(self._features(batch)).argmax(dim=1).cpu()

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """No schedule: the learning rate for the record, and the epoch's gradient statistics
        (``gradient_stats``), which then restart."""
        stats: dict[str, Any] = {"lr": self.optimizer.param_groups[0]["lr"]}
        if self.gradient_stats:
            stats.update(self.dldw.summary("dldw"))
            self.dldw = MagnitudeStats()
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Network and optimiser state: a copy, which later training steps leave unchanged (torch's
        ``state_dict`` hands out the live parameter and moment tensors)."""
        return copy.deepcopy({"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore network and optimiser state."""
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])


def build_learner(model: ModelParams, info: DatasetInfo, *, seed: int, device: str = "cpu") -> AnnLearner:
    """The ANN baseline learner for ``info``'s input size and classes."""
    return AnnLearner(model, info, seed=seed, device=device)
