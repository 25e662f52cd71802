"""The one seam between the training loop and the learning methods.

``snnbp.train`` knows no method: each method package exposes ``build_learner`` returning an
object that satisfies :class:`Learner`. Methods never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class Batch:
    """A mini-batch as the loop hands it to a learner.

    Attributes:
        inputs: raw samples of the dataset (images ``[B, H, W]`` uint8, or spike rasters
            ``[B, T, N]``; the method encodes them).
        labels: ``[B]`` int64 class indices.
        indices: ``[B]`` int64 positions of the samples in their split (for per-sample
            state such as boosting weights, and for per-sample fixed encodings).
        split: ``"train"`` or ``"test"``.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    split: str


class Learner(Protocol):
    """What a method provides to the training loop."""

    def train_step(self, batch: Batch) -> dict[str, float]:
        """Update the model on one batch; return scalar statistics (at least ``loss``)."""

    def predict(self, batch: Batch) -> torch.Tensor:
        """Return predicted class indices ``[B]`` (int64) without changing the model."""

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Hook after epoch ``epoch`` (1-based) of training: schedules, boosting, statistics."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: parameters, optimiser, per-sample state; a copy, which later
        training steps leave unchanged."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
