"""Why backpropagation struggles in first-spike SNNs: ReL-PSP versus alpha-PSP (ALGORITHMS.md 2.2-2.3, 2.5, 2.9).

The functions behind ``notebooks/01_problem_analysis.ipynb``:

* **Spike function around threshold** (section a): a neuron whose one weight is swept. The spike
  indicator ``s(w) = 1[t_j(w) < T]`` is a step (derivative zero almost everywhere, a Dirac at the
  critical weight); the spike time ``t_j(w)`` is continuous where it exists.
* **Spike-time gradients of random neurons** (section b, theory): ``dt_j/dw_ji = -(dV/dw_ji)/(dV/dt)``
  at the crossing (ALGORITHMS.md 2.3). ReL-PSP: ``dV/dt = sum_C w`` (the causal weight sum);
  alpha-PSP: ``dV/dt = sum_C w K'(t_j - t_i)``, which tends to 0 when the threshold is reached
  near the potential's peak.
* **Statistics recorded during training** (sections b-d, measured): the per-epoch entries that
  :meth:`snnbp.stdbp.learner.StdbpLearner.end_epoch` writes into ``metrics.json``'s ``history``
  (log-binned ``|dt/dw|`` and ``|dL/dw|`` histograms on :data:`snnbp.analysis.LOG_BIN_EDGES`,
  dead fractions, hidden/output timing), read by the histogram helpers here.
* **Gradients of an ANN** (section e): ``|dL/dw|`` of the non-spiking reference trained on the
  same images, compared by shape (median-aligned) with the spiking runs'.
* **Verdicts**: each qualitative claim of TARGETS.md is tested by a rule stated in the docstring
  of its verdict function, which returns ``"supports"``, ``"contradicts"`` or ``"inconclusive"``
  together with the numbers it used, so printed conclusions follow the data.

Units: times in ms. A ReL-PSP weight is in threshold units per ms (``V = sum w (t - t_i)``), an
alpha-PSP weight in threshold units (``V = sum w K``, ``K`` dimensionless), so ``dt/dw`` has
different units for the two kernels; tails are therefore measured relative to each
distribution's own median.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from scipy import stats as scipy_stats

from snnbp.analysis import LOG_BIN_EDGES, MagnitudeStats, log_histogram
from snnbp.ann import ModelParams as AnnParams
from snnbp.ann import build_learner as ann_build_learner
from snnbp.config import RunParams, params_from_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.datasets import load_dataset
from snnbp.paths import resolve
from snnbp.seeding import torch_generator
from snnbp.stdbp.alpha import alpha_kernel_derivative, alpha_spike_times, alpha_time_weight_gradient
from snnbp.stdbp.model import weighted_layer_io
from snnbp.stdbp.relpsp import relpsp_spike_times, relpsp_time_weight_gradient
from snnbp.train import CHECKPOINT_NAME, batches, build_learner, load_checkpoint

Kernel = Literal["relpsp", "alpha"]
Outcome = Literal["supports", "contradicts", "inconclusive"]

#: Display names of the two kernels.
KERNEL_LABELS: dict[str, str] = {"relpsp": "ReL-PSP", "alpha": "alpha-PSP"}

#: Bins per decade of :data:`snnbp.analysis.LOG_BIN_EDGES` (4: quarter-decade bins).
BINS_PER_DECADE: int = round(1.0 / math.log10(LOG_BIN_EDGES[1] / LOG_BIN_EDGES[0]))


# --------------------------------------------------------------------------------------------
# Exact neurons of both kernels (ALGORITHMS.md 2.2, 2.3)
# --------------------------------------------------------------------------------------------


def spike_times(kernel: Kernel, t_in: torch.Tensor, weight: torch.Tensor, theta: float, *, tau: float) -> torch.Tensor:
    """Exact first-spike times of a layer of ``kernel`` neurons (``inf`` = never), no gradient.

    ReL-PSP: ``V_j(t) = sum_i w_ji max(0, t - t_i)``; alpha-PSP: ``V_j(t) = sum_i w_ji K(t - t_i)``,
    ``K(x) = (x / tau) exp(1 - x / tau) H(x)`` (ALGORITHMS.md 2.2); ``t_j`` = first ``V_j = theta``.

    Shape:
        - t_in: ``[B, N]``; weight: ``[M, N]``; Output: ``[B, M]``
    """
    with torch.no_grad():
        if kernel == "relpsp":
            return relpsp_spike_times(t_in, weight, theta)
        if kernel == "alpha":
            return alpha_spike_times(t_in, weight, theta, tau=tau)
    raise ValueError(f"unknown kernel {kernel!r}; expected 'relpsp' or 'alpha'")


def time_weight_gradient(
    kernel: Kernel, t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor, *, tau: float
) -> torch.Tensor:
    """Every exact ``dt_j/dw_ji = -(dV_j/dw_ji) / (dV_j/dt)`` at the crossing (ALGORITHMS.md 2.3).

    ReL-PSP: ``(t_i - t_j) / sum_C w``; alpha-PSP: ``-K(t_j - t_i) / V'(t_j)``. Zero for
    non-causal inputs, silent neurons and non-positive slopes.

    Shape:
        - t_in: ``[B, N]``; weight: ``[M, N]``; t_out: ``[B, M]``; Output: ``[B, M, N]``
    """
    if kernel == "relpsp":
        return relpsp_time_weight_gradient(t_in, weight, t_out)
    if kernel == "alpha":
        return alpha_time_weight_gradient(t_in, weight, t_out, tau)
    raise ValueError(f"unknown kernel {kernel!r}; expected 'relpsp' or 'alpha'")


def crossing_slope(
    kernel: Kernel, t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor, *, tau: float
) -> torch.Tensor:
    """``dV_j/dt`` at each neuron's spike time (``nan`` for silent neurons), in threshold units per ms.

    ReL-PSP: ``sum_{i: t_i < t_j} w_ji``; alpha-PSP: ``sum_i w_ji K'(t_j - t_i)`` (ALGORITHMS.md 2.3).
    The factor ``1 / (dV/dt)`` multiplies every spike-time gradient of the neuron.

    Shape:
        - t_in: ``[B, N]``; weight: ``[M, N]``; t_out: ``[B, M]``; Output: ``[B, M]``
    """
    fired = torch.isfinite(t_out)
    t_safe = torch.where(fired, t_out, torch.zeros_like(t_out))
    lag = (t_safe[:, :, None] - t_in[:, None, :]).nan_to_num(nan=0.0, neginf=0.0)  # silent inputs: no contribution
    if kernel == "relpsp":
        slope = (weight[None] * (lag > 0)).sum(dim=2)
    elif kernel == "alpha":
        slope = (weight[None] * alpha_kernel_derivative(lag, tau)).sum(dim=2)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; expected 'relpsp' or 'alpha'")
    return torch.where(fired, slope, torch.full_like(slope, math.nan))


def within_window(values: torch.Tensor, t_out: torch.Tensor, window: float) -> torch.Tensor:
    """``values`` of the neurons that fire before ``window`` (ms), 0 for the others.

    The STDBP loss reads output times through the decision window ``t_silent``
    (:mod:`snnbp.stdbp.loss`): a spike at or after it carries no gradient.

    Shape:
        - values: ``[B, M, ...]``; t_out: ``[B, M]``; Output: like ``values``.
    """
    keep = (t_out < window).reshape(*t_out.shape, *([1] * (values.dim() - t_out.dim())))
    return torch.where(keep, values, torch.zeros_like(values))


# --------------------------------------------------------------------------------------------
# Section a: the spike function around threshold
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightSweep:
    """One neuron whose weight ``index`` takes each of ``values``; the other weights fixed.

    Attributes:
        values: ``[S]`` the swept weight.
        t_out: ``[S]`` exact spike time in ms (``inf`` = never).
        dtdw: ``[S]`` exact ``dt_j/dw`` of the swept weight (0 where silent or non-causal).
        window: observation window in ms: a spike at or after it counts as "no spike".
        critical: the weight where the spike indicator steps (:func:`critical_weight`), ``nan``
            when it does not step inside the sweep.
    """

    values: torch.Tensor
    t_out: torch.Tensor
    dtdw: torch.Tensor
    window: float
    critical: float

    @property
    def fired(self) -> torch.Tensor:
        """``[S]`` the spike indicator ``s(w) = 1[t_j(w) < window]``."""
        return self.t_out < self.window


def _fires(
    kernel: Kernel,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    value: float,
    theta: float,
    tau: float,
    window: float,
) -> bool:
    trial = weight.clone()
    trial[index] = value
    return bool(spike_times(kernel, t_in[None], trial[None], theta, tau=tau)[0, 0] < window)


def critical_weight(
    kernel: Kernel,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    low: float,
    high: float,
    *,
    theta: float,
    tau: float,
    window: float,
    iterations: int = 100,
) -> float:
    """The weight ``w*`` in ``[low, high]`` where the spike indicator ``1[t_j(w) < window]`` steps, by bisection.

    ``nan`` when the indicator is the same at both ends. ReL-PSP: ``w*`` puts the spike exactly
    at the window's end (the neuron still fires later); alpha-PSP: ``w*`` makes the potential's
    peak touch the threshold (no spike below it).

    Shape:
        - t_in, weight: ``[N]``
    """
    fires_low = _fires(kernel, t_in, weight, index, low, theta, tau, window)
    if fires_low == _fires(kernel, t_in, weight, index, high, theta, tau, window):
        return math.nan
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if _fires(kernel, t_in, weight, index, middle, theta, tau, window) == fires_low:
            low = middle
        else:
            high = middle
    return high if not fires_low else low


def sweep_weight(
    kernel: Kernel,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    values: torch.Tensor,
    *,
    theta: float,
    tau: float,
    window: float,
) -> WeightSweep:
    """Spike time and ``dt/dw_index`` of one neuron as its weight ``index`` sweeps ``values`` (ascending).

    Each swept value is one neuron of a layer with the same inputs (ALGORITHMS.md 2.2, 2.3); the
    critical weight is searched between the first and last value.

    Shape:
        - t_in: ``[N]``; weight: ``[N]``; values: ``[S]``
    """
    weights = weight.expand(values.shape[0], -1).clone()
    weights[:, index] = values
    t_out = spike_times(kernel, t_in[None], weights, theta, tau=tau)
    dtdw = time_weight_gradient(kernel, t_in[None], weights, t_out, tau=tau)[0, :, index]
    critical = critical_weight(
        kernel, t_in, weight, index, float(values[0]), float(values[-1]), theta=theta, tau=tau, window=window
    )
    return WeightSweep(values, t_out[0], dtdw, window, critical)


def threshold_sweeps(
    kernel: Kernel,
    t_in: torch.Tensor,
    weight: torch.Tensor,
    index: int,
    *,
    theta: float,
    tau: float,
    window: float,
    points: int,
    near_decades: int,
    bracket: tuple[float, float] = (0.0, 10.0),
) -> tuple[WeightSweep, WeightSweep]:
    """A wide sweep ``w = w* x [-1, 3]`` and a near-threshold sweep ``w = w* + |w*| x 10^[-near_decades, 0]``.

    ``w*`` is the critical weight in ``bracket`` (:func:`critical_weight`); the near sweep starts
    on the firing side, ten points per decade.

    Raises:
        ValueError: when the spike indicator does not step inside ``bracket``.

    Shape:
        - t_in, weight: ``[N]``
    """
    critical = critical_weight(kernel, t_in, weight, index, *bracket, theta=theta, tau=tau, window=window)
    if not math.isfinite(critical):
        raise ValueError(f"the {kernel} neuron's spike indicator does not step for weight {index} in {bracket}")
    options = {"theta": theta, "tau": tau, "window": window}
    wide = sweep_weight(
        kernel, t_in, weight, index, critical * torch.linspace(-1.0, 3.0, points, dtype=t_in.dtype), **options
    )
    offsets = torch.logspace(-near_decades, 0, 10 * near_decades + 1, dtype=t_in.dtype)
    near = sweep_weight(kernel, t_in, weight, index, critical + abs(critical) * offsets, **options)
    return WeightSweep(wide.values, wide.t_out, wide.dtdw, window, critical), WeightSweep(
        near.values, near.t_out, near.dtdw, window, critical
    )


def gradient_at_offsets(sweep: WeightSweep, offsets: Sequence[float]) -> list[float]:
    """``|dt/dw|`` at the sweep points nearest (in log distance) to ``(w - w*) / |w*| = offsets``.

    Shape:
        - sweep: a sweep above ``w*`` (:func:`threshold_sweeps`' near sweep)
    """
    relative = ((sweep.values - sweep.critical) / abs(sweep.critical)).clamp(min=1e-300).log10()
    return [float(sweep.dtdw[torch.argmin((relative - math.log10(o)).abs())].abs()) for o in offsets]


# --------------------------------------------------------------------------------------------
# Section b, theory: random neurons
# --------------------------------------------------------------------------------------------


def random_neurons(
    *,
    patterns: int,
    inputs: int,
    neurons: int,
    mean_low: float,
    mean_high: float,
    t_max: float,
    theta: float,
    generator: torch.Generator,
    excitatory: bool = False,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random input patterns and random neurons with a spread of drives.

    ``t_i ~ U(0, t_max)`` (one spike per input, like the latency code), ``z ~ N(0, 1)``,
    ``mu_j ~ U(mean_low, mean_high)`` (one per neuron, so the population covers neurons that
    barely reach threshold and neurons driven far past it). Weights:

    * mixed sign: ``w_ji = (theta / t_max) (mu_j + z_ji) / sqrt(N)``, the learner's
      initialisation (:func:`snnbp.stdbp.model.init_weights`) with one mean per neuron;
    * ``excitatory``: ``w_ji = (theta / t_max) mu_j |z_ji| / sqrt(N)`` (all non-negative).

    Shape:
        - Output: ``t_in [patterns, inputs]``, ``weight [neurons, inputs]``
    """
    t_in = t_max * torch.rand(patterns, inputs, generator=generator, dtype=dtype)
    mu = mean_low + (mean_high - mean_low) * torch.rand(neurons, 1, generator=generator, dtype=dtype)
    z = torch.randn(neurons, inputs, generator=generator, dtype=dtype)
    drive = mu * z.abs() if excitatory else mu + z
    return t_in, (theta / t_max) * drive / math.sqrt(inputs)


@dataclass(frozen=True)
class GradientSummary:
    """Log-binned ``|dt/dw|`` of a set of neurons, all spikes and spikes before the window.

    Attributes:
        all_spikes: counts on :data:`snnbp.analysis.LOG_BIN_EDGES`, every nonzero entry.
        before_window: the same for neurons that fire before the window's end.
        fired: fraction of (pattern, neuron) pairs that fire at all.
        fired_before_window: fraction that fire before the window's end.
        max_all, max_before_window: largest ``|dt/dw|`` (0 when none).
    """

    all_spikes: torch.Tensor
    before_window: torch.Tensor
    fired: float
    fired_before_window: float
    max_all: float
    max_before_window: float


def summarise_gradients(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], window: float) -> GradientSummary:
    """:class:`GradientSummary` of one or more layers' ``(dt/dw [B, M, N], t_out [B, M])``.

    Shape:
        - layers: pairs of ``[B, M, N]`` and ``[B, M]`` tensors (sizes may differ per layer).
    """
    hist_all = torch.zeros(len(LOG_BIN_EDGES) - 1, dtype=torch.long)
    hist_window = torch.zeros_like(hist_all)
    fired = before = total = 0
    max_all = max_window = 0.0
    for dtdw, t_out in layers:
        windowed = within_window(dtdw, t_out, window)
        hist_all += log_histogram(dtdw)
        hist_window += log_histogram(windowed)
        fired += int(torch.isfinite(t_out).sum())
        before += int((t_out < window).sum())
        total += t_out.numel()
        max_all = max(max_all, float(dtdw.abs().max()) if dtdw.numel() else 0.0)
        max_window = max(max_window, float(windowed.abs().max()) if windowed.numel() else 0.0)
    return GradientSummary(hist_all, hist_window, fired / max(total, 1), before / max(total, 1), max_all, max_window)


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


