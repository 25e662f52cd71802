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
  dead fractions, hidden/output timing), read by the histogram helpers of :mod:`snnbp.analysis`.
* **Gradients of an ANN** (section e): ``|dL/dw|`` of the non-spiking reference, recorded during
  its own run on the same images (``results/cpu/ann_analysis_mnist_fc``), compared by shape
  (median-aligned) with the spiking runs'.
* **Verdicts**: each qualitative claim of TARGETS.md is tested by a rule stated in the docstring
  of its verdict function, which returns ``"supports"``, ``"contradicts"`` or ``"inconclusive"``
  together with the numbers it used, so printed conclusions follow the data.

Units: times in ms. A ReL-PSP weight is in threshold units per ms (``V = sum w (t - t_i)``), an
alpha-PSP weight in threshold units (``V = sum w K``, ``K`` dimensionless), so ``dt/dw`` has
different units for the two kernels; tails are therefore measured relative to each
distribution's own median.

Modules, by concern: :mod:`~snnbp.problem_analysis.theory` (the exact neurons of both kernels,
sections a and b without data), :mod:`~snnbp.problem_analysis.history` (per-epoch histories and
spike timing of recorded runs), :mod:`~snnbp.problem_analysis.runs` (reading the runs' records
and checkpoints; the ANN reference) and :mod:`~snnbp.problem_analysis.verdicts`; the
log-binned histogram summaries are in :mod:`snnbp.analysis`. Every public name is importable
from this package.
"""

from snnbp.analysis import (
    BINS_PER_DECADE,
    aligned_log_distance,
    bin_quantile,
    histogram_fractions,
    median_bin,
    tail_fraction,
)
from snnbp.problem_analysis.history import (
    dead_fractions,
    hidden_lags,
    history_tail_fractions,
    history_values,
    least_squares_slope,
    median_hidden_times,
    rank_correlation,
)
from snnbp.problem_analysis.runs import (
    TrainedRun,
    load_metrics,
    load_trained,
    params_command,
    trained_time_weight_gradients,
)
from snnbp.problem_analysis.theory import (
    KERNEL_LABELS,
    GradientSummary,
    KernelName,
    SpikeTimeSweep,
    critical_weight,
    crossing_slope,
    gradient_at_offsets,
    kernel_spike_times,
    random_neurons,
    summarise_gradients,
    sweep_weight,
    threshold_sweeps,
    time_weight_gradient,
    within_window,
)
from snnbp.problem_analysis.verdicts import (
    OUTCOME_PHRASES,
    Outcome,
    Verdict,
    format_value,
    growth_verdict,
    lower_verdict,
    majority_verdict,
    materially_below,
    verdict_table,
)

__all__ = [
    "aligned_log_distance",
    "bin_quantile",
    "BINS_PER_DECADE",
    "critical_weight",
    "crossing_slope",
    "dead_fractions",
    "format_value",
    "gradient_at_offsets",
    "GradientSummary",
    "growth_verdict",
    "hidden_lags",
    "histogram_fractions",
    "history_tail_fractions",
    "history_values",
    "KernelName",
    "KERNEL_LABELS",
    "least_squares_slope",
    "load_metrics",
    "load_trained",
    "lower_verdict",
    "majority_verdict",
    "materially_below",
    "median_bin",
    "median_hidden_times",
    "Outcome",
    "OUTCOME_PHRASES",
    "params_command",
    "random_neurons",
    "rank_correlation",
    "kernel_spike_times",
    "summarise_gradients",
    "sweep_weight",
    "tail_fraction",
    "threshold_sweeps",
    "time_weight_gradient",
    "trained_time_weight_gradients",
    "TrainedRun",
    "Verdict",
    "verdict_table",
    "SpikeTimeSweep",
    "within_window",
]
