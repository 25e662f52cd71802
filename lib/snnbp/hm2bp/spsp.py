"""Spike-train level post-synaptic potentials (S-PSP), exactly as the official code defines them.

ALGORITHMS.md 1.3. With post spikes ``tau_1 < ... < tau_o`` of neuron ``i``, reset ends
``hat_tau_0 = 1``, ``hat_tau_f = tau_f + t_ref``, and pre spikes ``t_g`` of neuron ``j``::

    e_ij = sum_f sum_{g: max(1, tau_f - W) <= t_g < tau_f, t_g + d <= tau_f} eps(s_f, u_fg)
    s_f  = tau_f - hat_tau_{f-1},   u_fg = tau_f - (t_g + d)
    eps(s, u) = exp(-max(u - s, 0) / tau_s) * (exp(-min(s, u) / tau_m) - exp(-min(s, u) / tau_s)) / (1 - tau_s / tau_m)

with the official look-back window ``W = 4 tau_m`` and pre shift ``d = t_ref`` (both quirks of the
official code, kept as parameters). Special cases: ``o_j = 0 -> e = 0``; ``o_i = 0`` and
``o_j > 0 -> e = 0.1`` (the official probe value).

Fast path: ``e = A @ pre``, where the post-side kernel ``A[t', b, i]`` is the summed ``eps`` that
one pre spike at step ``t'`` leaves on neuron ``i`` over all its firings. For a pre spike at
``t'`` the first firing ``f*`` at or after ``max(t' + d, t' + 1)`` sees it "after the reset"
(``eps(s, u)`` in full); every later firing ``f`` sees it decayed through the reset,
``exp(-(hat_tau_{f-1} - t' - d) / tau_s) D_f`` with ``D_f = eps(s_f, s_f)``, and those terms are
a windowed suffix sum over the time grid. So ``A`` costs O(B N_out T) (computed in float64 so
that ``exp(+-T / tau_s)`` stays in range) and the product with the sparse binary ``pre`` is an
event-driven gather over the pre spikes (``embedding_bag``) or, for dense rasters, a matmul.
Convolutional and pooling layers contract ``A`` with the receptive-field spike trains.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from snnbp.hm2bp.lif import OFFICIAL_NEURON, NeuronParams, with_constants

SILENT_POST_PROBE = 0.1
LOOKBACK_TAU_M = 4.0
DENSE_PRE_DENSITY = 0.15
MAX_EXPONENT = 700.0
FLOAT32_EXPONENT = 80.0
KERNEL_CHUNK = 1 << 18


def psp_kernel(s: torch.Tensor, u: torch.Tensor, tau_m: float, tau_s: float) -> torch.Tensor:
    """``eps(s, u)`` of ALGORITHMS.md 1.3 (reset-aware exp-difference kernel), elementwise.

    Args:
        s: time integrated since the post neuron's previous reset (steps).
        u: age of the (shifted) pre spike at the post firing (steps).
    """
    shortest = torch.minimum(s, u)
    rise = (torch.exp(-shortest / tau_m) - torch.exp(-shortest / tau_s)) / (1.0 - tau_s / tau_m)
    return torch.exp(-torch.clamp(u - s, min=0.0) / tau_s) * rise


def post_kernel(
    post: torch.Tensor,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
) -> torch.Tensor:
    """The post-side S-PSP kernel ``A[t', b, i]``: the summed ``eps`` a pre spike at ``t'`` leaves on ``i``.

    ``e_ij = sum_t' A[t', i] pre_j(t')`` wherever ``i`` fired (ALGORITHMS.md 1.3). Time-major like
    the rasters. Silent neurons get 0; the others are computed in chunks of about
    :data:`KERNEL_CHUNK` elements.

    Args:
        post: binary post-synaptic raster.
        neuron: the layer's LIF constants (:class:`snnbp.hm2bp.lif.NeuronParams`).
        pre_shift: the official code's shift of the pre spike time (None: ``t_ref``).
        lookback: the look-back window in units of ``tau_m`` (official: 4).

    Shape:
        - post: ``[T, B, *S]`` binary.
        - Output: ``[T, B, *S]``, dtype of ``post`` (float32 when ``post`` is not floating).
    """
    tau_m, tau_s, t_ref = neuron.tau_m, neuron.tau_s, neuron.t_ref
    steps = post.shape[0]
    if steps / tau_s > MAX_EXPONENT:
        raise ValueError(f"post_kernel: T={steps} steps exceeds the float64 range of exp(T / tau_s) (tau_s={tau_s})")
    out_dtype = post.dtype if post.dtype.is_floating_point else torch.float32
    flat = post.reshape(steps, -1)
    kernel = torch.zeros(flat.shape, dtype=out_dtype, device=post.device)
    active = torch.nonzero(flat.any(dim=0)).flatten()
    if active.numel():
        fired = flat[:, active] > 0  # [T, firing neurons]
        shift = t_ref if pre_shift is None else pre_shift
        window = math.ceil(lookback * tau_m)
        # float32 keeps exp(+-T / tau_s) in range up to T / tau_s = 80; beyond that, float64
        compute = out_dtype if steps / tau_s <= FLOAT32_EXPONENT else torch.float64
        table = _first_term_table(steps, tau_m, tau_s, t_ref, window, str(post.device)).to(compute)
        width = max(1, KERNEL_CHUNK // steps)
        compact = torch.cat(
            [
                _kernel_columns(fired[:, start : start + width], table, tau_m, tau_s, t_ref, shift, window).to(
                    out_dtype
                )
                for start in range(0, active.numel(), width)
            ],
            dim=1,
        )
        kernel.index_copy_(1, active, compact)
    return kernel.reshape(post.shape)


@functools.lru_cache(maxsize=16)
def _first_term_table(steps: int, tau_m: float, tau_s: float, t_ref: int, window: int, device: str) -> torch.Tensor:
    """``eps(s, u)`` for ``s = S_LOW(t_ref) .. steps`` (rows) and ``u = 0 .. window`` (columns), flattened.

    ``s = tau_f - hat_tau_{f-1}`` is at least ``min(-1, 1 - t_ref)`` (consecutive spikes in an
    arbitrary raster) and at most ``steps``.
    """
    s = torch.arange(_s_low(t_ref), steps + 1, dtype=torch.float64, device=device)[:, None]
    u = torch.arange(0, window + 1, dtype=torch.float64, device=device)[None, :]
    return psp_kernel(s.expand(-1, window + 1), u.expand(s.shape[0], -1), tau_m, tau_s).flatten()


def _s_low(t_ref: int) -> int:
    """The smallest possible ``s_f`` (see :func:`_first_term_table`)."""
    return min(-1, 1 - t_ref)


def _kernel_columns(
    fired: torch.Tensor, table: torch.Tensor, tau_m: float, tau_s: float, t_ref: int, shift: int, window: int
) -> torch.Tensor:
    """:func:`post_kernel` of a block of neurons (columns) that fire, computed in ``table``'s dtype.

    Per neuron, firings ``f = 0 .. o-1`` at ``tau_f`` with reset end ``hat_tau_{f-1}`` (1 for the
    first) and ``s_f = tau_f - hat_tau_{f-1}``. ``k(t)``, the number of firings before step ``t``,
    indexes the first firing at or after ``t``; a pre spike at ``t'`` is seen by the firings
    ``f = k(t' + d') .. k(t' + W + 1) - 1`` (``d' = max(d, 1)``). The first of them contributes
    ``eps(s_f, tau_f - t' - d)`` (a lookup in ``table``), the others
    ``D_f exp(-(hat_tau_{f-1} - t' - d) / tau_s)`` with ``D_f = eps(s_f, s_f)`` (suffix sums over
    each neuron's own firing list).

    Shape:
        - fired: ``[T, R]`` bool. Output ``[T, R]``.
    """
    steps, columns = fired.shape
    device = fired.device
    dtype = table.dtype
    # every neuron's firings as a padded list [slot, column]
    before_or_at = torch.cumsum(fired, dim=0)  # [T, R] int64
    counts = before_or_at[-1]
    slots = int(counts.max()) + 2
    time, column = torch.nonzero(fired, as_tuple=True)
    local = before_or_at[time, column] - 1
    times = torch.zeros(slots, columns, dtype=torch.long, device=device)
    times[local, column] = time
    previous = times[(local - 1).clamp(min=0), column]
    reset_end = torch.where(local == 0, torch.ones_like(time), previous + t_ref).to(dtype)
    s = time.to(dtype) - reset_end
    suffix = torch.zeros(slots, columns, dtype=dtype, device=device)
    suffix[local, column] = psp_kernel(s, s, tau_m, tau_s) * torch.exp(-reset_end / tau_s)
    suffix = torch.flip(torch.cumsum(torch.flip(suffix, [0]), dim=0), [0])
    # the first firing's eps(s, u), u = tau - t' - d in [0, W]: ``table`` at base - t'
    base = torch.zeros(slots, columns, dtype=torch.long, device=device)
    base[local, column] = (s.long() - _s_low(t_ref)) * (window + 1) + time - shift
    # k(t' + d') and k(t' + W + 1), ``counts`` past the end
    before = before_or_at - fired.long()
    pad = counts[None, :].expand(steps, columns)
    seen_from = max(shift, 1)
    first = torch.cat([before[seen_from:], pad[:seen_from]])[:steps]
    beyond = torch.cat([before[window + 1 :], pad[: window + 1]])[:steps]
    eligible = first < beyond
    eligible[0] = False
    grid = torch.arange(steps, device=device)[:, None]
    term_first = torch.take(table, torch.where(eligible, torch.gather(base, 0, first) - grid, 0))
    later = (torch.gather(suffix, 0, first + 1) - torch.gather(suffix, 0, beyond)) * torch.exp(
        (grid + shift).to(dtype) / tau_s
    )
    return torch.where(eligible, term_first + later, 0.0)


def _bag_offsets(bag_index: torch.Tensor, bags: int) -> torch.Tensor:
    """Start offsets of consecutive bags for ``embedding_bag`` (``bag_index`` sorted, ``[nnz]``)."""
    counts = torch.bincount(bag_index, minlength=bags)
    offsets = torch.zeros_like(counts)
    offsets[1:] = counts.cumsum(0)[:-1]
    return offsets


def contract_kernel(kernel: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """Per sample ``sum_t kernel[t, b, m] pre[t, b, n]``: sum the kernel over each pre neuron's spike times.

    An event-driven gather (``embedding_bag`` over the pre spikes) when ``pre`` is sparse, a
    batched matmul otherwise.

    Shape:
        - kernel: ``[T, B, M]``; pre: ``[T, B, N]`` binary.
        - Output: ``[B, M, N]``.
    """
    steps, batch, n_in = pre.shape
    pre = pre.to(kernel.dtype)
    if pre.numel() == 0 or pre.mean().item() > DENSE_PRE_DENSITY:
        return torch.einsum("tbm,tbn->bmn", kernel, pre)
    time, sample, neuron = torch.nonzero(pre, as_tuple=True)
    bag, order = torch.sort(sample * n_in + neuron, stable=True)  # bags (b, j)
    summed = F.embedding_bag(
        (time * batch + sample)[order], kernel.reshape(steps * batch, -1), _bag_offsets(bag, batch * n_in), mode="sum"
    )  # [(b, j), M]
    return summed.reshape(batch, n_in, -1).transpose(1, 2)


def contract_kernel_batch_sum(kernel: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """``sum_b sum_t kernel[t, b, m] pre[t, b, n]``: like :func:`contract_kernel`, summed over the batch.

    Shape:
        - kernel: ``[T, B, M]``; pre: ``[T, B, N]`` binary.
        - Output: ``[M, N]``.
    """
    steps, batch, n_in = pre.shape
    pre = pre.to(kernel.dtype)
    table = kernel.reshape(steps * batch, -1)  # rows (t, b)
    if pre.numel() == 0 or pre.mean().item() > DENSE_PRE_DENSITY:
        return table.t() @ pre.reshape(steps * batch, n_in)
    time, sample, neuron = torch.nonzero(pre, as_tuple=True)
    neuron, order = torch.sort(neuron, stable=True)  # bags by pre neuron
    summed = F.embedding_bag((time * batch + sample)[order], table, _bag_offsets(neuron, n_in), mode="sum")  # [N, M]
    return summed.t()


def apply_silent_post_probe(
    e: torch.Tensor, post_counts: torch.Tensor, pre_counts: torch.Tensor, probe: float = SILENT_POST_PROBE
) -> torch.Tensor:
    """The official convention ``e = probe`` (0.1) where the post neuron is silent and the pre one fired.

    Shape:
        - e: ``[B, *P, K]``; post_counts: ``[B, *P]``; pre_counts: broadcastable to ``e``.
    """
    silent_post = (post_counts == 0).unsqueeze(-1)
    return torch.where(silent_post & (pre_counts > 0), torch.full_like(e, probe), e)


def spsp(
    pre: torch.Tensor,
    post: torch.Tensor,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
    probe: float = SILENT_POST_PROBE,
    tau_m: float | None = None,
    tau_s: float | None = None,
    t_ref: int | None = None,
) -> torch.Tensor:
    """S-PSP ``e[b, i, j]`` of every (post ``i``, pre ``j``) pair of a fully connected layer (ALGORITHMS.md 1.3).

    Args:
        pre: binary pre-synaptic raster.
        post: binary post-synaptic raster.
        neuron: the layer's LIF constants (:class:`snnbp.hm2bp.lif.NeuronParams`).
        pre_shift, lookback: see :func:`post_kernel`.
        probe: value of ``e`` where the post neuron is silent and the pre neuron fired.
        tau_m, tau_s, t_ref: the constants one by one, in place of ``neuron``'s
            (:func:`snnbp.hm2bp.lif.with_constants`; None: ``neuron``'s).

    Shape:
        - pre: ``[T, B, N_in]``; post: ``[T, B, N_out]``; output ``[B, N_out, N_in]``.
    """
    neuron = with_constants(neuron, tau_m=tau_m, tau_s=tau_s, t_ref=t_ref)
    kernel = post_kernel(post, neuron=neuron, pre_shift=pre_shift, lookback=lookback)
    e = contract_kernel(kernel.to(_float(pre, post)), pre)
    return apply_silent_post_probe(e, post.sum(dim=0), pre.sum(dim=0)[:, None, :], probe)


def spsp_batch_weighted(
    pre: torch.Tensor,
    kernel: torch.Tensor,
    post_counts: torch.Tensor,
    scale: torch.Tensor,
    *,
    probe: float = SILENT_POST_PROBE,
) -> torch.Tensor:
    """``sum_b scale[b, i] e[b, i, j]`` without forming ``e`` (memory ``O(N_out N_in)``, not ``O(B N_out N_in)``).

    Used for the weight gradient of a fully connected layer whose pre-delta is not needed
    (ALGORITHMS.md 1.7: ``dE/dw_ij = mean_b delta_i (1 + sigma_i) e_ij``).

    Args:
        pre: binary pre-synaptic raster.
        kernel: :func:`post_kernel` of the post raster.
        post_counts: post firing counts (where 0, ``e`` is the probe value for firing pre neurons).
        scale: per-sample weight of each post neuron.

    Shape:
        - pre: ``[T, B, N_in]``; kernel: ``[T, B, N_out]``; post_counts, scale: ``[B, N_out]``.
        - Output: ``[N_out, N_in]``.
    """
    summed = contract_kernel_batch_sum(kernel * scale, pre)
    silent_scale = torch.where(post_counts == 0, scale, torch.zeros_like(scale))
    return summed + probe * silent_scale.t() @ (pre.sum(dim=0) > 0).to(scale.dtype)


def raster_receptive_fields(pre: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Spike trains of every valid, stride-1 receptive field (``unfold`` per step).

    Shape:
        - pre: ``[T, B, C_in, H, W]``.
        - Output: ``[B, L, T, K]`` with ``L = (H-k+1)(W-k+1)`` output positions and
          ``K = C_in k k`` taps in the order of ``kernel.reshape(C_out, -1)``.
    """
    steps, batch = pre.shape[:2]
    unfolded = F.unfold(pre.reshape(steps * batch, *pre.shape[2:]), kernel_size)  # [(t, b), K, L]
    return unfolded.reshape(steps, batch, unfolded.shape[1], unfolded.shape[2]).permute(1, 3, 0, 2)


def pool_windows(pre: torch.Tensor, pool: int) -> torch.Tensor:
    """Spike trains of every non-overlapping ``pool x pool`` window.

    Shape:
        - pre: ``[T, B, C, H, W]`` with ``H, W`` divisible by ``pool``.
        - Output: ``[B, C, L, T, pool * pool]`` with ``L = (H / pool)(W / pool)``.
    """
    steps, batch, channels, height, width = pre.shape
    windows = pre.reshape(steps, batch, channels, height // pool, pool, width // pool, pool)
    windows = windows.permute(1, 2, 3, 5, 0, 4, 6)  # [B, C, Ho, Wo, T, p, p]
    return windows.reshape(batch, channels, (height // pool) * (width // pool), steps, pool * pool)


def spsp_conv(
    pre: torch.Tensor,
    post: torch.Tensor,
    kernel_size: int,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
    probe: float = SILENT_POST_PROBE,
) -> torch.Tensor:
    """S-PSP of every (output position, kernel tap) pair of a valid, stride-1 spiking convolution.

    ``e[b, c, l, k] = e_{(c, l) | tap k of l's receptive field}`` (ALGORITHMS.md 1.3, 1.9).

    Shape:
        - pre: ``[T, B, C_in, H, W]``; post: ``[T, B, C_out, H-k+1, W-k+1]``.
        - Output: ``[B, C_out, L, C_in k k]``.
    """
    batch, c_out = post.shape[1], post.shape[2]
    a = post_kernel(post, neuron=neuron, pre_shift=pre_shift, lookback=lookback)
    a = a.to(_float(pre, post)).reshape(post.shape[0], batch, c_out, -1).permute(1, 2, 3, 0)  # [B, C_out, L, T]
    fields = raster_receptive_fields(pre.to(a.dtype), kernel_size)  # [B, L, T, K]
    e = torch.matmul(a.transpose(1, 2), fields).transpose(1, 2)  # [B, C_out, L, K]
    field_counts = fields.sum(dim=2)[:, None]  # [B, 1, L, K]
    return apply_silent_post_probe(e, post.sum(dim=0).reshape(batch, c_out, -1), field_counts, probe)


def spsp_pool(
    pre: torch.Tensor,
    post: torch.Tensor,
    pool: int,
    *,
    neuron: NeuronParams = OFFICIAL_NEURON,
    pre_shift: int | None = None,
    lookback: float = LOOKBACK_TAU_M,
    probe: float = SILENT_POST_PROBE,
) -> torch.Tensor:
    """S-PSP of every (pooled neuron, window member) pair of a spiking pooling layer (ALGORITHMS.md 1.9).

    Shape:
        - pre: ``[T, B, C, H, W]``; post: ``[T, B, C, H / p, W / p]``.
        - Output: ``[B, C, L, p * p]``.
    """
    batch, channels = post.shape[1], post.shape[2]
    a = post_kernel(post, neuron=neuron, pre_shift=pre_shift, lookback=lookback)
    a = (
        a.to(_float(pre, post)).reshape(post.shape[0], batch, channels, -1).permute(1, 2, 3, 0)[..., None, :]
    )  # [B, C, L, 1, T]
    windows = pool_windows(pre.to(a.dtype), pool)  # [B, C, L, T, p*p]
    e = torch.matmul(a, windows).squeeze(-2)
    return apply_silent_post_probe(e, post.sum(dim=0).reshape(batch, channels, -1), windows.sum(dim=3), probe)


def _float(*tensors: torch.Tensor) -> torch.dtype:
    """The floating dtype to compute in: float64 if any input is float64, else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
