"""Spike-train level post-synaptic potentials (S-PSP), exactly as the official code defines them.

ALGORITHMS.md 1.3. With post spikes ``tau_1 < ... < tau_o`` of neuron ``i``, reset ends
``hat_tau_0 = 1``, ``hat_tau_f = tau_f + t_ref``, and pre spikes ``t_g`` of neuron ``j``::

    e_ij = sum_f sum_{g: max(1, tau_f - 4 tau_m) <= t_g, t_g + t_ref <= tau_f} eps(s_f, u_fg)
    s_f  = tau_f - hat_tau_{f-1},   u_fg = tau_f - (t_g + t_ref)
    eps(s, u) = exp(-max(u - s, 0) / tau_s) * (exp(-min(s, u) / tau_m) - exp(-min(s, u) / tau_s)) / (1 - tau_s / tau_m)

Special cases: ``o_j = 0 -> e = 0``; ``o_i = 0`` and ``o_j > 0 -> e = 0.1`` (the official probe value).

Fast path: ``e = A @ pre`` where the post-side kernel ``A[b, i, t']`` is the PSP that one pre spike
at step ``t'`` leaves, summed over the post neuron's firings. For a pre spike at ``t'`` only the
first post spike ``f*`` at or after ``t' + t_ref`` can see it "after the reset"; every later
firing ``f`` sees it decayed through the reset: ``exp(-(hat_tau_{f-1} - t' - t_ref)/tau_s) D_f``
with ``D_f = eps(s_f, s_f)``. Those later terms are a windowed suffix sum over the time grid, so
``A`` costs O(B N_out T) and the product is an event-driven gather over the pre spikes.
"""

from __future__ import annotations

import torch

SILENT_POST_PROBE = 0.1
LOOKBACK_TAU_M = 4.0


def psp_kernel(s: torch.Tensor, u: torch.Tensor, tau_m: float, tau_s: float) -> torch.Tensor:
    """``eps(s, u)`` of ALGORITHMS.md 1.3 (reset-aware exp-difference kernel), elementwise."""
    shortest = torch.minimum(s, u)
    rise = (torch.exp(-shortest / tau_m) - torch.exp(-shortest / tau_s)) / (1.0 - tau_s / tau_m)
    return torch.exp(-torch.clamp(u - s, min=0.0) / tau_s) * rise


