"""Statistics of the problem analysis (ALGORITHMS.md 2.9)."""

from __future__ import annotations

import math

import pytest
import torch

from snnbp.analysis import (
    LOG_BIN_EDGES,
    MagnitudeStats,
    dead_fraction,
    fire_counts,
    hidden_output_times,
    log_histogram,
    timing_correlation,
)


def test_log_bins_are_fixed_and_log_spaced():
    assert LOG_BIN_EDGES[0] == pytest.approx(1e-8) and LOG_BIN_EDGES[-1] == pytest.approx(1e4)
    ratios = [b / a for a, b in zip(LOG_BIN_EDGES[:-1], LOG_BIN_EDGES[1:])]
    assert ratios == pytest.approx([10**0.25] * len(ratios))


def test_log_histogram_places_values():
    values = torch.tensor([0.0, math.inf, math.nan, -1.0, 1.0, 1.5, 1e-12, 1e9, -2e-3])
    counts = log_histogram(values)
    assert counts.shape == (len(LOG_BIN_EDGES) - 1,)
    assert int(counts.sum()) == 6  # zero, inf and nan are not counted
    one = next(i for i, edge in enumerate(LOG_BIN_EDGES) if edge == pytest.approx(1.0))
    assert int(counts[one]) == 3  # -1, 1 and 1.5 lie in [1, 10^0.25)
    assert int(counts[0]) == 1 and int(counts[-1]) == 1  # under- and overflow land in the end bins
    index = max(i for i, edge in enumerate(LOG_BIN_EDGES) if edge <= 2e-3)
    assert int(counts[index]) == 1


def test_magnitude_stats_accumulate():
    stats = MagnitudeStats()
    stats.add(torch.tensor([1.0, -3.0, 0.0]))
    stats.add(torch.tensor([[2.0]]))
    summary = stats.summary("g")
    assert summary["g_mean_abs"] == pytest.approx(2.0) and summary["g_max_abs"] == 3.0 and summary["g_count"] == 3.0
    assert sum(summary["g_hist"]) == 3.0
    assert math.isnan(MagnitudeStats().summary("g")["g_mean_abs"])


def test_dead_fraction_and_fire_counts():
    times = torch.tensor([[1.0, math.inf, math.inf, 2.0], [math.inf, math.inf, 0.5, 3.0]])
    counts = fire_counts(times)
    assert counts.tolist() == [1, 0, 1, 2]
    assert dead_fraction(counts) == 0.25
    assert fire_counts(torch.full((3, 2, 2, 2), math.inf)).tolist() == [0] * 8


def test_hidden_output_times_and_correlation():
    inf = math.inf
    hidden = torch.tensor([[1.0, 2.0, 3.0, inf], [2.0, 4.0, inf, inf], [inf, inf, inf, inf], [3.0, 5.0, 7.0, 9.0]])
    output = torch.tensor([[2.5, 4.0], [3.5, inf], [1.0, 2.0], [inf, inf]])
    mean_hidden, decision, before = hidden_output_times(hidden, output)
    assert mean_hidden[:2].tolist() == [2.0, 3.0] and decision[:2].tolist() == [2.5, 3.5]
    assert before[:2].tolist() == pytest.approx([2 / 3, 0.5])
    assert torch.isnan(mean_hidden[2:]).all()  # no hidden spike / no output spike
    summary = timing_correlation(mean_hidden, decision, before)
    assert summary["pearson_r"] == pytest.approx(1.0)  # two usable samples on a line
    assert summary["before_fraction"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert math.isnan(timing_correlation(mean_hidden[2:], decision[2:], before[2:])["pearson_r"])
