"""Training-image distortions of the official HM2-BP spiking CNN (ALGORITHMS.md 1.10).

The official CNN configuration (``SCALE = 12``, ``ROTATION = 12``, ``DISTORTION = 3.4``) warps the
training images' pixel intensities before they are Bernoulli-encoded; the spike trains themselves
are never moved. A warp is a displacement field ``(dx, dy)`` (pixels, one value per output pixel)
and the distorted image samples the original at ``(row - dy, col - dx)``:

* **elastic** (Simard et al. 2003): ``dx = a (G * U_x)``, ``dy = a (G * U_y)`` with ``U``
  independent uniform noise in ``[-1, 1]`` per pixel, ``G`` a ``w x w`` Gaussian window
  ``G(i, j) = exp(-(i^2 + j^2) / (2 s^2)) / (2 pi s)`` (``w = 21``, ``s = 4``; note ``2 pi s``,
  not ``2 pi s^2``: the window sums to about ``s``), ``*`` a correlation with zero noise outside
  the image, ``a`` = ``elastic`` (3.4);
* **stretch** about the centre ``m = (H // 2, W // 2)``: ``dx += f_x (col - m_c)``,
  ``dy += f_y (row - m_r)``;
* **rotation** by ``phi`` about the same centre, with ``x = row - m_r``, ``y = col - m_c``:
  ``dx += y - y cos(phi) - x sin(phi)``, ``dy += x - x cos(phi) + y sin(phi)``; alone it makes the
  output at ``(m_r + x, m_c + y)`` sample the input at
  ``(m_r + x cos(phi) - y sin(phi), m_c + x sin(phi) + y cos(phi))`` (clockwise on screen for
  ``phi > 0``).

Sampling is bilinear between the four neighbours of the source point; a source point whose
neighbourhood leaves the image is black (0), and an output pixel whose displacement is below
``1e-9`` in both axes keeps its own value. (The official code works on ``2 p / 255 - 1`` with
-1 for black and maps back before the rate code; interpolation commutes with that affine map,
so intensities in ``[0, 255]`` with 0 outside give the same spike probabilities. It truncates
source coordinates toward zero, which differs from the floor used here only for source points in
``(-1, 0)``, on the border, where MNIST is black.)

Random draws (:func:`draw_displacements`), with ``official_draws`` (the default) as the official
code draws them at its batch size 1: one uniform ``u_1`` gives the rotation ``phi = r u_1``
degrees (``r`` = ``rotation``) and, clamped at 0 when rotation is on, the horizontal stretch
``f_x = (s / 100) max(u_1, 0)`` (``s`` = ``scale`` in percent); a second uniform gives
``f_y = (s / 100) max(u_2, 0)``; the vertical elastic noise is the horizontal one
(``U_y = U_x``, so elastic displacements run along the diagonal). Images are therefore only
enlarged, by up to ``s`` percent per axis, and rotated by up to ``r`` degrees either way. With
``official_draws`` false: independent ``U_x``, ``U_y``, ``phi = r u_1``, ``f_x = (s/100) u_2``,
``f_y = (s/100) u_3`` (shrinking too).

How often (``redraw``): the official code draws one field per position in the batch at the
start of every epoch (``cuApplyRandom`` once per epoch) and applies it to every training batch of
that epoch; at batch size 1 the whole epoch shares one warp. ``redraw: sample`` draws a field per
training presentation instead. Test images are never distorted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

KEEP_BELOW = 1e-9
"""An output pixel whose displacement is below this in both axes keeps its own value."""


@dataclass(frozen=True)
class ImageDistortion:
    """Training-image distortions (module docstring); all amplitudes 0 is the identity.

    Attributes:
        scale: maximal stretch in percent of the distance to the centre (SCALE; official 12).
        rotation: maximal rotation in degrees (ROTATION; official 12).
        elastic: elastic amplitude ``a`` (DISTORTION; official 3.4).
        elastic_sigma: standard deviation ``s`` of the Gaussian window in pixels (official 4).
        elastic_window: side ``w`` of the Gaussian window in pixels, odd (official 21).
        redraw: ``"epoch"``: one field per batch position per epoch (official); ``"sample"``: one
            per training presentation.
        official_draws: draw stretch, rotation and elastic noise as the official code does (see
            the module docstring); false: independent draws.
    """

    scale: float = 0.0
    rotation: float = 0.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0
    elastic_window: int = 21
    redraw: Literal["epoch", "sample"] = "epoch"
    official_draws: bool = True

    @property
    def is_identity(self) -> bool:
        """True when every amplitude is 0 (no image is changed)."""
        return self.scale == 0 and self.rotation == 0 and self.elastic == 0


def gaussian_window(sigma: float, size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The official elastic window ``G(i, j) = exp(-(i^2 + j^2) / (2 sigma^2)) / (2 pi sigma)``.

    Shape:
        - output: ``[size, size]``, ``i, j`` from ``-(size // 2)`` to ``size // 2``.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"elastic_window must be a positive odd number of pixels, got {size}")
    offsets = torch.arange(size, dtype=dtype) - size // 2
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    return torch.exp(-squared / (2.0 * sigma**2)) / (2.0 * math.pi * sigma)


def elastic_displacement(noise: torch.Tensor, amplitude: float, sigma: float, size: int) -> torch.Tensor:
    """``amplitude * (G * noise)``: the noise correlated with :func:`gaussian_window`, zero outside.

    Shape:
        - noise: ``[B, H, W]``; output ``[B, H, W]`` (same dtype).
    """
    window = gaussian_window(sigma, size, noise.dtype).to(noise.device)
    smoothed = torch.nn.functional.conv2d(noise[:, None], window[None, None], padding=size // 2)[:, 0]
    return amplitude * smoothed


def affine_displacement(
    stretch_x: torch.Tensor, stretch_y: torch.Tensor, angle_deg: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stretch and rotation displacements ``(dx, dy)`` about ``(height // 2, width // 2)`` (module docstring).

    Args:
        stretch_x, stretch_y: stretch factors ``f_x, f_y`` (0.12 = 12 %).
        angle_deg: rotation ``phi`` in degrees.

    Shape:
        - stretch_x, stretch_y, angle_deg: ``[B]``; outputs ``[B, height, width]``.
    """
    dtype, device = angle_deg.dtype, angle_deg.device
    x = (torch.arange(height, dtype=dtype, device=device) - height // 2)[None, :, None]
    y = (torch.arange(width, dtype=dtype, device=device) - width // 2)[None, None, :]
    phi = torch.deg2rad(angle_deg)[:, None, None]
    cos, sin = torch.cos(phi), torch.sin(phi)
    dx = stretch_x[:, None, None] * y + (y - y * cos - x * sin)
    dy = stretch_y[:, None, None] * x + (x - x * cos + y * sin)
    return dx, dy


def draw_displacements(
    params: ImageDistortion, count: int, height: int, width: int, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random displacement fields ``(dx, dy)`` (module docstring), float32.

    The draws per field, in order: ``u`` (``[count, 3]`` uniforms in ``[-1, 1]``), then the
    horizontal elastic noise, then (``official_draws`` false) the vertical one.

    Shape:
        - outputs: ``[count, height, width]`` each.
    """
    u = torch.rand(count, 3, generator=generator) * 2.0 - 1.0
    if params.official_draws:
        stretch_u = u[:, :2].clamp(min=0.0) if params.rotation != 0 else u[:, :2]
        stretch_x, stretch_y, angle = stretch_u[:, 0], stretch_u[:, 1], u[:, 0]
    else:
        stretch_x, stretch_y, angle = u[:, 1], u[:, 2], u[:, 0]
    dx, dy = affine_displacement(
        params.scale / 100.0 * stretch_x, params.scale / 100.0 * stretch_y, params.rotation * angle, height, width
    )
    if params.elastic != 0:
        noise_x = torch.rand(count, height, width, generator=generator) * 2.0 - 1.0
        noise_y = (
            noise_x if params.official_draws else torch.rand(count, height, width, generator=generator) * 2.0 - 1.0
        )
        dx = dx + elastic_displacement(noise_x, params.elastic, params.elastic_sigma, params.elastic_window)
        dy = dy + elastic_displacement(noise_y, params.elastic, params.elastic_sigma, params.elastic_window)
    return dx, dy


def warp_images(images: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    """Images resampled at ``(row - dy, col - dx)``: bilinear, black outside, clamped to ``[0, 255]``.

    ``out(r, c) = sum_k w_k img(n_k)`` over the four neighbours ``n_k`` of the source point
    ``(r - dy, c - dx)`` with bilinear weights ``w_k``; 0 when ``floor(source) < 0`` or
    ``floor(source) + 1 > side - 1`` on either axis; ``img(r, c)`` where ``|dx|, |dy| < 1e-9``.

    Shape:
        - images: ``[B, H, W]`` (any real dtype, intensities in ``[0, 255]``); dx, dy: ``[B, H, W]``
          (or broadcastable); output ``[B, H, W]`` float32.
    """
    img = images.to(torch.float32)
    batch, height, width = img.shape
    rows = torch.arange(height, dtype=torch.float32, device=img.device)[None, :, None]
    cols = torch.arange(width, dtype=torch.float32, device=img.device)[None, None, :]
    dx, dy = torch.broadcast_to(dx.to(torch.float32), img.shape), torch.broadcast_to(dy.to(torch.float32), img.shape)
    src_r, src_c = rows - dy, cols - dx
    r0, c0 = torch.floor(src_r), torch.floor(src_c)
    fr, fc = src_r - r0, src_c - c0
    inside = (r0 >= 0) & (r0 + 1 <= height - 1) & (c0 >= 0) & (c0 + 1 <= width - 1)
    r0 = r0.clamp(0, height - 2).long() if height > 1 else torch.zeros_like(r0, dtype=torch.long)
    c0 = c0.clamp(0, width - 2).long() if width > 1 else torch.zeros_like(c0, dtype=torch.long)
    flat = img.reshape(batch, -1)

    def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return flat.gather(1, (r * width + c).reshape(batch, -1)).reshape(img.shape)

    r1, c1 = (r0 + 1).clamp(max=height - 1), (c0 + 1).clamp(max=width - 1)
    value = (
        (1 - fr) * (1 - fc) * at(r0, c0)
        + (1 - fr) * fc * at(r0, c1)
        + fr * (1 - fc) * at(r1, c0)
        + fr * fc * at(r1, c1)
    )
    value = torch.where(inside, value, torch.zeros_like(value))
    keep = (dx.abs() < KEEP_BELOW) & (dy.abs() < KEEP_BELOW)
    return torch.where(keep, img, value).clamp(0.0, 255.0)


def distort_images(images: torch.Tensor, params: ImageDistortion, *, generator: torch.Generator) -> torch.Tensor:
    """Each image warped by its own field from :func:`draw_displacements` (one field per image).

    Shape:
        - images: ``[B, H, W]`` intensities in ``[0, 255]``; output ``[B, H, W]`` float32.
    """
    dx, dy = draw_displacements(params, images.shape[0], images.shape[1], images.shape[2], generator=generator)
    return warp_images(images, dx.to(images.device), dy.to(images.device))