def post_kernel(post: torch.Tensor, *, tau_m: float = 64.0, tau_s: float = 8.0, t_ref: int = 2) -> torch.Tensor:
    """The post-side S-PSP kernel ``A[b, i, t']``: the summed ``eps`` a pre spike at ``t'`` contributes.

    Shape:
        - post: ``[T, B, N_out]`` binary.
        - Output: ``[B, N_out, T]``.
    """
    steps = post.shape[0]
    dtype = post.dtype if post.dtype.is_floating_point else torch.float32
    fired = post.permute(1, 2, 0) > 0  # [B, N, T]
    grid = torch.arange(steps, device=post.device, dtype=dtype).expand_as(fired)
    inf = torch.tensor(float("inf"), dtype=dtype, device=post.device)
    spike_time = torch.where(fired, grid, inf)
    # next firing at or after each step, and the last firing strictly before each step
    next_at = torch.flip(torch.cummin(torch.flip(spike_time, [-1]), dim=-1).values, [-1])
    last_upto = torch.cummax(torch.where(fired, grid, -inf), dim=-1).values
    last_before = torch.cat([torch.full_like(last_upto[..., :1], -float("inf")), last_upto[..., :-1]], dim=-1)
    reset_end_before = torch.where(torch.isfinite(last_before), last_before + t_ref, torch.ones_like(last_before))

    # per firing f at tau_f: D_f * exp(-hat_tau_{f-1} / tau_s), suffix-summed over the grid
    isi = grid - reset_end_before
    decayed = torch.where(fired, psp_kernel(isi, isi, tau_m, tau_s) * torch.exp(-reset_end_before / tau_s),
                          torch.zeros_like(grid))
    suffix = torch.flip(torch.cumsum(torch.flip(decayed, [-1]), dim=-1), [-1])
    suffix = torch.cat([suffix, torch.zeros_like(suffix[..., :1])], dim=-1)  # suffix[T] = 0

    shifted = grid + t_ref  # the pre time as the official code shifts it
    index = torch.clamp(shifted, max=steps - 1).long()
    beyond = shifted > steps - 1
    first = torch.where(beyond, inf, torch.gather(next_at, -1, index))
    first_reset_end = torch.gather(reset_end_before, -1, torch.clamp(torch.where(torch.isfinite(first), first, grid), max=steps - 1).long())
    window_end = grid + LOOKBACK_TAU_M * tau_m  # firings later than this no longer see the spike
    eligible = torch.isfinite(first) & (first <= window_end) & (grid >= 1)
    s_first = torch.where(eligible, first - first_reset_end, torch.ones_like(grid))
    u_first = torch.where(eligible, first - shifted, torch.ones_like(grid))
    term_first = torch.where(eligible, psp_kernel(s_first, u_first, tau_m, tau_s), torch.zeros_like(grid))

    later_from = torch.clamp(torch.where(eligible, first + 1, torch.full_like(grid, steps)), max=steps).long()
    later_to = torch.clamp(window_end + 1, max=steps).long()
    later_sum = torch.gather(suffix, -1, later_from) - torch.gather(suffix, -1, torch.maximum(later_to, later_from))
    term_later = torch.where(eligible, later_sum * torch.exp(shifted / tau_s), torch.zeros_like(grid))
    return term_first + term_later


def spsp(pre: torch.Tensor, post: torch.Tensor, *, tau_m: float = 64.0, tau_s: float = 8.0, t_ref: int = 2) -> torch.Tensor:
    """S-PSP ``e[b, i, j]`` of every (post ``i``, pre ``j``) pair, ALGORITHMS.md 1.3 exactly.

    Args:
        pre: binary pre-synaptic raster.
        post: binary post-synaptic raster.
        tau_m, tau_s, t_ref: the layer's constants (steps).

    Shape:
        - pre: ``[T, B, N_in]``; post: ``[T, B, N_out]``; output ``[B, N_out, N_in]``.
    """
    steps, batch, n_in = pre.shape
    kernel = post_kernel(post, tau_m=tau_m, tau_s=tau_s, t_ref=t_ref)  # [B, N_out, T]
    # e[b] = A[b] @ pre[b]: gather, per (b, j), the kernel columns at j's spike times
    table = kernel.permute(0, 2, 1).reshape(batch * steps, -1).contiguous()  # [(b, t), N_out]
    pre_bt = pre.permute(1, 2, 0)  # [B, N_in, T]
    rows = pre_bt.reshape(batch * n_in, steps)
    e_t = _blockwise_gather(rows, table, batch, steps)  # [(b, j), N_out]
    e = e_t.reshape(batch, n_in, -1).permute(0, 2, 1)
    pre_count = pre.sum(dim=0)  # [B, N_in]
    post_count = post.sum(dim=0)  # [B, N_out]
    probe = (post_count[:, :, None] == 0) & (pre_count[:, None, :] > 0)
    return torch.where(probe, torch.full_like(e, SILENT_POST_PROBE), e)


def _blockwise_gather(rows: torch.Tensor, table: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    """Row ``(b, j)`` of ``rows`` (a spike train over ``steps``) summed against sample ``b``'s table rows."""
    row_index, time_index = torch.nonzero(rows, as_tuple=True)
    sample = row_index // (rows.shape[0] // batch)
    counts = torch.bincount(row_index, minlength=rows.shape[0])
    offsets = torch.zeros_like(counts)
    offsets[1:] = counts.cumsum(0)[:-1]
    return torch.nn.functional.embedding_bag(sample * steps + time_index, table, offsets, mode="sum")
