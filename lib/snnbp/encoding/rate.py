"""Bernoulli rate code (HM2-BP input encoding, ALGORITHMS.md section 1.10)."""

from __future__ import annotations

import torch


def bernoulli_rate_code(
    images: torch.Tensor,
    time_steps: int,
    *,
    generator: torch.Generator,
    scale: float = 5.5,
) -> torch.Tensor:
    """Encode uint8 images as independent Bernoulli spike trains.

    A pixel of intensity ``p`` in [0, 255] spikes at every step ``t = 1 .. T-1`` independently
    with probability ``p / (scale * 255)`` (HM2-BP: scale 5.5, at most about 0.182 spikes per
    step); step 0 is silent, as in the official code.

    Args:
        images: ``[B, H, W]`` (or ``[B, N]``) uint8 intensities.
        time_steps: ``T``, the number of simulation steps.
        generator: the source of randomness (derived from the run's seed).
        scale: the divisor of the spike probability.

    Shape:
        - Output: ``[T, B, N]`` float32 in {0, 1}, with ``N = H * W``.
    """
    flat = images.reshape(images.shape[0], -1).to(torch.float32)
    probability = flat / (scale * 255.0)
    uniform = torch.rand((time_steps, *flat.shape), generator=generator, device=images.device)
    spikes = (uniform < probability).to(torch.float32)
    spikes[0] = 0.0
    return spikes