# --------------------------------------------------------------------------------------------
# Section e: gradients of the non-spiking reference
# --------------------------------------------------------------------------------------------


def ann_training_gradients(
    train: LabelledSplit,
    info: DatasetInfo,
    *,
    hidden: tuple[int, ...],
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int,
) -> MagnitudeStats:
    """``|dL/dw|`` of every weight matrix (biases excluded) at every step of training an ANN.

    The non-spiking reference of :mod:`snnbp.ann` (ReLU MLP, mean softmax cross-entropy, Adam),
    trained from its seeded initialisation on ``train`` in a seeded shuffled order, so the
    statistics match what :class:`snnbp.stdbp.learner.StdbpLearner` records as ``dldw_hist``.

    Shape:
        - train.inputs: ``[S, H, W]`` uint8 images
    """
    learner = ann_build_learner(AnnParams(hidden=hidden, lr=lr), info, seed=seed)
    generator = torch_generator(seed, "problem_analysis/ann_shuffle")
    stats = MagnitudeStats()
    for _ in range(epochs):
        for batch in batches(train, batch_size, "train", torch.randperm(len(train), generator=generator)):
            learner.train_step(batch)  # leaves this step's gradients in .grad
            for name, parameter in learner.net.named_parameters():
                if name.endswith("weight"):
                    stats.add(parameter.grad)
    return stats


