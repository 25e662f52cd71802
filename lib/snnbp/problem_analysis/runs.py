"""Recorded runs of notebook 01: their metrics and their trained networks.

The only part of the analysis that restores a model from a checkpoint (:func:`load_trained`); it
trains nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnbp.config import RunParams
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.datasets import load_dataset
from snnbp.paths import resolve
from snnbp.problem_analysis.theory import time_weight_gradient
from snnbp.run_folder import CHECKPOINT_NAME, read_checkpoint, restore_learner
from snnbp.stdbp.model import weighted_layer_io

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
    state, params = read_checkpoint(path)
    train, test, info = load_dataset(params.data)
    return TrainedRun(restore_learner(state, params, info), params, train, test, info, int(state["epoch"]))


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
