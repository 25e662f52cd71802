"""Compiled loops of the event-driven HM2-BP engine's backward pass and update (numba; see
:mod:`snnbp.hm2bp.event`): S-PSP kernel blocks, errors and gradients of the fc, conv and pooling
layers, the output layer's lateral factor and the regularised Adam step.

Spikes travel as in :mod:`snnbp.hm2bp.event_kernels` (flags and time-major event lists). Parallel
loops run over blocks of post neurons, looping over the samples, so every sum is taken in a fixed
order and the results do not depend on the thread count. No fast-math.

Equations: S-PSP ALGORITHMS.md 1.3; errors and gradients 1.5-1.7 and 1.9; Adam 1.7. Notation as in
:mod:`snnbp.hm2bp.backprop`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from snnbp.hm2bp.event_kernels import event_coordinates

# ------------------------------------------------------------------------------ S-PSP kernel


@njit(cache=True, error_model="numpy")
def post_kernel_block(
    flags, b, lo, width, table, s_low, window, t_ref, shift, decay, out, scratch, active
):  # pragma: no cover - compiled
    """Post-side S-PSP kernel ``A[t', k]`` of post neurons ``lo .. lo+width-1`` of sample ``b`` (1.3).

    ``A[t', i] = sum_f eps(s_f, tau_f - t' - shift)`` over the firings ``f`` of ``i`` with
    ``max(1, tau_f - window) <= t' <= tau_f - max(shift, 1)``, ``s_f = tau_f - hat_tau_{f-1}``
    (``hat_tau_0 = 1``, ``hat_tau_f = tau_f + t_ref``); ``table[(s - s_low) * (window + 1) + window - u]
    = eps(s, u)`` (each row reversed in ``u``, so that the loop over ``t'`` reads it forwards).
    So ``e_ij = sum_{t' in spikes of j} A[t', i]`` for a firing ``i``.

    Where ``u <= s_f`` (the pre spike arrived after the previous reset) ``eps`` is read from the
    table; where ``u > s_f`` it is ``eps(s_f, s_f + 1) decay^(u - s_f - 1)`` with ``decay =
    exp(-1 / tau_s)``, and those geometric tails of all firings are summed in one backward sweep
    over ``t'`` (a tail enters at its latest ``t'`` and leaves below ``tau_f - window``). The cost
    is ``O(T)`` per firing neuron instead of ``O(o_i window)``.

    Only the firing neurons get a column: ``out[t', a] = A[t', active[a]]`` for ``a < firing``
    (``out``: ``[T, >= width]``, ``active``: int64 ``[>= width]``, both overwritten); ``scratch``
    (float64 ``[>= 3 width, T]``: sums, tail entries, tail exits) is work space. Returns
    ``firing``, the number of firing neurons.
    """
    steps = flags.shape[1]
    seen_from = max(shift, 1)
    reset_end = np.ones(width, np.int64)
    fired_any = np.zeros(width, np.bool_)
    for t in range(steps):
        row_flags = flags[b, t, lo : lo + width]
        for k in range(width):
            if row_flags[k]:
                if not fired_any[k]:
                    fired_any[k] = True
                    scratch[k, :steps] = 0.0
                    scratch[width + k, :steps] = 0.0
                    scratch[2 * width + k, :steps] = 0.0
                row = (t - reset_end[k] - s_low) * (window + 1) + window - t + shift
                first = max(1, t - window)
                last = t - seen_from
                near_from = max(first, reset_end[k] - shift)
                for earlier in range(near_from, last + 1):
                    scratch[k, earlier] += table[row + earlier]
                tail_last = min(last, near_from - 1)
                if tail_last >= first:  # geometric tail on first .. tail_last, entered at tail_last
                    entry = table[row + tail_last]
                    scratch[width + k, tail_last] += entry
                    if first > 1:
                        scratch[2 * width + k, first - 1] += entry * decay ** (tail_last - first + 1)
                reset_end[k] = t + t_ref
    firing = 0
    for k in range(width):
        if fired_any[k]:
            tail = 0.0
            for earlier in range(steps - 1, 0, -1):
                tail = tail * decay - scratch[2 * width + k, earlier] + scratch[width + k, earlier]
                scratch[k, earlier] += tail
            active[firing] = k
            firing += 1
    for t in range(steps):
        for a in range(firing):
            out[t, a] = scratch[active[a], t]
    return firing


# ----------------------------------------------------------------------------- backward pass


@njit(parallel=True, cache=True, error_model="numpy")
def fc_backward(
    pre_ptr,
    pre_idx,
    pre_counts,
    post_flags,
    post_counts,
    weight_t,
    delta,
    lam,
    vth,
    probe,
    silent_ratio,
    use_side_effect,
    use_effect_ratio,
    need_pre_delta,
    table,
    s_low,
    window,
    t_ref,
    shift,
    decay,
    block,
    grad_t,
    pre_delta_parts,
):  # pragma: no cover - compiled
    """Weight gradient (summed over the batch) and pre-delta of a fully connected layer (1.3, 1.6, 1.7).

    Per sample and post neuron ``i``: ``e_ij = sum_{t' in spikes of j} A[t', i]`` (probe where
    ``i`` is silent and ``j`` fired), ``sigma_i = sum_j w_ij e_ij / (o_i vth)`` (silent:
    ``silent_ratio sum_j w_ij / vth``), ``grad_ji += delta_i (1 + sigma_i) lambda_i e_ij``, and
    ``pre_delta_parts[block, b, j] += delta_i w_ij rho_ij`` with ``rho_ij = e_ij / o_j`` where both
    fired, else 1. Only firing post neurons need the contraction; silent ones are closed-form.
    Tasks: blocks of ``block`` post neurons, each looping over the samples.

    Shape:
        - pre_counts: ``[B, N_in]``; post_flags: ``uint8 [B, T, N_out]``; post_counts, delta,
          lam: ``[B, N_out]``; weight_t, grad_t: ``[N_in, N_out]`` (grad_t accumulated into);
          pre_delta_parts: ``[blocks, B, N_in]`` (zeroed by the caller).
    """
    batch, steps, n_out = post_flags.shape
    n_in = weight_t.shape[0]
    blocks = (n_out + block - 1) // block
    dtype = weight_t.dtype
    for task in prange(blocks):
        lo = task * block
        width = min(block, n_out - lo)
        kernel = np.zeros((steps, width), dtype)
        scratch = np.zeros((3 * width, steps), np.float64)
        active = np.zeros(width, np.int64)
        e = np.zeros((n_in, width), dtype)
        scale = np.zeros(width, dtype)
        weighted = np.zeros(width, dtype)
        fan_in_sum = np.zeros(width, dtype)
        for j in range(n_in):
            for k in range(width):
                fan_in_sum[k] += weight_t[j, lo + k]
        for b in range(batch):
            firing = post_kernel_block(
                post_flags, b, lo, width, table, s_low, window, t_ref, shift, decay, kernel, scratch, active
            )
            e[:, :firing] = 0.0
            for t in range(steps):
                row = kernel[t]
                for ev in range(pre_ptr[b * steps + t], pre_ptr[b * steps + t + 1]):
                    target = e[pre_idx[ev]]
                    for a in range(firing):
                        target[a] += row[a]
            for k in range(width):  # silent post neurons: sigma from the fan-in sum (e = probe does not enter)
                sigma = silent_ratio * fan_in_sum[k] / vth if use_side_effect else dtype.type(0.0)
                scale[k] = delta[b, lo + k] * (1.0 + sigma) * lam[b, lo + k]
            for a in range(firing):
                weighted[a] = 0.0
            if use_side_effect:
                for j in range(n_in):
                    for a in range(firing):
                        weighted[a] += e[j, a] * weight_t[j, lo + active[a]]
            for a in range(firing):
                i = lo + active[a]
                sigma = weighted[a] / dtype.type(post_counts[b, i]) / vth if use_side_effect else dtype.type(0.0)
                scale[active[a]] = delta[b, i] * (1.0 + sigma) * lam[b, i]
            silent_scale = np.zeros(width, dtype)  # scale of silent neurons only (their e is probe or 0)
            for k in range(width):
                silent_scale[k] = scale[k]
            for a in range(firing):
                silent_scale[active[a]] = 0.0
            for j in range(n_in):
                target = grad_t[j, lo : lo + width]
                if pre_counts[b, j] > 0:
                    for k in range(width):
                        target[k] += silent_scale[k] * probe
                for a in range(firing):
                    target[active[a]] += scale[active[a]] * e[j, a]
            if need_pre_delta:
                for j in range(n_in):
                    count = pre_counts[b, j]
                    fan_out = weight_t[j, lo : lo + width]
                    total = dtype.type(0.0)
                    for k in range(width):
                        total += delta[b, lo + k] * fan_out[k]
                    if use_effect_ratio and count > 0:  # rho = e / o_j instead of 1 where both fired
                        for a in range(firing):
                            k = active[a]
                            total += delta[b, lo + k] * fan_out[k] * (e[j, a] / dtype.type(count) - 1.0)
                    pre_delta_parts[task, b, j] += total
    return grad_t


@njit(cache=True, error_model="numpy")
def _slots(active, firing, width, slot):  # pragma: no cover - compiled
    """``slot[k]`` = column of neuron ``k`` in the compact kernel, or -1 for a silent neuron."""
    for k in range(width):
        slot[k] = -1
    for a in range(firing):
        slot[active[a]] = a


@njit(parallel=True, cache=True, error_model="numpy")
def conv_backward(
    pre_ptr,
    pre_idx,
    pre_counts,
    post_flags,
    post_counts,
    kernel_weights,
    in_height,
    in_width,
    delta,
    vth,
    probe,
    silent_ratio,
    use_side_effect,
    use_effect_ratio,
    need_pre_delta,
    table,
    s_low,
    window,
    t_ref,
    shift,
    decay,
    grad,
    pre_delta_parts,
):  # pragma: no cover - compiled
    """Kernel gradient (summed over the batch) and pre-delta of a spiking convolution (1.9).

    ``e[l, K]``: S-PSP of output position ``l`` of map ``o`` and its receptive-field tap
    ``K = (c, ky, kx)``; ``sigma_l`` over the taps; ``grad[o, K] += sum_l delta_l (1 + sigma_l)
    e[l, K]``; ``pre_delta_parts[o, b, n] += delta_l w_K rho_{l,K}`` for the input neuron ``n``
    under tap ``K`` of ``l``. Tasks: one output map, looping over the samples.

    Shape:
        - kernel_weights: ``[C_out, C_in, k, k]``; grad: ``[C_out, C_in * k * k]``;
          pre_counts: ``[B, C_in * H * W]``; post_counts, delta: ``[B, C_out * H' * W']``;
          pre_delta_parts: ``[C_out, B, C_in * H * W]``.
    """
    batch, steps, _ = post_flags.shape
    maps, in_maps, size, _ = kernel_weights.shape
    out_height, out_width = in_height - size + 1, in_width - size + 1
    area, in_area, taps = out_height * out_width, in_height * in_width, in_maps * size * size
    dtype = kernel_weights.dtype
    channel, rows, columns = event_coordinates(pre_idx, in_area, in_width)
    offsets = np.zeros(taps, np.int64)  # input neuron under tap K of output position (0, 0)
    for c in range(in_maps):
        for ky in range(size):
            for kx in range(size):
                offsets[(c * size + ky) * size + kx] = c * in_area + ky * in_width + kx
    for o in prange(maps):
        kernel = np.zeros((steps, area), dtype)
        scratch = np.zeros((3 * area, steps), np.float64)
        active = np.zeros(area, np.int64)
        slot = np.zeros(area, np.int64)
        e = np.zeros((area, taps), dtype)  # rows: the firing positions, in the order of ``active``
        weights = kernel_weights[o].reshape(taps)
        weight_sum = dtype.type(0.0)
        for kk in range(taps):
            weight_sum += weights[kk]
        for b in range(batch):
            firing = post_kernel_block(
                post_flags, b, o * area, area, table, s_low, window, t_ref, shift, decay, kernel, scratch, active
            )
            _slots(active, firing, area, slot)
            e[:firing, :] = 0.0
            if firing > 0:
                for t in range(steps):
                    for ev in range(pre_ptr[b * steps + t], pre_ptr[b * steps + t + 1]):
                        c, y, x = channel[ev], rows[ev], columns[ev]
                        for ky in range(max(0, y - out_height + 1), min(size, y + 1)):
                            for kx in range(max(0, x - out_width + 1), min(size, x + 1)):
                                a = slot[(y - ky) * out_width + x - kx]
                                if a >= 0:
                                    e[a, (c * size + ky) * size + kx] += kernel[t, a]
            for l in range(area):
                post = o * area + l
                error = delta[b, post]
                if error == 0.0:
                    continue  # no gradient and no pre-delta from this position
                base = (l // out_width) * in_width + l % out_width
                a = slot[l]
                if a < 0:  # silent: e = probe where the tap's input fired, rho = 1
                    sigma = silent_ratio * weight_sum / vth if use_side_effect else dtype.type(0.0)
                    scale = error * (1.0 + sigma)
                    for kk in range(taps):
                        n = base + offsets[kk]
                        if pre_counts[b, n] > 0:
                            grad[o, kk] += scale * probe
                        if need_pre_delta:
                            pre_delta_parts[o, b, n] += error * weights[kk]
                    continue
                sigma = dtype.type(0.0)
                if use_side_effect:
                    acc = dtype.type(0.0)
                    for kk in range(taps):
                        acc += e[a, kk] * weights[kk]
                    sigma = acc / dtype.type(post_counts[b, post]) / vth
                scale = error * (1.0 + sigma)
                for kk in range(taps):
                    grad[o, kk] += scale * e[a, kk]
                if need_pre_delta:
                    for kk in range(taps):
                        n = base + offsets[kk]
                        rho = dtype.type(1.0)
                        if use_effect_ratio and pre_counts[b, n] > 0:
                            rho = e[a, kk] / dtype.type(pre_counts[b, n])
                        pre_delta_parts[o, b, n] += error * weights[kk] * rho
    return grad


@njit(parallel=True, cache=True, error_model="numpy")
def pool_backward(
    pre_ptr,
    pre_idx,
    pre_counts,
    post_flags,
    post_counts,
    channels,
    in_height,
    in_width,
    pool,
    delta,
    probe,
    use_effect_ratio,
    divide_by_area,
    table,
    s_low,
    window,
    t_ref,
    shift,
    decay,
    pre_delta,
):  # pragma: no cover - compiled
    """Error routed through a spiking pooling layer: ``(delta_o / p^2) rho_{o,in}`` (1.9).

    ``rho = e_{o|in} / o_in`` where both fired, else 1; ``e`` from the pooled neuron's post kernel
    over the window member's spikes. Tasks: one channel, looping over the samples.

    Shape:
        - pre_counts, pre_delta: ``[B, C * H * W]``; post_counts, delta: ``[B, C * H/p * W/p]``.
    """
    batch, steps, _ = post_flags.shape
    out_width = in_width // pool
    area, in_area, members = (in_height // pool) * out_width, in_height * in_width, pool * pool
    dtype = pre_delta.dtype
    divisor = dtype.type(members if divide_by_area else 1.0)
    channel, rows, columns = event_coordinates(pre_idx, in_area, in_width)
    for c in prange(channels):
        kernel = np.zeros((steps, area), dtype)
        scratch = np.zeros((3 * area, steps), np.float64)
        active = np.zeros(area, np.int64)
        slot = np.zeros(area, np.int64)
        e = np.zeros((area, members), dtype)
        for b in range(batch):
            e[:, :] = 0.0
            if use_effect_ratio:
                firing = post_kernel_block(
                    post_flags, b, c * area, area, table, s_low, window, t_ref, shift, decay, kernel, scratch, active
                )
                _slots(active, firing, area, slot)
                if firing > 0:
                    for t in range(steps):
                        for ev in range(pre_ptr[b * steps + t], pre_ptr[b * steps + t + 1]):
                            if channel[ev] == c:
                                y, x = rows[ev], columns[ev]
                                l = (y // pool) * out_width + x // pool
                                if slot[l] >= 0:
                                    e[l, (y % pool) * pool + x % pool] += kernel[t, slot[l]]
            for rest in range(in_area):
                y, x = rest // in_width, rest % in_width
                l = (y // pool) * out_width + x // pool
                n = c * in_area + rest
                rho = dtype.type(1.0)
                if use_effect_ratio and post_counts[b, c * area + l] > 0 and pre_counts[b, n] > 0:
                    rho = e[l, (y % pool) * pool + x % pool] / dtype.type(pre_counts[b, n])
                pre_delta[b, n] = delta[b, c * area + l] * rho / divisor
    return pre_delta


@njit(cache=True, error_model="numpy")
def lateral_factor(flags, counts, labels, vth, strength, table, s_low, window, t_ref, shift, decay):  # pragma: no cover
    """Output-layer lateral-inhibition loop factor ``lambda_j`` of every sample (ALGORITHMS.md 1.7).

    ``lambda_j = 1 / (1 - w0^2 sum_{l != j} rho_jl d_l rho_lj d_j)``, ``d_x = 1 / vth`` when ``x``
    fired or is the target, ``rho_jl = e_{l|j} / o_j`` where both fired (else 1), ``e_{l|j}``
    the S-PSP of output ``l`` from output ``j``'s own spikes (the raster before injection).

    Shape:
        - flags: ``uint8 [B, T, C]``; counts: ``[B, C]``; labels: ``[B]``; output ``[B, C]`` float64.
    """
    batch, steps, classes = flags.shape
    result = np.ones((batch, classes), np.float64)
    kernel = np.zeros((steps, classes), np.float64)
    scratch = np.zeros((3 * classes, steps), np.float64)
    active = np.zeros(classes, np.int64)
    for b in range(batch):
        firing = post_kernel_block(
            flags, b, 0, classes, table, s_low, window, t_ref, shift, decay, kernel, scratch, active
        )
        e = np.zeros((classes, classes), np.float64)  # e[l, j] = e_{l|j}
        for t in range(steps):
            for j in range(classes):
                if flags[b, t, j]:
                    for a in range(firing):
                        e[active[a], j] += kernel[t, a]
        d = np.zeros(classes, np.float64)
        for x in range(classes):
            if counts[b, x] > 0 or x == labels[b]:
                d[x] = 1.0 / vth
        for j in range(classes):
            loop = 0.0
            for l in range(classes):
                if l == j:
                    continue
                both = counts[b, j] > 0 and counts[b, l] > 0
                rho_jl = e[l, j] / counts[b, j] if both else 1.0
                rho_lj = e[j, l] / counts[b, l] if both else 1.0
                loop += rho_jl * d[l] * rho_lj * d[j]
            result[b, j] = 1.0 / (1.0 - strength * strength * loop)
    return result


# ----------------------------------------------------------------------------------- update


@njit(parallel=True, cache=True, error_model="numpy")
def regularised_adam(
    weight, grad_sum, m, v, inv_batch, post_axis, lambda_reg, beta_reg, limit, lr, beta1, beta2, eps, bias1, bias2
):  # pragma: no cover - compiled
    """In place: ``g = grad_sum / B + R(w)``, then one Adam step on ``weight`` (ALGORITHMS.md 1.7).

    ``R(w_ij) = lambda_reg beta_reg (w_ij / L) exp(beta_reg (S_i - 1))`` with ``S_i`` the mean of
    ``(w / L)^2`` over post neuron ``i``'s fan-in; post neurons run along ``post_axis`` of the 2-D
    arrays (fully connected ``[N_in, N_out]``: axis 1; convolution ``[C_out, C_in k k]``: axis 0).
    Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g g``,
    ``w <- w - lr (m / bias1) / (sqrt(v / bias2) + eps)``.
    """
    rows, columns = weight.shape
    dtype = weight.dtype
    posts = columns if post_axis == 1 else rows
    fan_in = rows if post_axis == 1 else columns
    squares = np.zeros(posts, np.float64)
    if lambda_reg != 0.0:
        for r in range(rows):
            for c in range(columns):
                scaled = weight[r, c] / limit
                squares[c if post_axis == 1 else r] += scaled * scaled
    factor = np.zeros(posts, dtype)
    for i in range(posts):
        if lambda_reg != 0.0:
            factor[i] = lambda_reg * beta_reg * np.exp(beta_reg * (dtype.type(squares[i] / fan_in) - 1.0)) / limit
    one_minus_beta1, one_minus_beta2 = dtype.type(1.0) - beta1, dtype.type(1.0) - beta2
    for r in prange(rows):
        for c in range(columns):
            post_factor = factor[c] if post_axis == 1 else factor[r]
            g = grad_sum[r, c] * inv_batch + weight[r, c] * post_factor
            first = beta1 * m[r, c] + one_minus_beta1 * g
            second = beta2 * v[r, c] + one_minus_beta2 * g * g
            m[r, c] = first
            v[r, c] = second
            weight[r, c] = weight[r, c] - lr * (first / bias1) / (np.sqrt(second / bias2) + eps)