# --------------------------------------------------------------------------------------------
# Runs on disk
# --------------------------------------------------------------------------------------------


def params_command(run_dir: str | Path) -> str:
    """The command that makes the run folder ``results/<profile>/<name>``: ``snnbp run params/<profile>/<name>.yaml``."""
    run_dir = Path(run_dir)
    return f"snnbp run params/{run_dir.parent.name}/{run_dir.name}.yaml"


def load_metrics(run_dir: str | Path, *, require_complete: bool = True) -> dict[str, Any]:
    """``metrics.json`` of a finished run, with a clear error when the run is missing or unfinished.

    ``run_dir`` is relative to the project root (or absolute), whatever the working directory.

    Raises:
        FileNotFoundError: naming the folder and the ``snnbp run`` command that makes it.
        RuntimeError: when the run stopped before its planned epochs (``require_complete``).
    """
    run_dir = resolve(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"run folder {run_dir} has no metrics.json; make it with `{params_command(run_dir)}`")
    metrics = json.loads(path.read_text())
    if require_complete and metrics.get("epochs") != metrics.get("epochs_planned"):
        raise RuntimeError(
            f"run {run_dir} has {metrics.get('epochs')} of {metrics.get('epochs_planned')} epochs; "
            f"finish it with `{params_command(run_dir)}` (it resumes)"
        )
    return metrics


