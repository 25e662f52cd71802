"""The study's records: rounded tables, ``metrics.json``, ``run.json`` and ``figures/``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from snnbp.config import (
    EvalParams,
)
from snnbp.io import atomic_write_json
from snnbp.paths import record_form, results_dir, root_relative
from snnbp.provenance import RunRecord
from snnbp.run_folder import RunMismatchError, check_identity, identity_hash
from snnbp.yoso.energy import (
    PAPER_LATENCY_MS,
    PAPER_POWER_MW,
)
from snnbp.yoso.report import YosoRun
from snnbp.yoso.study.networks import TRAIN_HINT, TtfsNetwork, existing_file, sha256_file
from snnbp.yoso.study.params import PAPER_ENERGY_UJ, SMOKE_PROFILE, identity_params, record_params
from snnbp.yoso.study.runs import run_summary


def round_frame(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Every float rounded to ``digits`` significant digits (also floats in object columns)."""

    def sig(value: Any) -> Any:
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and value != 0:
            return float(f"{value:.{digits}g}")
        return value

    return frame.apply(lambda column: column.map(sig))


def table_text(frame: pd.DataFrame, *, index: bool = False, digits: int = 4) -> str:
    """``frame`` as deterministic text, floats to ``digits`` significant digits (safe to pin in nbval)."""
    return round_frame(frame, digits).to_string(index=index, float_format=lambda v: f"{v:.{digits}g}")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


class ResultsMismatchError(RunMismatchError):
    """A study's run folder holds a ``metrics.json`` made from other params or other inputs."""


@dataclass
class ResultsWriter:
    """Where a full run's results go: ``metrics.json``, ``run.json`` and ``figures/`` in ``run_dir``;
    with ``run_dir`` None (the smoke run) nothing is written.

    ``run.json`` says ``running`` from :func:`open_results` until :meth:`finish` (a run whose
    notebook stopped on an error keeps ``running`` and no stop time).

    Attributes:
        run_dir: the run folder, or None.
        params_hash: sha256 of the params and of the inputs' contents (see :func:`open_results`).
        inputs: ``{name: {"path", "sha256"}}`` of the checkpoints and the accelerator's params file.
        record: the ``run.json`` record (None without ``run_dir``).
    """

    run_dir: Path | None
    params_hash: str
    inputs: dict[str, dict[str, str]]
    record: RunRecord | None = None

    def save_figure(self, fig: Any, name: str) -> None:
        """Save ``fig`` as ``figures/<name>`` in the run folder (nothing without one)."""
        if self.run_dir is not None:
            from snnbp.plots import save

            save(fig, self.run_dir / "figures" / name)

    def finish(self, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json`` (with the params hash and the inputs) and complete ``run.json``."""
        if self.run_dir is None:
            return
        payload = {**metrics, "params_hash": self.params_hash, "inputs": self.inputs}
        atomic_write_json(self.run_dir / "metrics.json", payload)
        if self.record is not None:
            summary = {k: v for k, v in payload.items() if not isinstance(v, (list, dict)) or k == "breakdown_uj"}
            self.record.finish(metrics=summary)


def study_inputs(params: EvalParams) -> dict[str, dict[str, str]]:
    """``{key: {"path", "sha256"}}`` of the study's input files (paths in :func:`snnbp.paths.record_form`).

    Raises:
        FileNotFoundError: a checkpoint or the accelerator's params file is missing.
    """
    own = params.study
    inputs = {}
    for name, path, what, hint in (
        ("stdbp_checkpoint", own.stdbp_checkpoint, "STDBP checkpoint", TRAIN_HINT),
        ("hm2bp_checkpoint", own.hm2bp_checkpoint, "HM2-BP checkpoint", TRAIN_HINT),
        ("yoso_params", own.yoso_params, "accelerator params file", ""),
        ("cnn_checkpoint", own.cnn_checkpoint, "STDBP CNN checkpoint", TRAIN_HINT),
    ):
        inputs[name] = {"path": record_form(path), "sha256": sha256_file(existing_file(path, what, hint))}
    return inputs


def open_results(output_dir: str | Path | None, params: EvalParams) -> ResultsWriter:
    """Check the inputs exist, hash them with the params, refuse to overwrite other results, and
    start ``run.json``.

    Where the results go: ``output_dir`` when given, else ``results/<profile>/<name>`` for a params
    file's profile (e.g. ``papermill ... -f params/cpu/yoso_mnist.yaml``); a smoke run (profile
    ``smoke``, the notebook's defaults) writes nothing.

    The params hash covers the params (:func:`identity_params`: minus ``notebook`` and ``profile``,
    the file paths relative to ``notebooks/``) and the sha256 of both checkpoints and of the
    accelerator's params file, so a retrained checkpoint or changed constants never silently
    replace earlier results.

    Raises:
        FileNotFoundError: a checkpoint or the accelerator's params file is missing.
        ResultsMismatchError: ``output_dir/metrics.json`` exists with another params hash.
    """
    inputs = study_inputs(params)
    digest = identity_hash({"params": identity_params(params), "inputs": inputs})
    if output_dir is None and params.profile not in (None, SMOKE_PROFILE):
        output_dir = results_dir() / params.profile / params.name
    if output_dir is None:
        return ResultsWriter(None, digest, inputs)
    run_dir = Path(output_dir)
    existing = run_dir / "metrics.json"
    if existing.exists():
        try:
            stored = json.loads(existing.read_text()).get("params_hash")
        except (OSError, json.JSONDecodeError, AttributeError):
            stored = None
        check_identity(existing, stored, digest, "holds results of other params or inputs", ResultsMismatchError)
    record = RunRecord(run_dir / "run.json", record_params(params), params.seed)
    record.start(params_hash=digest, inputs=inputs, run_dir=root_relative(run_dir))
    return ResultsWriter(run_dir, digest, inputs, record)


def collect_metrics(
    *,
    params: EvalParams,
    net: TtfsNetwork,
    run: YosoRun,
    fidelity: pd.DataFrame,
    timing: pd.DataFrame,
    meshes: pd.DataFrame,
    sizes: pd.DataFrame,
    fits: pd.DataFrame,
    rate: pd.DataFrame,
    cnn: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the study measured, as JSON-ready data (the content of ``metrics.json``).

    ``test_accuracy`` is the simulated accelerator's; ``model_accuracy`` the trained model's on the
    same images; ``agreement`` the fraction of equal predictions; ``cnn`` the spiking CNN's record
    (:func:`snnbp.yoso.study.cnn.cnn_record`), when there is one.
    """
    m = run.metrics
    temporal, rated = rate.iloc[0], rate.iloc[1]
    extra = {} if cnn is None else {"cnn": cnn}
    return {
        "name": params.name,
        "method": params.method,
        **run_summary(net, run),
        "power_ratio": m["power_ratio"],
        "latency_ratio": m["latency_ratio"],
        "energy_ratio": m["energy_ratio"],
        "paper": {"power_mw": PAPER_POWER_MW, "latency_ms": PAPER_LATENCY_MS, "energy_per_image_uj": PAPER_ENERGY_UJ},
        "fidelity": _records(fidelity),
        "timing_variants": _records(timing),
        "mesh_sweep": _records(meshes),
        "size_sweep": _records(sizes),
        "spike_fits": _records(fits),
        "rate_vs_temporal": {
            "n_images": int(temporal.n_images),
            "rows": _records(rate),
            "energy_ratio": float(rated.energy_per_image_uj / temporal.energy_per_image_uj),
            "latency_ratio": float(rated.latency_ms / temporal.latency_ms),
        },
        **extra,
    }
