"""Statistics for the problem analysis of ReL-PSP vs alpha-PSP (ALGORITHMS.md 2.9).

Pure functions over tensors: log-binned gradient histograms (fig. 1: distribution of ``dt/dw``
and ``dL/dw``), dead-neuron fractions (fig. 2: neurons that never fire over an epoch) and the
relation between hidden and output spike times (fig. 3: decisions from early hidden spikes); and
summaries of a log-binned histogram (median bin, tail fraction, quantile, median-aligned distance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

#: Fixed log-spaced bin edges for gradient magnitudes: 1e-8 ... 1e4, four bins per decade.
#: Magnitudes below the first edge fall in the first bin, above the last edge in the last bin;
#: exact zeros (non-causal pairs) are not counted.
LOG_BIN_EDGES: tuple[float, ...] = tuple(10.0 ** (e / 4) for e in range(-32, 17))


def log_histogram(values: torch.Tensor, edges: tuple[float, ...] = LOG_BIN_EDGES) -> torch.Tensor:
    """Counts of ``|values|`` (nonzero, finite) in the log-spaced bins ``edges``.

    Shape:
        - values: any; Output: ``[len(edges) - 1]`` int64 counts.
    """
    magnitude = values.detach().abs().reshape(-1)
    magnitude = magnitude[(magnitude > 0) & torch.isfinite(magnitude)]
    boundaries = torch.tensor(edges[1:-1], dtype=magnitude.dtype, device=magnitude.device)
    bins = torch.bucketize(magnitude, boundaries, right=True)
    return torch.bincount(bins, minlength=len(edges) - 1).cpu()


def dead_fraction(fire_counts: torch.Tensor) -> float:
    """Fraction of neurons that never fired (``fire_counts == 0``).

    Shape:
        - fire_counts: ``[N]`` spikes per neuron accumulated over an epoch's samples.
    """
    return float((fire_counts == 0).to(torch.float64).mean().item()) if fire_counts.numel() else float("nan")


def fire_counts(times: torch.Tensor) -> torch.Tensor:
    """Spikes per neuron over a batch (single-spike neurons: the number of finite times).

    Shape:
        - times: ``[B, ...]``; Output: ``[prod(...)]`` int64.
    """
    return torch.isfinite(times.detach()).reshape(times.shape[0], -1).sum(dim=0)


def hidden_output_times(
    t_hidden: torch.Tensor, t_output: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample: mean hidden spike time, decision time (earliest output spike) and the
    fraction of hidden spikes that precede the decision; ``nan`` where a sample has no hidden
    or no output spike.

    Shape:
        - t_hidden: ``[B, H]`` (``inf`` = silent); t_output: ``[B, C]``
        - Output: three ``[B]`` float64 tensors.
    """
    t_hidden, t_output = t_hidden.detach().to(torch.float64), t_output.detach().to(torch.float64)
    fired = torch.isfinite(t_hidden)
    decision = t_output.min(dim=1).values
    counts = fired.sum(dim=1)
    usable = (counts > 0) & torch.isfinite(decision)
    mean_hidden = torch.where(fired, t_hidden, torch.zeros_like(t_hidden)).sum(dim=1) / counts.clamp(min=1)
    before = (fired & (t_hidden < decision[:, None])).sum(dim=1) / counts.clamp(min=1)
    nan = torch.full_like(decision, math.nan)
    return torch.where(usable, mean_hidden, nan), torch.where(usable, decision, nan), torch.where(usable, before, nan)


def timing_correlation(mean_hidden: torch.Tensor, decision: torch.Tensor, before: torch.Tensor) -> dict[str, float]:
    """Summary of :func:`hidden_output_times` over many samples (``nan`` entries skipped).

    Returns:
        ``pearson_r`` between mean hidden time and decision time over samples (``nan`` with
        fewer than two samples or no variance), ``before_fraction`` (mean fraction of hidden
        spikes before the decision), ``mean_hidden_time`` and ``mean_decision_time`` (ms).

    Shape:
        - all inputs ``[S]``.
    """
    usable = torch.isfinite(mean_hidden) & torch.isfinite(decision)
    x, y = mean_hidden[usable], decision[usable]
    if x.numel() == 0:
        return {
            "pearson_r": math.nan,
            "before_fraction": math.nan,
            "mean_hidden_time": math.nan,
            "mean_decision_time": math.nan,
        }
    r = math.nan
    if x.numel() > 1 and float(x.std()) > 0 and float(y.std()) > 0:
        r = float(torch.corrcoef(torch.stack([x, y]))[0, 1])
    return {
        "pearson_r": r,
        "before_fraction": float(before[usable].mean()),
        "mean_hidden_time": float(x.mean()),
        "mean_decision_time": float(y.mean()),
    }


