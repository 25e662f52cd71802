"""Slow, obvious references for the exact spike-time neurons (used by the other STDBP tests).

Each reference handles one neuron with plain Python floats: walk the sorted inputs segment by
segment (ReL-PSP: the potential is linear between inputs) or bracket and bisect the potential
computed straight from its definition (alpha-PSP). They share no code with ``snnbp.stdbp``.
"""

from __future__ import annotations

import math

import pytest


def relpsp_reference(times: list[float], weights: list[float], theta: float) -> float:
    """First time ``V(t) = sum_i w_i max(0, t - t_i)`` reaches ``theta``; ``inf`` if never.

    A crossing exactly at the next input time belongs to the segment that reaches it (the
    potential touches ``theta`` there even if the next slope is not positive).
    """
    events = sorted((t, w) for t, w in zip(times, weights) if math.isfinite(t))
    slope = 0.0
    potential = 0.0
    for index, (t, w) in enumerate(events):
        slope += w
        t_next = events[index + 1][0] if index + 1 < len(events) else math.inf
        if t_next == t:
            continue
        # potential at t is `potential`; it changes linearly with `slope` until t_next
        if slope > 0:
            crossing = t + (theta - potential) / slope
            if crossing <= t_next:
                return crossing
        if math.isfinite(t_next):
            potential += slope * (t_next - t)
    return math.inf


def relpsp_reference_gradients(
    times: list[float], weights: list[float], theta: float
) -> tuple[list[float], list[float]]:
    """``(dt/dw_i, dt/dt_i)`` of ALGORITHMS.md 2.3 for one neuron (zeros if it never fires)."""
    t_out = relpsp_reference(times, weights, theta)
    if not math.isfinite(t_out):
        return [0.0] * len(times), [0.0] * len(times)
    causal = [math.isfinite(t) and t < t_out for t in times]
    total = sum(w for w, c in zip(weights, causal) if c)
    d_w = [(t - t_out) / total if c else 0.0 for t, c in zip(times, causal)]
    d_t = [w / total if c else 0.0 for w, c in zip(weights, causal)]
    return d_w, d_t


def alpha_potential(t: float, times: list[float], weights: list[float], tau: float) -> float:
    """``V(t) = sum_i w_i K(t - t_i)``, ``K(x) = (x / tau) exp(1 - x / tau)`` for ``x > 0``."""
    total = 0.0
    for t_i, w in zip(times, weights):
        x = t - t_i
        if x > 0:
            total += w * x / tau * math.exp(1.0 - x / tau)
    return total


def alpha_reference(times: list[float], weights: list[float], theta: float, tau: float, points: int = 4000) -> float:
    """First crossing of the alpha-PSP potential: dense scan of each segment, then bisection."""
    finite = sorted(t for t in times if math.isfinite(t))
    if not finite:
        return math.inf
    edges = finite + [finite[-1] + 60.0 * tau]  # the potential decays to ~0 within 60 tau
    for lo_edge, hi_edge in zip(edges[:-1], edges[1:]):
        previous = lo_edge
        for step in range(1, points + 1):
            t = lo_edge + (hi_edge - lo_edge) * step / points
            if alpha_potential(t, times, weights, tau) >= theta:
                lo, hi = previous, t
                for _ in range(200):
                    mid = 0.5 * (lo + hi)
                    if alpha_potential(mid, times, weights, tau) >= theta:
                        hi = mid
                    else:
                        lo = mid
                return hi
            previous = t
    return math.inf


def test_relpsp_reference_hand_example():
    # w = (1, 1) at t = (0, 1), theta = 1.5: V = t on [0, 1) (reaches 1 at t = 1), then 2t - 1 -> 1.25
    assert relpsp_reference([0.0, 1.0], [1.0, 1.0], 1.5) == pytest.approx(1.25)
    # a single input fires at t_i + theta / w
    assert relpsp_reference([2.0], [0.5], 1.0) == pytest.approx(4.0)
    # negative total weight never fires
    assert relpsp_reference([0.0, 0.1], [1.0, -2.0], 1.0) == math.inf
    # touches theta exactly at the next input, whose weight makes the slope 0 afterwards
    assert relpsp_reference([0.0, 0.5], [2.0, -2.0], 1.0) == pytest.approx(0.5)
    # up then down: fires in the first segment although the total weight is negative
    assert relpsp_reference([0.0, 3.0], [1.0, -5.0], 2.0) == pytest.approx(2.0)


def test_relpsp_reference_gradients_hand_example():
    d_w, d_t = relpsp_reference_gradients([0.0, 1.0, 9.0], [1.0, 1.0, 1.0], 1.5)
    assert d_w == pytest.approx([(0.0 - 1.25) / 2, (1.0 - 1.25) / 2, 0.0])
    assert d_t == pytest.approx([0.5, 0.5, 0.0])


def test_alpha_reference_single_input():
    # one input of weight 1 at t = 1: V = (x / tau) e^{1 - x / tau} peaks at 1 when x = tau
    tau = 2.0
    t = alpha_reference([1.0], [1.0], 0.9, tau)
    assert alpha_potential(t, [1.0], [1.0], tau) == pytest.approx(0.9, abs=1e-12)
    assert 1.0 < t < 1.0 + tau  # on the rising flank
    assert alpha_reference([1.0], [0.5], 1.0, tau) == math.inf
