"""The inputs of HM2-BP networks: images as Bernoulli rate codes (ALGORITHMS.md 1.10), drawn once
per sample (fixed) or anew every epoch, the training-image distortions drawn per sample, and a
dataset's own spike rasters fitted to the simulated time steps.
"""

from __future__ import annotations

import torch

from snnbp.encoding.distortion import ImageDistortion, draw_displacements
from snnbp.encoding.rate import bernoulli_rate_code
from snnbp.seeding import derive_seed, torch_generator


def encode_fixed(
    images: torch.Tensor,
    indices: torch.Tensor,
    split: str,
    time_steps: int,
    *,
    seed: int,
    scale: float,
    flags: bool = False,
) -> torch.Tensor:
    """Bernoulli rate code with a generator per sample derived from ``(seed, split, index)``.

    A sample therefore gets the same spike trains every time it is presented (the official MLP
    encodes the data set once at load time). Only the nonzero pixels are drawn (black pixels never
    fire), which keeps the cost proportional to the ink.

    Args:
        flags: return the event engine's ``uint8 [B, T, H * W]`` flags instead of the raster.

    Shape:
        - images: ``[B, H, W]`` uint8; indices: ``[B]``; output ``[T, B, H * W]`` float32 (or the flags).
    """
    flat = images.reshape(images.shape[0], -1)
    spikes = empty_code(time_steps, flat.shape, flags)
    for row, (pixels, index) in enumerate(zip(flat, indices.tolist())):
        generator = torch.Generator().manual_seed(derive_seed(seed, f"hm2bp/encoding/{split}/{index}"))
        ink = torch.nonzero(pixels).flatten()
        trains = bernoulli_rate_code(pixels[ink][None], time_steps, generator=generator, scale=scale)[:, 0]
        if flags:
            spikes[row][:, ink] = trains.to(torch.uint8)
        else:
            spikes[:, row, ink] = trains
    return spikes


def encode_fresh(
    images: torch.Tensor, time_steps: int, *, generator: torch.Generator, scale: float, flags: bool = False
) -> torch.Tensor:
    """Bernoulli rate code drawn from a running generator (new trains at every presentation).

    Shape:
        - images: ``[B, H, W]`` uint8; output ``[T, B, H * W]`` float32 (``flags``: ``uint8 [B, T, H * W]``).
    """
    flat = images.reshape(images.shape[0], -1)
    spikes = empty_code(time_steps, flat.shape, flags)
    ink = torch.nonzero(flat.amax(dim=0)).flatten()
    trains = bernoulli_rate_code(flat[:, ink], time_steps, generator=generator, scale=scale)
    if flags:
        spikes[:, :, ink] = trains.permute(1, 0, 2).to(torch.uint8)
    else:
        spikes[:, :, ink] = trains
    return spikes


def distortion_fields(
    params: ImageDistortion, seed: int, epoch: int, indices: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The displacement fields ``(dx, dy)`` of a training batch in 0-based ``epoch`` (ALGORITHMS.md 1.10).

    ``redraw: epoch`` (official): batch position ``b`` gets field ``b`` of the epoch's fields, drawn
    from ``(seed, "hm2bp/distortion/<epoch>")``, so every batch of the epoch reuses them;
    ``redraw: sample``: sample ``i`` gets its own field from ``(seed, "hm2bp/distortion/<epoch>/<i>")``.

    Shape:
        - indices: ``[B]``; outputs ``[B, height, width]`` float32.
    """
    if params.redraw == "epoch":
        generator = torch_generator(seed, f"hm2bp/distortion/{epoch}")
        return draw_displacements(params, len(indices), height, width, generator=generator)
    fields = [
        draw_displacements(params, 1, height, width, generator=torch_generator(seed, f"hm2bp/distortion/{epoch}/{i}"))
        for i in indices.tolist()
    ]
    return torch.cat([f[0] for f in fields]), torch.cat([f[1] for f in fields])


def empty_code(time_steps: int, shape: torch.Size, flags: bool) -> torch.Tensor:
    """Zero raster ``[T, B, N]`` float32, or zero flags ``uint8 [B, T, N]``."""
    if flags:
        return torch.zeros(shape[0], time_steps, shape[1], dtype=torch.uint8)
    return torch.zeros(time_steps, *shape, dtype=torch.float32)


def fit_raster(raster: torch.Tensor, time_steps: int, flags: bool = False) -> torch.Tensor:
    """Time-major raster of exactly ``time_steps`` steps (cut, or padded with silence).

    Shape:
        - raster: ``[B, T_data, N]``; output ``[time_steps, B, N]`` float32 (``flags``: ``uint8 [B, T, N]``).
    """
    if flags:
        fitted = torch.zeros(raster.shape[0], time_steps, raster.shape[2], dtype=torch.uint8)
        kept = min(time_steps, raster.shape[1])
        fitted[:, :kept] = raster[:, :kept] != 0
        return fitted
    raster = raster.to(torch.float32).permute(1, 0, 2)[:time_steps]
    if raster.shape[0] < time_steps:
        pad = torch.zeros(time_steps - raster.shape[0], *raster.shape[1:], dtype=raster.dtype)
        raster = torch.cat([raster, pad])
    return raster.contiguous()
