"""``snnbp figures RUN_DIR``: redraw a training run's figures from what the run recorded, never retraining.

The learning curves come from ``metrics.json`` (its per-epoch history); the confusion matrix
from the run's stored test predictions (``test_predictions.json``, written by
:func:`snnbp.train.fit`). A run recorded before predictions were stored has none: with
``evaluate=True`` its saved model (``metrics["model_checkpoint"]``) is evaluated once on the test
split (inference only), the predictions are kept only if they reproduce the recorded test
accuracy exactly, and they are stored beside the run for the next redraw. Without predictions the
confusion matrix is left as it is, and the report says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from snnbp.classes import class_names
from snnbp.io import atomic_write_bytes
from snnbp.results_view import LOSS_NAMES, PREDICTIONS_NAME, read_predictions, read_run


class PredictionsMismatchError(RuntimeError):
    """A checkpoint's predictions do not reproduce the test accuracy its run recorded."""


def write_predictions(run_dir: str | Path, predictions, labels) -> Path:
    """Store a run's test predictions and labels as ``<run_dir>/test_predictions.json`` (atomically).

    Shape:
        - predictions, labels: ``[N]`` class indices (tensors or sequences).
    """
    predictions, labels = [int(p) for p in predictions], [int(y) for y in labels]
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    path = Path(run_dir) / PREDICTIONS_NAME
    atomic_write_bytes(path, json.dumps({"predictions": predictions, "labels": labels}, separators=(",", ":")).encode())
    return path


@dataclass
class RenderReport:
    """What :func:`render_run` did: the figures written and, for each one left alone, why."""

    written: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def predictions_from_checkpoint(
    run_dir: Path, recorded_accuracy: float, checkpoint: str
) -> tuple[list[int], list[int]]:
    """Evaluate the run's saved model on its test split; refuse predictions that miss the recorded accuracy.

    Raises:
        FileNotFoundError: the checkpoint is absent.
        PredictionsMismatchError: the accuracy differs from ``recorded_accuracy`` (by more than 1e-9).
    """
    from snnbp.train import evaluate_checkpoint

    path = run_dir / checkpoint
    if not path.is_file():
        raise FileNotFoundError(f"{path} is absent")
    result = evaluate_checkpoint(path, split="test", progress=False)
    if abs(result["accuracy"] - recorded_accuracy) > 1e-9:
        raise PredictionsMismatchError(
            f"{path}: test accuracy {result['accuracy']:.6f} on re-evaluation, "
            f"{recorded_accuracy:.6f} recorded; its predictions are not the run's"
        )
    return [int(p) for p in result["predictions"]], [int(y) for y in result["labels"]]


def render_run(run_dir: str | Path, *, evaluate: bool = False) -> RenderReport:
    """Redraw ``<run_dir>/figures/learning_curves.png`` and ``confusion_matrix.png`` from the run's records.

    Args:
        run_dir: a training run folder (``metrics.json`` with a history, ``run.json`` with the params).
        evaluate: when no predictions are stored, evaluate the saved model once and store them.

    Raises:
        FileNotFoundError: ``run_dir`` holds no training run's ``metrics.json``.
        PredictionsMismatchError: see :func:`predictions_from_checkpoint`.
    """
    from snnbp import plots

    run = read_run(run_dir)
    if not run.history or run.metrics.get("test_accuracy") is None:
        raise FileNotFoundError(f"{Path(run_dir) / 'metrics.json'} records no training run (no per-epoch history)")
    report = RenderReport()
    figures = run.run_dir / "figures"
    fig = plots.learning_curves(
        run.history, run.title(), loss_name=LOSS_NAMES.get(run.method), selected_epoch=run.metrics.get("selected_epoch")
    )
    plots.save(fig, figures / "learning_curves.png")
    plots.plt.close(fig)
    report.written.append(figures / "learning_curves.png")
    stored = read_predictions(run.run_dir)
    if stored is None and evaluate:
        checkpoint = str(run.metrics.get("model_checkpoint") or "checkpoint.pt")
        try:
            stored = predictions_from_checkpoint(run.run_dir, float(run.metrics["test_accuracy"]), checkpoint)
        except FileNotFoundError as missing:
            report.skipped["confusion_matrix.png"] = f"no stored predictions and {missing}"
        else:
            write_predictions(run.run_dir, *stored)
    if stored is None:
        report.skipped.setdefault(
            "confusion_matrix.png",
            f"no stored predictions ({PREDICTIONS_NAME}); run with --evaluate to compute them from the saved model",
        )
        return report
    predictions, labels = stored
    num_classes = max(max(predictions), max(labels)) + 1
    names = class_names(run.metrics.get("dataset_key"))
    if names is not None and len(names) >= num_classes:
        num_classes = len(names)
    fig = plots.confusion_matrix(predictions, labels, num_classes, run.title(), class_names=names)
    plots.save(fig, figures / "confusion_matrix.png")
    plots.plt.close(fig)
    report.written.append(figures / "confusion_matrix.png")
    return report
