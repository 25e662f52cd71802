"""Time-to-first-spike latency code (ReL-PSP/STDBP input encoding, ALGORITHMS.md section 2.6)."""

from __future__ import annotations

import torch


def latency_code(images: torch.Tensor, t_max: float, *, zero_pixels_spike: bool = False) -> torch.Tensor:
    """Encode intensities as single spike times: the brighter the pixel, the earlier the spike.

    ``t_i = t_max * (1 - p_i / 255)`` (linear in intensity). A pixel with ``p_i = 0`` spikes at
    ``t_max`` when ``zero_pixels_spike`` else never (``inf``).

    Args:
        images: ``[B, H, W]`` (or ``[B, N]``) uint8 intensities.
        t_max: the latest spike time in ms.
        zero_pixels_spike: whether black pixels emit a spike at ``t_max``.

    Shape:
        - Output: ``[B, N]`` float32 spike times in ms, ``inf`` for "no spike".
    """
    flat = images.reshape(images.shape[0], -1).to(torch.float32)
    times = t_max * (1.0 - flat / 255.0)
    if not zero_pixels_spike:
        times = torch.where(flat > 0, times, torch.full_like(times, float("inf")))
    return times
