"""Compiled loops of the event-driven HM2-BP engine's forward pass (numba; see
:mod:`snnbp.hm2bp.event`): event lists and the LIF layers. The backward pass and the update are in
:mod:`snnbp.hm2bp.event_backward_kernels`.

Every function here is a plain loop over events or neurons, compiled once per dtype
(``float32``/``float64``) and cached on disk. Spikes of one layer and batch travel as

- ``flags``: ``uint8 [B, T, N]``, 1 where neuron ``n`` of sample ``b`` fired at step ``t``;
- time-major event lists: ``ptr int64 [B * T + 1]`` and ``idx int32 [nnz]``; the neurons that
  fired at step ``t`` of sample ``b`` are ``idx[ptr[b * T + t] : ptr[b * T + t + 1]]``, ascending.

Parallel loops run over independent tasks (a sample and a block of neurons in the forward pass;
a block of post neurons, looping over the samples, in the backward pass), so every sum is taken
in a fixed order and the results do not depend on the thread count. Arithmetic is done in the
dtype of the weights with the constants cast to it, in the order of the torch reference path
(:mod:`snnbp.hm2bp.lif`), so that both engines fire the same spikes. No fast-math.

Equations: LIF ALGORITHMS.md 1.2 and 1.9; S-PSP 1.3; errors and gradients 1.5-1.7 and 1.9;
Adam 1.7. Notation as in :mod:`snnbp.hm2bp.backprop`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ----------------------------------------------------------------------------------- events


@njit(parallel=True, cache=True, error_model="numpy")
def flags_to_events(flags, words):  # pragma: no cover - compiled
    """Time-major event lists and firing counts of a ``uint8 [B, T, N]`` flag array.

    ``words`` is the same memory read eight flags at a time (``uint64 [B, T, N // 8]``), so that
    silent stretches are skipped a word at a time. Returns ``(ptr [B*T+1], idx [nnz], counts [B, N])``.
    """
    batch, steps, neurons = flags.shape
    packed = words.shape[2] * 8
    counts = np.zeros(batch * steps + 1, np.int64)
    for b in prange(batch):
        for t in range(steps):
            total = 0
            for w in range(words.shape[2]):
                if words[b, t, w] != 0:
                    for n in range(w * 8, w * 8 + 8):
                        total += flags[b, t, n]
            for n in range(packed, neurons):
                total += flags[b, t, n]
            counts[b * steps + t + 1] = total
    ptr = np.cumsum(counts)
    idx = np.empty(ptr[-1], np.int32)
    fired = np.zeros((batch, neurons), np.int64)
    for b in prange(batch):
        for t in range(steps):
            position = ptr[b * steps + t]
            for w in range(words.shape[2]):
                if words[b, t, w] != 0:
                    for n in range(w * 8, w * 8 + 8):
                        if flags[b, t, n]:
                            idx[position] = n
                            position += 1
                            fired[b, n] += 1
            for n in range(packed, neurons):
                if flags[b, t, n]:
                    idx[position] = n
                    position += 1
                    fired[b, n] += 1
    return ptr, idx, fired


# ------------------------------------------------------------------------------ forward pass


@njit(cache=True, error_model="numpy")
def event_coordinates(idx, in_area, in_width):  # pragma: no cover - compiled
    """Channel, row and column of every event's neuron ``n = (c * H + y) * W + x`` (computed once per layer)."""
    channel = np.empty(idx.shape[0], np.int32)
    row = np.empty(idx.shape[0], np.int32)
    column = np.empty(idx.shape[0], np.int32)
    for e in range(idx.shape[0]):
        n = idx[e]
        channel[e] = n // in_area
        rest = n % in_area
        row[e] = rest // in_width
        column[e] = rest % in_width
    return channel, row, column


@njit(cache=True, inline="always", error_model="numpy")
def _decay(v, ep, current, width, tau_m, tau_s):  # pragma: no cover - compiled
    """Leak and synaptic decay of neurons ``0 .. width-1``, and a zero input current (ALGORITHMS.md 1.2)."""
    zero = current.dtype.type(0.0)
    for k in range(width):
        v[k] = v[k] - v[k] / tau_m
        ep[k] = ep[k] - ep[k] / tau_s
        current[k] = zero


@njit(cache=True, inline="always", error_model="numpy")
def _integrate_and_fire(v, ep, current, refractory, fired, width, threshold, tau_s, t_ref):  # pragma: no cover
    """``ep += I``, ``v += ep / tau_s``, refractory clamp, threshold test and reset of neurons ``0 .. width-1``.

    ``fired[k]`` is set to 1 where neuron ``k`` fires (ALGORITHMS.md 1.2); branch-free so that it vectorises.
    """
    zero = v.dtype.type(0.0)
    for k in range(width):
        ep[k] = ep[k] + current[k]
        v[k] = v[k] + ep[k] / tau_s
    for k in range(width):
        clamped = refractory[k] > 0
        potential = zero if clamped else v[k]
        count = refractory[k] - 1 if clamped else refractory[k]
        spike = potential > threshold
        v[k] = zero if spike else potential
        refractory[k] = t_ref if spike else count
        fired[k] = 1 if spike else 0


@njit(parallel=True, cache=True, error_model="numpy")
def fc_forward(
    ptr, idx, weight_t, batch, steps, threshold, tau_m, tau_s, t_ref, lateral, block, flags
):  # pragma: no cover - compiled
    """LIF layer driven by ``I_i(t) = sum_j w_ij s_j(t-1)`` (+ lateral inhibition), written into ``flags``.

    ``weight_t`` is ``[N_in, N_out]`` (row ``j``: the fan-out of pre neuron ``j``). Tasks: one
    sample and ``block`` post neurons (the whole layer when ``lateral != 0``, whose neurons are
    coupled through ``lateral * sum_{l != i} s_l(t-1)``).
    """
    n_out = weight_t.shape[1]
    blocks = (n_out + block - 1) // block
    dtype = weight_t.dtype
    for task in prange(batch * blocks):
        b = task // blocks
        lo = (task % blocks) * block
        width = min(block, n_out - lo)
        v = np.zeros(width, dtype)
        ep = np.zeros(width, dtype)
        current = np.zeros(width, dtype)
        refractory = np.zeros(width, np.int32)
        fired = np.zeros(width, np.uint8)
        for t in range(1, steps):
            _decay(v, ep, current, width, tau_m, tau_s)
            for e in range(ptr[b * steps + t - 1], ptr[b * steps + t]):
                row = weight_t[idx[e], lo : lo + width]
                for k in range(width):
                    current[k] += row[k]
            if lateral != 0.0:
                fired_before = 0
                for k in range(width):
                    fired_before += fired[k]
                for k in range(width):
                    current[k] = current[k] + lateral * (dtype.type(fired_before) - dtype.type(fired[k]))
            _integrate_and_fire(v, ep, current, refractory, fired, width, threshold, tau_s, t_ref)
            flags[b, t, lo : lo + width] = fired
    return flags


@njit(parallel=True, cache=True, error_model="numpy")
def conv_forward(
    ptr, idx, kernel, in_height, in_width, batch, steps, threshold, tau_m, tau_s, t_ref, group, flags
):  # pragma: no cover - compiled
    """Spiking valid stride-1 convolution: each pre spike at ``t-1`` adds its kernel taps to ``I(t)`` (1.9).

    ``kernel`` is ``[C_out, C_in, k, k]``; pre neuron ``n = (c * H + y) * W + x``, post neuron
    ``(o * H' + y') * W' + x'``. Tasks: one sample and ``group`` output maps, whose currents are
    held position-major (``[H' W', group]``) so that one tap of one pre spike updates all the
    group's maps in one contiguous run. Each neuron still sums its inputs in event order.
    """
    maps, in_maps, size, _ = kernel.shape
    out_height, out_width = in_height - size + 1, in_width - size + 1
    area, in_area = out_height * out_width, in_height * in_width
    dtype = kernel.dtype
    channel, rows, columns = event_coordinates(idx, in_area, in_width)
    taps = np.empty((in_maps, size, size, maps), dtype)  # the kernel with the output maps innermost
    for o in range(maps):
        for c in range(in_maps):
            for ky in range(size):
                for kx in range(size):
                    taps[c, ky, kx, o] = kernel[o, c, ky, kx]
    groups = (maps + group - 1) // group
    for task in prange(batch * groups):
        b, first = task // groups, (task % groups) * group
        width = min(group, maps - first)
        neurons = area * width
        v = np.zeros(neurons, dtype)
        ep = np.zeros(neurons, dtype)
        current = np.zeros(neurons, dtype)
        refractory = np.zeros(neurons, np.int32)
        fired = np.zeros(neurons, np.uint8)
        for t in range(1, steps):
            _decay(v, ep, current, neurons, tau_m, tau_s)
            for e in range(ptr[b * steps + t - 1], ptr[b * steps + t]):
                c, y, x = channel[e], rows[e], columns[e]
                for ky in range(max(0, y - out_height + 1), min(size, y + 1)):
                    row = (y - ky) * out_width
                    for kx in range(max(0, x - out_width + 1), min(size, x + 1)):
                        start = (row + x - kx) * width
                        weights = taps[c, ky, kx, first : first + width]
                        for m in range(width):
                            current[start + m] += weights[m]
            _integrate_and_fire(v, ep, current, refractory, fired, neurons, threshold, tau_s, t_ref)
            for m in range(width):
                base = (first + m) * area
                for l in range(area):
                    flags[b, t, base + l] = fired[l * width + m]
    return flags


@njit(parallel=True, cache=True, error_model="numpy")
def pool_forward(
    ptr, idx, channels, in_height, in_width, pool, batch, steps, threshold, tau_m, tau_s, t_ref, dtype_probe, flags
):  # pragma: no cover - compiled
    """Spiking ``pool x pool`` pooling with unit weights: ``I(t)`` = spikes in the window at ``t-1`` (1.9).

    ``dtype_probe`` is a zero-size array of the compute dtype. Tasks: one sample and one channel.
    """
    out_width = in_width // pool
    area, in_area = (in_height // pool) * out_width, in_height * in_width
    dtype = dtype_probe.dtype
    channel, rows, columns = event_coordinates(idx, in_area, in_width)
    for task in prange(batch * channels):
        b, c = task // channels, task % channels
        v = np.zeros(area, dtype)
        ep = np.zeros(area, dtype)
        current = np.zeros(area, dtype)
        refractory = np.zeros(area, np.int32)
        fired = np.zeros(area, np.uint8)
        for t in range(1, steps):
            _decay(v, ep, current, area, tau_m, tau_s)
            for e in range(ptr[b * steps + t - 1], ptr[b * steps + t]):
                if channel[e] == c:
                    current[rows[e] // pool * out_width + columns[e] // pool] += 1.0
            _integrate_and_fire(v, ep, current, refractory, fired, area, threshold, tau_s, t_ref)
            flags[b, t, c * area : (c + 1) * area] = fired
    return flags
