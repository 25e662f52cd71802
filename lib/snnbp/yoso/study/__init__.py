"""The YOSO study (``notebooks/30_yoso.ipynb``): trained checkpoints through the accelerator model.

From an STDBP checkpoint (a fully connected ReL-PSP network) to the simulator's inputs
(:func:`load_stdbp`), the accelerator against the model (:func:`fidelity_table`), the comparison
with YOSO's published numbers (:func:`paper_comparison_lines`, :func:`timing_variants`), sweeps over
mesh size (:func:`mesh_sweep`) and network size (:func:`size_sweep`), per-image energy against spike
counts (:func:`per_image_frame`), the HM2-BP rate-coded network of the same size through the same
cost model (:func:`evaluate_rate_coded`, :func:`rate_vs_temporal`), and the run's records
(:func:`open_results`, :class:`ResultsWriter`: ``metrics.json``, ``run.json``, ``figures/``).

This module is also the ``yoso`` evaluation of :data:`snnbp.methods.EVALUATIONS`: its
:class:`StudyParams` are the top-level keys of ``params/cpu/yoso_mnist.yaml`` (validated by
:func:`params_from_mapping`).

Units: time in ms, energy in uJ (per image), power in mW. Accuracies and fractions are in [0, 1].

Modules, by concern: :mod:`~snnbp.yoso.study.params` (the evaluation's keys and identity),
:mod:`~snnbp.yoso.study.networks` (checkpoints to the simulator's inputs),
:mod:`~snnbp.yoso.study.runs` (one accelerator run against the model),
:mod:`~snnbp.yoso.study.paper` (the published numbers), :mod:`~snnbp.yoso.study.sweeps`,
:mod:`~snnbp.yoso.study.rate` (rate against temporal coding), :mod:`~snnbp.yoso.study.cnn` (the
spiking CNN's accelerator profile, mapping and record) and
:mod:`~snnbp.yoso.study.records`. Every public name is importable from this package.
"""

from snnbp.yoso.study.cnn import cnn_arch, cnn_record, mapping_frame
from snnbp.yoso.study.networks import (
    TRAIN_HINT,
    TtfsNetwork,
    existing_file,
    load_stdbp,
    restore_checkpoint,
    sha256_file,
    subset,
    truncate_hidden,
)
from snnbp.yoso.study.paper import (
    TIMING_VARIANTS,
    closest_timing_line,
    paper_comparison_lines,
    powered_kbytes,
    timing_variants,
)
from snnbp.yoso.study.params import (
    DEPLOYMENT_KEYS,
    GROUPS,
    PAPER_ENERGY_UJ,
    PATH_KEYS,
    SMOKE_PROFILE,
    StudyParams,
    eval_params_from_notebook,
    identity_params,
    params_from_mapping,
    record_params,
)
from snnbp.yoso.study.rate import RateRun, evaluate_rate_coded, rate_ratio_lines, rate_vs_temporal
from snnbp.yoso.study.records import (
    ResultsMismatchError,
    ResultsWriter,
    collect_metrics,
    open_results,
    round_frame,
    study_inputs,
    table_text,
)
from snnbp.yoso.study.runs import (
    breakdown_frame,
    decision_agreement,
    describe_setup,
    fidelity_table,
    headline_lines,
    run_accelerator,
)
from snnbp.yoso.study.sweeps import (
    mesh_sweep,
    per_image_frame,
    size_sweep,
    spike_fits,
    spikes_processed,
    spread_pes_per_layer,
)

__all__ = [
    "breakdown_frame",
    "closest_timing_line",
    "cnn_arch",
    "cnn_record",
    "collect_metrics",
    "decision_agreement",
    "DEPLOYMENT_KEYS",
    "describe_setup",
    "eval_params_from_notebook",
    "evaluate_rate_coded",
    "existing_file",
    "fidelity_table",
    "GROUPS",
    "headline_lines",
    "identity_params",
    "load_stdbp",
    "mapping_frame",
    "mesh_sweep",
    "open_results",
    "paper_comparison_lines",
    "PAPER_ENERGY_UJ",
    "params_from_mapping",
    "PATH_KEYS",
    "per_image_frame",
    "powered_kbytes",
    "rate_ratio_lines",
    "rate_vs_temporal",
    "RateRun",
    "record_params",
    "restore_checkpoint",
    "ResultsMismatchError",
    "ResultsWriter",
    "round_frame",
    "run_accelerator",
    "sha256_file",
    "size_sweep",
    "SMOKE_PROFILE",
    "spike_fits",
    "spikes_processed",
    "spread_pes_per_layer",
    "study_inputs",
    "StudyParams",
    "subset",
    "table_text",
    "TIMING_VARIANTS",
    "timing_variants",
    "TRAIN_HINT",
    "truncate_hidden",
    "TtfsNetwork",
]