@dataclass
class MagnitudeStats:
    """Running statistics of gradient magnitudes over an epoch (nonzero finite entries only).

    Attributes:
        histogram: counts in the bins of :data:`LOG_BIN_EDGES`.
        total: sum of the magnitudes.
        count: number of magnitudes.
        largest: the largest magnitude.
    """

    histogram: torch.Tensor = field(default_factory=lambda: torch.zeros(len(LOG_BIN_EDGES) - 1, dtype=torch.long))
    total: float = 0.0
    count: int = 0
    largest: float = 0.0

    def add(self, values: torch.Tensor) -> None:
        """Accumulate ``|values|`` (any shape)."""
        magnitude = values.detach().abs().reshape(-1)
        magnitude = magnitude[(magnitude > 0) & torch.isfinite(magnitude)]
        if magnitude.numel():
            self.histogram += log_histogram(magnitude)
            self.total += float(magnitude.to(torch.float64).sum())
            self.count += int(magnitude.numel())
            self.largest = max(self.largest, float(magnitude.max()))

    def summary(self, prefix: str) -> dict[str, float | list[float]]:
        """``{prefix}_hist`` (counts as floats), ``{prefix}_mean_abs``, ``{prefix}_max_abs``, ``{prefix}_count``."""
        return {
            f"{prefix}_hist": [float(c) for c in self.histogram.tolist()],
            f"{prefix}_mean_abs": self.total / self.count if self.count else math.nan,
            f"{prefix}_max_abs": self.largest if self.count else math.nan,
            f"{prefix}_count": float(self.count),
        }


#: Bins per decade of :data:`LOG_BIN_EDGES` (4: quarter-decade bins).
BINS_PER_DECADE: int = round(1.0 / math.log10(LOG_BIN_EDGES[1] / LOG_BIN_EDGES[0]))


# --------------------------------------------------------------------------------------------
# Log-binned histograms (the bins of snnbp.analysis.LOG_BIN_EDGES)
# --------------------------------------------------------------------------------------------


def _counts(counts: Sequence[float] | torch.Tensor) -> torch.Tensor:
    values = torch.as_tensor(counts, dtype=torch.float64).reshape(-1)
    if values.numel() != len(LOG_BIN_EDGES) - 1:
        raise ValueError(f"expected {len(LOG_BIN_EDGES) - 1} bin counts (LOG_BIN_EDGES), got {values.numel()}")
    return values


def median_bin(counts: Sequence[float] | torch.Tensor) -> int:
    """Index of the bin that holds the median (first bin where the cumulative count reaches half).

    Raises:
        ValueError: for an empty histogram.

    Shape:
        - counts: ``[len(LOG_BIN_EDGES) - 1]``
    """
    values = _counts(counts)
    total = float(values.sum())
    if total <= 0:
        raise ValueError("empty histogram: no median")
    return int((values.cumsum(0) >= 0.5 * total).nonzero()[0, 0])


def tail_fraction(counts: Sequence[float] | torch.Tensor, decades: float) -> float:
    """Fraction of the counts at least ``decades`` above the median bin (``nan`` if empty).

    Counts the bins whose index is ``>= median_bin + decades * BINS_PER_DECADE``: values at least
    ``10**decades`` times the lower edge of the median bin (the last bin also holds every value
    above the last edge).

    Raises:
        ValueError: when ``decades`` is not a multiple of a bin width (1 / BINS_PER_DECADE).

    Shape:
        - counts: ``[len(LOG_BIN_EDGES) - 1]``
    """
    offset = decades * BINS_PER_DECADE
    if offset < 0 or abs(offset - round(offset)) > 1e-9:
        raise ValueError(f"decades must be a non-negative multiple of 1/{BINS_PER_DECADE}, got {decades}")
    values = _counts(counts)
    total = float(values.sum())
    if total <= 0:
        return math.nan
    return float(values[median_bin(values) + round(offset) :].sum()) / total


def bin_quantile(counts: Sequence[float] | torch.Tensor, q: float) -> float:
    """Upper edge of the bin that holds the ``q``-quantile (an upper bound, within a bin width).

    Shape:
        - counts: ``[len(LOG_BIN_EDGES) - 1]``
    """
    values = _counts(counts)
    total = float(values.sum())
    if total <= 0:
        return math.nan
    index = int((values.cumsum(0) >= q * total).nonzero()[0, 0])
    return LOG_BIN_EDGES[index + 1]


def aligned_log_distance(counts_a: Sequence[float] | torch.Tensor, counts_b: Sequence[float] | torch.Tensor) -> float:
    """Shape distance in decades between two ``log10 |g|`` histograms after aligning their medians.

    Each histogram is shifted by whole bins so that its median bin sits at 0; the distance is
    the 1-Wasserstein distance of the two shifted distributions,
    ``W1 = sum_k |F_a(k) - F_b(k)| / BINS_PER_DECADE`` (``F``: cumulative fractions on the common
    bin lattice). Scale-free: multiplying every gradient by a constant changes nothing, so
    gradients of different losses and units can be compared.

    Shape:
        - counts_a, counts_b: ``[len(LOG_BIN_EDGES) - 1]``
    """
    a, b = _counts(counts_a), _counts(counts_b)
    if float(a.sum()) <= 0 or float(b.sum()) <= 0:
        return math.nan
    n = a.numel()
    shift_a, shift_b = n - median_bin(a), n - median_bin(b)
    grid_a, grid_b = torch.zeros(2 * n + 1, dtype=torch.float64), torch.zeros(2 * n + 1, dtype=torch.float64)
    grid_a[shift_a : shift_a + n] = a / a.sum()
    grid_b[shift_b : shift_b + n] = b / b.sum()
    return float((grid_a.cumsum(0) - grid_b.cumsum(0)).abs().sum()) / BINS_PER_DECADE


def histogram_fractions(counts: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Counts divided by their total (zeros for an empty histogram).

    Shape:
        - counts: ``[K]``; Output: ``[K]`` float64.
    """
    values = torch.as_tensor(counts, dtype=torch.float64)
    total = float(values.sum())
    return values / total if total > 0 else torch.zeros_like(values)
