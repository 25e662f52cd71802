"""What a training notebook calls: validate its parameters, train into the run folder, report.

Where a run goes (:func:`run_folder`):

* a full run (a params file, ``profile`` e.g. ``cpu``): ``results/<profile>/<name>``, the name
  its params file gives; one folder per params file, refused when it holds another run;
* a smoke run (the notebook's own defaults, ``profile = "smoke"``): ``results/smoke/<name>-<hash>``,
  where ``<hash>`` is the first 8 hex digits of the params hash (:func:`snnbp.train.params_hash`),
  so that editing the parameters cell in JupyterLab and running again starts a new run folder
  instead of stopping on the old one's checkpoint, and the same parameters resume their run;
* ``output_dir`` when given (``snnbp run --output-dir``, Papermill ``-p output_dir ...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnbp.config import RunParams, params_from_dict, params_to_dict
from snnbp.notebook import check_parameters
from snnbp.paths import results_dir
from snnbp.train import FitResult, fit, params_hash

PARAMETER_KEYS = ("name", "method", "notebook", "seed", "data", "train", "model")
SMOKE_PROFILE = "smoke"
HASH_DIGITS = 8


def run_folder(name: str, profile: str, output_dir: str | None, digest: str | None = None) -> Path:
    """``output_dir`` when given; else ``results/smoke/<name>-<digest[:8]>`` for a smoke run with a
    params hash ``digest``, else ``results/<profile>/<name>``."""
    if output_dir:
        return Path(output_dir)
    if profile == SMOKE_PROFILE and digest:
        return results_dir() / profile / f"{name}-{digest[:HASH_DIGITS]}"
    return results_dir() / profile / name


def run_params_from_notebook(values: dict[str, Any]) -> RunParams:
    """Validate the parameters a notebook received (its literals or Papermill's injection).

    Raises:
        ConfigError: a bad value, a name the notebook does not have, or parameters written for
            another notebook (:func:`snnbp.notebook.check_parameters`).
    """
    check_parameters(values)
    keys = PARAMETER_KEYS + (("profile",) if values.get("profile") is not None else ())
    return params_from_dict({k: values[k] for k in keys}, source="notebook parameters")


def train_from_notebook(
    values: dict[str, Any], *, profile: str, output_dir: str | None = None, progress: bool = True
) -> FitResult:
    """Validate ``values``, then :func:`snnbp.train.fit` into the run folder (resuming when possible)."""
    params = run_params_from_notebook(values)
    digest = params_hash(params_to_dict(params))
    return fit(params, run_folder(params.name, profile, output_dir, digest), progress=progress)


def summary_lines(metrics: dict[str, Any]) -> str:
    """The deterministic part of a run's metrics, rounded, one per line (safe to pin in nbval).

    ``test_accuracy`` is the run's model's: the last epoch's, or the validation-selected epoch's.
    """
    keys = ("method", "dataset", "network", "epochs", "test_accuracy", "best_test_accuracy", "best_epoch")
    if metrics.get("selected_epoch") is not None:  # a validation split chose the model
        keys += ("selected_epoch", "validation_accuracy", "final_test_accuracy", "model_checkpoint")
    out = []
    for key in keys:
        value = metrics.get(key)
        out.append(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return "\n".join(out)
