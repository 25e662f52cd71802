"""Per-epoch histories of recorded runs and the hidden/output spike timing (notebook 01, sections b-d).

Read from ``metrics.json`` histories (:meth:`snnbp.stdbp.learner.StdbpLearner.end_epoch` writes them)
or computed from spike times; nothing here trains or restores a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from scipy import stats as scipy_stats

from snnbp.analysis import tail_fraction

# --------------------------------------------------------------------------------------------
# Per-epoch history of a run (metrics.json)
# --------------------------------------------------------------------------------------------


def history_values(history: Sequence[dict[str, Any]], key: str) -> list[float]:
    """``history[e][key]`` for every epoch, ``nan`` where absent or ``None``."""
    return [math.nan if h.get(key) is None else float(h[key]) for h in history]


def history_tail_fractions(history: Sequence[dict[str, Any]], key: str, decades: float) -> list[float]:
    """:func:`tail_fraction` of the histogram ``history[e][key]`` for every epoch (``nan`` if absent)."""
    return [tail_fraction(h[key], decades) if h.get(key) else math.nan for h in history]


def dead_fractions(history: Sequence[dict[str, Any]]) -> list[float]:
    """Per epoch, the mean over hidden layers of ``dead_fraction_<layer>`` (``nan`` if none recorded).

    A neuron is dead in an epoch when it fired on none of the epoch's training samples
    (:func:`snnbp.analysis.dead_fraction`).
    """
    out = []
    for h in history:
        values = [float(v) for k, v in sorted(h.items()) if k.startswith("dead_fraction_") and v is not None]
        out.append(sum(values) / len(values) if values else math.nan)
    return out


def least_squares_slope(values: Sequence[float]) -> float:
    """Slope of the least-squares line through ``(e, values[e])``, ``e = 1..n`` (per epoch).

    ``nan`` entries are skipped; ``nan`` with fewer than two finite values.
    """
    points = [(float(e), float(v)) for e, v in enumerate(values, start=1) if math.isfinite(v)]
    if len(points) < 2:
        return math.nan
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)


# --------------------------------------------------------------------------------------------
# Section d: hidden versus output spike times
# --------------------------------------------------------------------------------------------


def median_hidden_times(t_hidden: torch.Tensor) -> torch.Tensor:
    """Per sample, the median spike time of the hidden neurons that fired (``nan`` if none).

    Shape:
        - t_hidden: ``[B, H]`` (``inf`` = silent); Output: ``[B]`` float64.
    """
    times = t_hidden.detach().to(torch.float64)
    return torch.where(torch.isfinite(times), times, torch.full_like(times, math.nan)).nanmedian(dim=1).values


def hidden_lags(t_hidden: torch.Tensor, t_output: torch.Tensor) -> torch.Tensor:
    """``t_hidden - t_decision`` (ms) of every hidden spike of the samples with a decision.

    The decision time is the earliest output spike (:func:`snnbp.stdbp.loss.first_spike_prediction`);
    a negative lag is a hidden spike that precedes the decision.

    Shape:
        - t_hidden: ``[B, H]``; t_output: ``[B, C]``; Output: ``[K]`` float64 (K fired hidden neurons).
    """
    t_hidden, t_output = t_hidden.detach().to(torch.float64), t_output.detach().to(torch.float64)
    decision = t_output.min(dim=1).values
    lags = t_hidden - decision[:, None]
    usable = torch.isfinite(t_hidden) & torch.isfinite(decision)[:, None]
    return lags[usable]


def rank_correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman rank correlation of ``x`` and ``y`` over the pairs where both are finite.

    ``nan`` with fewer than three pairs or a constant variable.

    Shape:
        - x, y: ``[S]``
    """
    x, y = x.detach().to(torch.float64), y.detach().to(torch.float64)
    usable = torch.isfinite(x) & torch.isfinite(y)
    x, y = x[usable], y[usable]
    if x.numel() < 3 or bool((x == x[0]).all()) or bool((y == y[0]).all()):
        return math.nan
    return float(scipy_stats.spearmanr(x.numpy(), y.numpy()).statistic)