@dataclass
class TrainedRun:
    """A run rebuilt from its checkpoint: the learner with its final weights, params and data."""

    learner: Any
    params: RunParams
    train: LabelledSplit
    test: LabelledSplit
    info: DatasetInfo
    epoch: int


def load_trained(run_dir: str | Path) -> TrainedRun:
    """Rebuild the learner saved in ``run_dir/checkpoint.pt`` and load its dataset (``run_dir``
    relative to the project root, or absolute).

    Raises:
        FileNotFoundError: naming the folder and the ``snnbp run`` command that makes it.
    """
    run_dir = resolve(run_dir)
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"run folder {run_dir} has no {CHECKPOINT_NAME}; make it with `{params_command(run_dir)}`"
        )
    state = load_checkpoint(path)
    params = params_from_dict(state["params"], f"{path} (stored params)")
    train, test, info = load_dataset(params.data)
    learner = build_learner(params, info)
    learner.load_state_dict(state["learner"])
    return TrainedRun(learner, params, train, test, info, int(state["epoch"]))


def trained_time_weight_gradients(learner: Any, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(dt/dw [B, M, N], t_out [B, M])`` of every weighted layer of an STDBP learner on ``images``.

    Exact, unclipped values (ALGORITHMS.md 2.3) of the learner's kernel, as
    :class:`snnbp.stdbp.learner.StdbpLearner` records them.

    Shape:
        - images: ``[B, H, W]`` uint8
    """
    t_in = learner.encode(images)
    weights = [w.detach() for w in learner.weights]
    outputs = learner.output_times(images)
    return [
        (time_weight_gradient(learner.params.kernel, inputs, weight, times, tau=learner.params.tau), times)
        for inputs, weight, times in weighted_layer_io(t_in, learner.specs, weights, outputs)
    ]


# --------------------------------------------------------------------------------------------
# Verdicts
# --------------------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """Three significant digits (``nan`` stays ``nan``); deterministic text for nbval."""
    return "nan" if not math.isfinite(value) else f"{value:.3g}"


def _span(values: Sequence[float]) -> str:
    if len(values) == 1:
        return format_value(values[0])
    return f"{format_value(values[0])} (epoch 1) to {format_value(values[-1])} (epoch {len(values)})"


#: How a verdict reads in a sentence.
OUTCOME_PHRASES: dict[str, str] = {
    "supports": "the data **support** the claim",
    "contradicts": "the data **contradict** the claim",
    "inconclusive": "the data are **inconclusive**",
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one test of a claim, with the numbers behind it.

    Attributes:
        claim: the claim as TARGETS.md states it (shortened).
        test: what was measured.
        outcome: ``"supports"``, ``"contradicts"`` or ``"inconclusive"``.
        evidence: the numbers, rounded.
    """

    claim: str
    test: str
    outcome: Outcome
    evidence: str

    def markdown(self) -> str:
        """One paragraph: claim, test, outcome, evidence."""
        return f"**{self.claim}** ({self.test}): {OUTCOME_PHRASES[self.outcome]}. {self.evidence}"


def materially_below(a: float, b: float, *, margin: float, atol: float) -> bool:
    """``a`` is below ``b`` by at least the factor ``margin`` and by more than ``atol``.

    ``a < b``, ``a * margin <= b`` and ``b - a > atol`` (fractions are non-negative, so a 0
    against a positive value passes the ratio test).
    """
    return a < b and a * margin <= b and b - a > atol


def lower_verdict(
    claim: str,
    test: str,
    quantity: str,
    lower: Sequence[float],
    higher: Sequence[float],
    *,
    margin: float = 2.0,
    atol: float = 0.0,
    names: tuple[str, str] = ("ReL-PSP", "alpha-PSP"),
) -> Verdict:
    """Claim: ``lower`` (non-negative) is below ``higher``, per epoch or as one value each.

    Each pair of the epochs both have (``nan`` pairs skipped) is *below*, *above* or *similar*
    (:func:`materially_below`: a factor ``margin`` and a difference over ``atol``). Rule:
    **supports** when at least one pair is below and none is above; **contradicts** when at
    least one is above and none below; **inconclusive** otherwise (mixed, all similar, or no
    finite pair).
    """
    pairs = [(a, b) for a, b in zip(lower, higher) if math.isfinite(a) and math.isfinite(b)]
    below = sum(materially_below(a, b, margin=margin, atol=atol) for a, b in pairs)
    above = sum(materially_below(b, a, margin=margin, atol=atol) for a, b in pairs)
    outcome: Outcome = "inconclusive"
    if below and not above:
        outcome = "supports"
    elif above and not below:
        outcome = "contradicts"
    n = min(len(lower), len(higher))
    evidence = f"{quantity}: {names[0]} {_span(list(lower)[:n])}, {names[1]} {_span(list(higher)[:n])}"
    rule = f"a factor {format_value(margin)}" + (f" and more than {format_value(atol)}" if atol > 0 else "")
    if n > 1:
        evidence += f"; {names[0]} lower by {rule} in {below}, higher in {above}, similar in {len(pairs) - below - above} of {len(pairs)} epochs"
    else:
        evidence += f" (a difference counts when it is {rule})"
    return Verdict(claim, test, outcome, evidence + ".")


def growth_verdict(claim: str, test: str, quantity: str, values: Sequence[float], *, atol: float = 0.0) -> Verdict:
    """Claim: ``values`` grow with the epochs.

    Rule: with the least-squares slope per epoch (:func:`least_squares_slope`) and the fitted
    change over the run ``slope * (n - 1)``: **supports** when the change exceeds ``atol``,
    **contradicts** when it is below ``-atol``, **inconclusive** otherwise (or with fewer than two
    epochs).
    """
    slope = least_squares_slope(values)
    change = slope * (sum(math.isfinite(v) for v in values) - 1) if math.isfinite(slope) else math.nan
    outcome: Outcome = "inconclusive"
    if math.isfinite(change) and change > atol:
        outcome = "supports"
    elif math.isfinite(change) and change < -atol:
        outcome = "contradicts"
    evidence = (
        f"{quantity}: {_span(list(values))}; least-squares slope {format_value(slope)} per epoch, "
        f"fitted change {format_value(change)} over the run (counts when beyond {format_value(atol)})."
    )
    return Verdict(claim, test, outcome, evidence)


def majority_verdict(claim: str, test: str, quantity: str, value: float, bound: float = 0.5) -> Verdict:
    """Claim: ``value`` (a fraction) exceeds ``bound`` ("mostly").

    Rule: **supports** when ``value > bound``, **contradicts** when ``value < bound``,
    **inconclusive** when equal or ``nan``.
    """
    outcome: Outcome = "inconclusive"
    if math.isfinite(value) and value > bound:
        outcome = "supports"
    elif math.isfinite(value) and value < bound:
        outcome = "contradicts"
    return Verdict(claim, test, outcome, f"{quantity}: {format_value(value)} (bound {format_value(bound)}).")


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    """A markdown table: claim, test, verdict, evidence (``|`` inside a cell escaped)."""
    lines = ["| claim | test | verdict | evidence |", "|---|---|---|---|"]
    for v in verdicts:
        cells = [text.replace("|", "\\|").replace("\n", " ") for text in (v.claim, v.test, v.evidence)]
        lines.append(f"| {cells[0]} | {cells[1]} | **{v.outcome}** | {cells[2]} |")
    return "\n".join(lines)
