"""Simulator of the YOSO time-to-first-spike inference accelerator (ALGORITHMS.md section 3).

A 2-D mesh of PEs (:mod:`~snnbp.yoso.arch`), a placement of a trained fully connected ReL-PSP
network on it (:mod:`~snnbp.yoso.mapping`), event-driven LOAD -> COMPUTE -> STORE inference with
operation counts and a cycle model (:mod:`~snnbp.yoso.sim`), and an energy model with cited
per-operation energies (:mod:`~snnbp.yoso.energy`). :func:`evaluate` does all of it in one call;
:mod:`~snnbp.yoso.study` takes trained checkpoints through it (``notebooks/30_yoso.ipynb``).
The YOSO paper's own hardware figures were not available: every constant is a stated assumption or
comes from a cited public source (``params/yoso/default.yaml``).
"""

from snnbp.yoso.arch import DEFAULT_PARAMS, SramSpec, YosoArch, load_arch, with_changes
from snnbp.yoso.energy import (
    BREAKDOWN,
    PAPER_LATENCY_MS,
    PAPER_POWER_MW,
    EnergyParams,
    EnergyReport,
    energy_report,
    leakage_power_uw,
    load_energy,
    op_energies_pj,
    paper_ratio,
)
from snnbp.yoso.mapping import LayerMap, Mapping, MappingError, map_network
from snnbp.yoso.report import YosoRun, evaluate
from snnbp.yoso.sim import (
    COUNTERS,
    Counts,
    HwNetwork,
    SimResult,
    first_crossing_steps,
    overflow_risk,
    rate_coded_counts,
    simulate,
    time_to_step,
    to_hardware,
)

__all__ = [
    "BREAKDOWN",
    "COUNTERS",
    "Counts",
    "DEFAULT_PARAMS",
    "EnergyParams",
    "EnergyReport",
    "HwNetwork",
    "LayerMap",
    "Mapping",
    "MappingError",
    "PAPER_LATENCY_MS",
    "PAPER_POWER_MW",
    "SimResult",
    "SramSpec",
    "YosoArch",
    "YosoRun",
    "energy_report",
    "evaluate",
    "first_crossing_steps",
    "leakage_power_uw",
    "load_arch",
    "load_energy",
    "map_network",
    "op_energies_pj",
    "overflow_risk",
    "paper_ratio",
    "rate_coded_counts",
    "simulate",
    "time_to_step",
    "to_hardware",
    "with_changes",
]
