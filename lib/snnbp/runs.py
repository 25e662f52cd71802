"""What a training notebook calls: validate its parameters, train into the run folder, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from snnbp.config import RunParams, params_from_dict
from snnbp.paths import results_dir
from snnbp.train import FitResult, fit

PARAMETER_KEYS = ("name", "method", "notebook", "seed", "data", "train", "model")


def run_folder(name: str, profile: str, output_dir: str | None) -> Path:
    """``output_dir`` when given, else ``results/<profile>/<name>``."""
    return Path(output_dir) if output_dir else results_dir() / profile / name


def params_from_notebook(values: dict[str, Any]) -> RunParams:
    """Validate the parameters a notebook received (its literals or Papermill's injection)."""
    return params_from_dict({k: values[k] for k in PARAMETER_KEYS}, source="notebook parameters")


def train_from_notebook(values: dict[str, Any], *, profile: str, output_dir: str | None = None, progress: bool = True) -> FitResult:
    """Validate ``values``, then :func:`snnbp.train.fit` into the run folder (resuming when possible)."""
    params = params_from_notebook(values)
    return fit(params, run_folder(params.name, profile, output_dir), progress=progress)


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
