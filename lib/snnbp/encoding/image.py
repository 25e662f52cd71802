"""Difference-of-Gaussians front end and latency code for natural images (ALGORITHMS.md section 2.8).

The SDNN pipeline of Kheradpisheh et al. (2018, Neural Networks 99:56-67), as set up in its
public reimplementation (npvoid/SDNN_python: ``img_size (250, 160)``, ``DoG_size 7``,
``std1 1``, ``std2 2``): grayscale, resize to 160 x 250 (height x width), filter with a 7 x 7
DoG (sigmas 1 and 2 px, zero mean, peak 1), keep responses above a threshold, earlier spikes
for stronger responses.

Here both polarities are kept: channel 0 (ON-centre) = ``max(DoG * I, 0)``, channel 1
(OFF-centre) = ``max(-DoG * I, 0)`` with ``I`` in [0, 255] and borders replicated. A response
``r`` at or above ``threshold`` (15, SDNN's value) spikes at ``t = t_max (1 - r / r_max)`` ms,
``r_max`` the image's largest response (so the strongest fires at 0); weaker ones never
(``inf``). ALGORITHMS.md 2.6's linear intensity-to-latency rule, applied to filter responses.
:func:`first_spike_pooling` optionally keeps only the earliest spike of each ``p x p`` window of
a map (SDNN's pooling rule, here applied to the DoG maps themselves).
"""

from __future__ import annotations

import numpy as np
import torch

DOG_SIZE = 7
DOG_SIGMAS = (1.0, 2.0)
DOG_THRESHOLD = 15.0
IMAGE_SIZE = (160, 250)  # (height, width)


def dog_kernel(
    size: int = DOG_SIZE, sigma_centre: float = DOG_SIGMAS[0], sigma_surround: float = DOG_SIGMAS[1]
) -> np.ndarray:
    """ON-centre DoG ``G(sigma_c) - G(sigma_s)`` on a ``size x size`` grid centred on the middle pixel,
    made zero-mean and scaled to a peak of 1 (the SDNN normalisation).

    ``G(s)(d) = exp(-d^2 / (2 s^2)) / (s sqrt(2 pi))`` (1-D normalisation, as in SDNN).

    Shape:
        - Output: ``[size, size]`` float64.
    """
    r = np.arange(size) - (size - 1) / 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    kernel = (
        np.exp(-d2 / (2 * sigma_centre**2)) / sigma_centre - np.exp(-d2 / (2 * sigma_surround**2)) / sigma_surround
    ) / np.sqrt(2 * np.pi)
    kernel -= kernel.mean()
    return kernel / kernel.max()


def dog_responses(images: np.ndarray, kernel: np.ndarray | None = None) -> np.ndarray:
    """ON and OFF responses: ``relu(k * I)`` and ``relu(-(k * I))`` (correlation, replicated borders).

    Shape:
        - images: ``[N, H, W]`` (0-255); output: ``[N, 2, H, W]`` float32.
    """
    from scipy.ndimage import correlate

    kernel = dog_kernel() if kernel is None else kernel
    filtered = np.stack([correlate(np.asarray(img, dtype=np.float64), kernel, mode="nearest") for img in images])
    return np.stack([np.maximum(filtered, 0), np.maximum(-filtered, 0)], axis=1).astype(np.float32)


def response_latencies(
    responses: np.ndarray, t_max: float, threshold: float = DOG_THRESHOLD, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Latency code ``t = t_max (1 - r / r_max)`` for ``r >= threshold``, else ``inf`` (per image ``r_max``).

    Shape:
        - responses: ``[N, C, H, W]``; output: ``[N, C*H*W]`` float32 ms on ``device``.
    """
    flat = torch.as_tensor(responses.reshape(responses.shape[0], -1), dtype=torch.float32, device=device)
    peak = flat.amax(dim=1, keepdim=True).clamp_min(1e-12)
    times = t_max * (1.0 - flat / peak)
    return torch.where(flat >= threshold, times, torch.full_like(times, float("inf")))


def first_spike_pooling(times: torch.Tensor, map_shape: tuple[int, int, int], size: int) -> torch.Tensor:
    """The earliest spike time of every ``size x size`` window (stride ``size``) of each map.

    ``t'[n, c, h, w] = min over 0 <= a, b < size of t[n, c, size h + a, size w + b]``: ``inf``
    (silent) where the whole window is silent; rows and columns that do not fill a window are
    dropped (floor). ``size`` 1 returns ``times`` unchanged.

    Shape:
        - times: ``[N, C*H*W]`` (index ``c H W + h W + w``), ``map_shape`` ``(C, H, W)``;
          output ``[N, C * (H // size) * (W // size)]`` in the same index order.
    """
    if size == 1:
        return times
    maps = times.reshape(times.shape[0], *map_shape)
    return (-torch.nn.functional.max_pool2d(-maps, size)).reshape(times.shape[0], -1)
