"""Per-sample boosting of misclassified training samples (ALGORITHMS.md 1.8; official ``g_boostWeightUpdate``)."""

from __future__ import annotations

import torch


def boost_weights(
    weights: torch.Tensor, labels: torch.Tensor, wrong: torch.Tensor, num_classes: int, divisor: float = 20.0
) -> torch.Tensor:
    """One epoch's boosting update of the sample weights.

    ``err_c = sum_{n in c} w_n 1[wrong_n] / sum_{n in c} w_n``; every misclassified sample
    ``n`` of class ``c`` gets ``w_n <- w_n exp(err_c / divisor)``; the others keep theirs.

    Args:
        weights: current sample weights ``beta_n`` (they multiply the output error, 1.5).
        labels: class of each sample.
        wrong: whether the sample was misclassified in the epoch's training pass.
        num_classes: number of classes.
        divisor: the official 20.

    Shape:
        - weights, labels, wrong: ``[N]``; output ``[N]``.
    """
    total = torch.zeros(num_classes, dtype=weights.dtype, device=weights.device).index_add_(0, labels, weights)
    wrong_mass = torch.zeros_like(total).index_add_(0, labels, weights * wrong.to(weights.dtype))
    error = wrong_mass / total.clamp_min(torch.finfo(weights.dtype).tiny)
    return torch.where(wrong, weights * torch.exp(error[labels] / divisor), weights)
