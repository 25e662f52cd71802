"""S-PSP (ALGORITHMS.md 1.3) against a direct double sum over (post firing, pre spike) pairs (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from snnbp.hm2bp.lif import NeuronParams
from snnbp.hm2bp.spsp import post_kernel, spsp, spsp_batch_weighted, spsp_conv, spsp_pool

TAU_M, TAU_S, T_REF = 64.0, 8.0, 2


def reference_pair(pre_train, post_train, *, tau_m=TAU_M, tau_s=TAU_S, t_ref=T_REF, shift=None, lookback=4.0):
    """``e_{i|j}`` of one pair of spike trains ``[T]``, written straight from ALGORITHMS.md 1.3."""
    shift = t_ref if shift is None else shift
    taus = torch.nonzero(post_train).flatten().tolist()
    pres = torch.nonzero(pre_train).flatten().tolist()
    if not pres:
        return 0.0
    if not taus:
        return 0.1
    c = 1.0 - tau_s / tau_m
    total, reset_end = 0.0, 1
    for tau in taus:
        s = tau - reset_end
        lower = max(1, int(tau - lookback * tau_m))
        for tg in pres:
            if lower <= tg < tau and tg + shift <= tau:
                u = tau - (tg + shift)
                m = min(s, u)
                total += math.exp(-max(u - s, 0) / tau_s) * (math.exp(-m / tau_m) - math.exp(-m / tau_s)) / c
        reset_end = tau + t_ref
    return total


def reference_spsp(pre, post, **kw):
    """``e [N_out, N_in]`` of one sample (``pre [T, N_in]``, ``post [T, N_out]``) by the pair loop."""
    return torch.tensor(
        [[reference_pair(pre[:, j], post[:, i], **kw) for j in range(pre.shape[1])] for i in range(post.shape[1])],
        dtype=torch.float64,
    )


def random_raster(shape, p, seed):
    raster = (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < p).to(torch.float64)
    raster[0] = 0
    return raster


@pytest.mark.parametrize("steps, p_pre, seed", [(60, 0.1, 0), (400, 0.03, 1), (330, 0.2, 2)])
def test_spsp_matches_pair_reference(steps, p_pre, seed):
    pre = random_raster((steps, 2, 6), p_pre, seed)
    post = random_raster((steps, 2, 5), 0.08, seed + 10)
    post[:, :, 4] = 0  # a silent post neuron (probe value 0.1)
    pre[:, :, 5] = 0  # a silent pre neuron (0)
    e = spsp(pre, post)
    assert e.shape == (2, 5, 6) and e.dtype == torch.float64
    assert torch.all(e[:, 4, :5] == 0.1) and torch.all(e[:, :, 5] == 0)
    for b in range(2):
        torch.testing.assert_close(e[b], reference_spsp(pre[:, b], post[:, b]), rtol=1e-9, atol=1e-12)


def test_spsp_refractory_window_and_long_gaps():
    pre = torch.zeros(400, 1, 3, dtype=torch.float64)
    post = torch.zeros(400, 1, 2, dtype=torch.float64)
    pre[[5, 11, 12, 13, 200, 290], 0, 0] = 1  # inside refractory periods, older than 4 tau_m
    pre[[1, 2, 3], 0, 1] = 1
    pre[[399], 0, 2] = 1
    post[[12, 300, 305, 399], 0, 0] = 1
    post[[3, 4], 0, 1] = 1
    e = spsp(pre, post)[0]
    torch.testing.assert_close(e, reference_spsp(pre[:, 0], post[:, 0]), rtol=1e-9, atol=1e-12)
    assert e[0, 2] == 0  # a pre spike at the last step is seen by nobody


@pytest.mark.parametrize("t_ref, shift, lookback", [(0, None, 4.0), (3, 1, 1.5), (2, 0, 0.3)])
def test_spsp_options_match_reference(t_ref, shift, lookback):
    pre = random_raster((200, 1, 7), 0.1, 3)
    post = random_raster((200, 1, 4), 0.1, 4)
    kw = dict(t_ref=t_ref, shift=shift, lookback=lookback)
    e = spsp(pre, post, neuron=NeuronParams(TAU_M, TAU_S, t_ref), pre_shift=shift, lookback=lookback)
    torch.testing.assert_close(e[0], reference_spsp(pre[:, 0], post[:, 0], **kw), rtol=1e-9, atol=1e-12)


def test_stable_keyword_constants_match_reference_and_the_neuron_object():
    """The stable form ``spsp(pre, post, tau_m=, tau_s=, t_ref=)`` (design notes)."""
    pre = random_raster((200, 1, 6), 0.1, 7)
    post = random_raster((200, 1, 4), 0.1, 8)
    e = spsp(pre, post, tau_m=30.0, tau_s=5.0, t_ref=4)
    torch.testing.assert_close(e, spsp(pre, post, neuron=NeuronParams(30.0, 5.0, 4)), rtol=0, atol=0)
    expected = reference_spsp(pre[:, 0], post[:, 0], tau_m=30.0, tau_s=5.0, t_ref=4)
    torch.testing.assert_close(e[0], expected, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(e, spsp(pre, post)), "the constants must matter here"


def test_spsp_dense_and_sparse_contractions_agree():
    post = random_raster((150, 3, 5), 0.1, 5)
    for p in (0.02, 0.5):
        pre = random_raster((150, 3, 8), p, 6)
        e = spsp(pre, post)
        for b in range(3):
            torch.testing.assert_close(e[b], reference_spsp(pre[:, b], post[:, b]), rtol=1e-9, atol=1e-12)


def test_post_kernel_summed_over_pre_spikes_is_spsp():
    post = random_raster((100, 2, 3), 0.1, 7)
    kernel = post_kernel(post).permute(1, 2, 0)  # [B, N_out, T]
    assert kernel.shape == (2, 3, 100)
    single = torch.zeros(100, 2, 100, dtype=torch.float64)
    single[torch.arange(100), :, torch.arange(100)] = 1  # pre neuron j spikes only at step j
    e = spsp(single, post)
    fired = post.sum(0) > 0
    torch.testing.assert_close(torch.where(fired[:, :, None], e, kernel), kernel)


def test_batch_weighted_spsp_equals_weighted_sum_of_e():
    pre = random_raster((300, 4, 20), 0.04, 8)
    post = random_raster((300, 4, 6), 0.05, 9)
    post[:, 1, 2] = 0  # silent post neurons get the probe value
    scale = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = torch.einsum("bi,bij->ij", scale, spsp(pre, post))
    got = spsp_batch_weighted(pre, post_kernel(post), post.sum(0), scale)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
    dense_pre = random_raster((300, 4, 20), 0.4, 10)
    torch.testing.assert_close(
        spsp_batch_weighted(dense_pre, post_kernel(post), post.sum(0), scale),
        torch.einsum("bi,bij->ij", scale, spsp(dense_pre, post)),
        rtol=1e-9,
        atol=1e-12,
    )


def test_conv_spsp_matches_loop_over_receptive_fields():
    pre = random_raster((120, 2, 2, 5, 5), 0.1, 11)
    post = random_raster((120, 2, 3, 3, 3), 0.06, 12)
    post[:, 0, 1, 0, 0] = 0
    e = spsp_conv(pre, post, 3)
    assert e.shape == (2, 3, 9, 18)
    for b in range(2):
        for c in range(3):
            for y in range(3):
                for x in range(3):
                    for ci in range(2):
                        for ky in range(3):
                            for kx in range(3):
                                expected = reference_pair(pre[:, b, ci, y + ky, x + kx], post[:, b, c, y, x])
                                got = e[b, c, y * 3 + x, ci * 9 + ky * 3 + kx].item()
                                assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_pool_spsp_matches_loop_over_windows():
    pre = random_raster((150, 2, 2, 4, 4), 0.08, 13)
    post = random_raster((150, 2, 2, 2, 2), 0.06, 14)
    e = spsp_pool(pre, post, 2)
    assert e.shape == (2, 2, 4, 4)
    for b in range(2):
        for c in range(2):
            for y in range(2):
                for x in range(2):
                    for dy in range(2):
                        for dx in range(2):
                            expected = reference_pair(pre[:, b, c, 2 * y + dy, 2 * x + dx], post[:, b, c, y, x])
                            assert e[b, c, y * 2 + x, dy * 2 + dx].item() == pytest.approx(
                                expected, rel=1e-9, abs=1e-12
                            )


def test_spsp_float32_close_to_float64():
    pre = random_raster((400, 2, 30), 0.05, 3)
    post = random_raster((400, 2, 20), 0.05, 4)
    torch.testing.assert_close(spsp(pre.float(), post.float()).double(), spsp(pre, post), rtol=1e-4, atol=1e-5)


def test_post_kernel_long_simulation_stays_finite():
    post = random_raster((1200, 1, 3), 0.05, 15)
    pre = random_raster((1200, 1, 4), 0.05, 16)
    e = spsp(pre.float(), post.float())
    assert torch.isfinite(e).all()
    torch.testing.assert_close(e[0].double(), reference_spsp(pre[:, 0], post[:, 0]), rtol=1e-4, atol=1e-5)
