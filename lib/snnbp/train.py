"""The one training loop for every method.

``fit`` builds the method's learner from the params, trains for the configured epochs and after
every epoch evaluates on the test split, appends to the history, and atomically writes a
checkpoint (model, optimiser, epoch, RNG states, params hash, versions), ``metrics.json`` and
``run.json``. With ``train.validation`` set, the last training samples are held out, evaluated
after every epoch, and the epoch with the best validation accuracy is the run's model
(``best.pt``, same format): the test split is reported, never used to select. A run folder that
holds a checkpoint of the same params resumes from it; one made with other params is an error
(results are never silently overwritten). A NaN/inf loss stops the run with an error naming the
epoch and batch.
"""

from __future__ import annotations

import hashlib
import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from snnbp.config import ConfigError, RunParams, params_from_dict, params_to_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.datasets import load_dataset
from snnbp.io import atomic_torch_save, atomic_write_json
from snnbp.learner import Batch, Learner
from snnbp.methods import method_module
from snnbp.provenance import RunRecord, package_versions
from snnbp.seeding import derive_seed

CHECKPOINT_NAME = "checkpoint.pt"
BEST_NAME = "best.pt"


class CheckpointMismatchError(RuntimeError):
    """A run folder holds a checkpoint made with other params."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file cannot be read."""


@dataclass
class FitResult:
    """What :func:`fit` returns: the per-epoch history, the final metrics and the learner."""

    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    learner: Any
    run_dir: Path
    resumed_from_epoch: int = 0
    predictions: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    labels: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))
    info: DatasetInfo | None = None


def params_hash(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the resolved params, minus fields that do not change results
    (``notebook``, ``train.num_threads``, ``train.eval_batch_size``, ``model.engine``).

    Unset (None) training options are left out, so an option added later keeps the identity of
    runs made before it existed.
    """
    relevant = {k: v for k, v in params.items() if k not in ("notebook",)}
    relevant["train"] = {k: v for k, v in params["train"].items()
                         if k not in ("num_threads", "eval_batch_size") and v is not None}
    if isinstance(relevant.get("model"), dict):  # the HM2-BP engine changes speed, not results
        relevant["model"] = {k: v for k, v in relevant["model"].items() if k != "engine"}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_learner(params: RunParams, info: DatasetInfo, device: str = "cpu") -> Learner:
    """The learner of ``params.method`` for dataset ``info``."""
    return method_module(params.method).build_learner(params.model, info, seed=params.seed, device=device)


def batches(split: LabelledSplit, batch_size: int, name: str, order: torch.Tensor | None = None):
    """Yield :class:`Batch` objects over ``split`` in ``order`` (default: as stored)."""
    order = torch.arange(len(split)) if order is None else order
    for start in range(0, len(split), batch_size):
        index = order[start : start + batch_size]
        yield Batch(split.inputs[index], split.labels[index], index, name)


def predict_split(learner: Learner, split: LabelledSplit, batch_size: int, name: str = "test", progress: bool = True) -> torch.Tensor:
    """Predicted classes ``[N]`` for every sample of ``split``."""
    chunks = []
    steps = math.ceil(len(split) / batch_size)
    for batch in tqdm(batches(split, batch_size, name), total=steps, desc=f"eval {name}", leave=False, disable=not progress or None):
        chunks.append(learner.predict(batch).cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.long)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``predictions`` equal to ``labels``."""
    return float((predictions == labels).to(torch.float64).mean().item()) if len(labels) else float("nan")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit`.

    Raises:
        CorruptCheckpointError: naming the file when it cannot be read.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CorruptCheckpointError(
            f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc}); move it away to start over"
        ) from exc
    if not isinstance(state, dict) or not {"params", "learner", "epoch"} <= set(state):
        raise CorruptCheckpointError(f"{path}: not an snnbp checkpoint (keys {sorted(state) if isinstance(state, dict) else type(state)})")
    return state


def _check_finite(stats: dict[str, float], epoch: int, step: int) -> None:
    loss = stats.get("loss", 0.0)
    if not math.isfinite(loss):
        raise FloatingPointError(f"non-finite training loss ({loss}) at epoch {epoch}, batch {step}; the run stops here")


def selected_epoch(history: list[dict[str, Any]]) -> int | None:
    """1-based epoch of the best validation accuracy (the first on ties); None without validation."""
    curve = [h.get("validation_accuracy") for h in history]
    if not curve or any(v is None for v in curve):
        return None
    return max(range(len(curve)), key=curve.__getitem__) + 1


def _summary(params: RunParams, info: DatasetInfo, learner: Any, history: list[dict[str, Any]]) -> dict[str, Any]:
    test_curve = [h["test_accuracy"] for h in history]
    best_index = max(range(len(test_curve)), key=test_curve.__getitem__) if test_curve else None
    chosen = selected_epoch(history)
    model_test = test_curve[chosen - 1] if chosen else (test_curve[-1] if test_curve else None)
    train_seconds = sum(h["train_seconds"] for h in history)
    samples = sum(h["train_samples"] for h in history)
    return {
        "name": params.name,
        "method": params.method,
        "dataset": info.name,
        "dataset_key": info.key,
        "is_standin": info.is_standin,
        "network": getattr(learner, "network", "unknown"),
        "epochs": len(history),
        "epochs_planned": params.train.epochs,
        "batch_size": params.train.batch_size,
        "seed": params.seed,
        "test_accuracy": model_test,
        "final_test_accuracy": test_curve[-1] if test_curve else None,
        "best_test_accuracy": test_curve[best_index] if test_curve else None,
        "best_epoch": (best_index + 1) if best_index is not None else None,
        "validation_samples": params.train.validation or 0,
        "selected_epoch": chosen,
        "validation_accuracy": history[chosen - 1]["validation_accuracy"] if chosen else None,
        "model_checkpoint": BEST_NAME if chosen else CHECKPOINT_NAME,
        "train_seconds": train_seconds,
        "samples_per_second": samples / train_seconds if train_seconds > 0 else None,
        "peak_rss_mb": peak_rss_mb(),
        "history": history,
    }


def fit(
    params: RunParams,
    run_dir: str | Path,
    *,
    device: str = "cpu",
    resume: bool = True,
    progress: bool = True,
    data: tuple[LabelledSplit, LabelledSplit, DatasetInfo] | None = None,
    stop_after_epoch: int | None = None,
) -> FitResult:
    """Train ``params`` into ``run_dir`` and return the history, final metrics and learner.

    Args:
        params: the validated params.
        run_dir: the run's folder (created); holds checkpoint.pt, metrics.json, run.json.
        device: torch device for the learner.
        resume: continue from ``run_dir/checkpoint.pt`` when it exists and matches the params.
        progress: show tqdm bars (they are also quiet under ``TQDM_DISABLE=1``).
        data: pre-loaded ``(train, test, info)``; loaded from ``params.data`` when None.
        stop_after_epoch: stop (as if interrupted) after this epoch; for resume tests.

    Raises:
        CheckpointMismatchError: the folder's checkpoint was made with other params.
        CorruptCheckpointError: the folder's checkpoint cannot be read.
        FloatingPointError: a non-finite loss.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if params.train.num_threads:
        torch.set_num_threads(params.train.num_threads)
    resolved = params_to_dict(params)
    digest = params_hash(resolved)
    train_split, test_split, info = data if data is not None else load_dataset(params.data)
    try:
        train_split, validation_split = train_split.split_last(params.train.validation)
    except ValueError as exc:
        raise ConfigError(f"train.validation: {exc}") from exc
    learner = build_learner(params, info, device)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if checkpoint_path.exists():
        if not resume:
            raise CheckpointMismatchError(f"{checkpoint_path} exists and resume is off; move it away or choose another folder")
        state = load_checkpoint(checkpoint_path)
        if state.get("params_hash") != digest:
            raise CheckpointMismatchError(
                f"{checkpoint_path} was made with other params (hash {str(state.get('params_hash'))[:12]} vs "
                f"{digest[:12]}); move the folder away or rename the run so nothing is overwritten"
            )
        learner.load_state_dict(state["learner"])
        torch.set_rng_state(state["torch_rng_state"])
        history = list(state["history"])
        start_epoch = int(state["epoch"])
    record = RunRecord(run_dir / "run.json", resolved, params.seed)
    record.start(params_hash=digest, resumed_from_epoch=start_epoch, run_dir=str(run_dir))
    eval_batch = params.train.eval_batch_size or params.train.batch_size
    predictions = torch.empty(0, dtype=torch.long)
    try:
        for epoch in range(start_epoch + 1, params.train.epochs + 1):
            history.append(_train_epoch(learner, train_split, params, epoch, progress))
            history[-1].update(_jsonable(learner.end_epoch(epoch)))
            predictions = predict_split(learner, test_split, eval_batch, "test", progress)
            history[-1]["test_accuracy"] = accuracy(predictions, test_split.labels)
            if len(validation_split):
                history[-1]["validation_accuracy"] = accuracy(
                    predict_split(learner, validation_split, eval_batch, "validation", progress), validation_split.labels)
            if progress:
                tqdm.write(_epoch_line(history[-1]), file=sys.stderr)
            state = {
                "params": resolved, "params_hash": digest, "epoch": epoch, "learner": learner.state_dict(),
                "history": history, "torch_rng_state": torch.get_rng_state(), "versions": package_versions(),
            }
            atomic_torch_save(checkpoint_path, state)
            if selected_epoch(history) == epoch:
                atomic_torch_save(run_dir / BEST_NAME, state)
            atomic_write_json(run_dir / "metrics.json", _summary(params, info, learner, history))
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                break
        chosen = selected_epoch(history)
        if chosen is not None and chosen != len(history):
            learner.load_state_dict(load_checkpoint(run_dir / BEST_NAME)["learner"])
            predictions = torch.empty(0, dtype=torch.long)
        if len(predictions) == 0:
            predictions = predict_split(learner, test_split, eval_batch, "test", progress)
        metrics = _summary(params, info, learner, history)
        atomic_write_json(run_dir / "metrics.json", metrics)
        if len(history) >= params.train.epochs:
            record.finish(metrics={k: v for k, v in metrics.items() if k != "history"})
        else:
            record.fail(RuntimeError(f"stopped after epoch {len(history)} of {params.train.epochs}; run again to resume"))
    except BaseException as error:
        record.fail(error)
        raise
    return FitResult(history, metrics, learner, run_dir, start_epoch, predictions, test_split.labels, info)


def _train_epoch(learner: Learner, split: LabelledSplit, params: RunParams, epoch: int, progress: bool) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(derive_seed(params.seed, f"shuffle/{epoch}"))
    order = torch.randperm(len(split), generator=generator) if params.train.shuffle else None
    steps = math.ceil(len(split) / params.train.batch_size)
    loss_sum = correct = 0.0
    seen = 0
    has_correct = False
    started = time.perf_counter()
    bar = tqdm(batches(split, params.train.batch_size, "train", order), total=steps,
               desc=f"epoch {epoch}/{params.train.epochs}", leave=False, disable=not progress or None)
    for step, batch in enumerate(bar, start=1):
        stats = learner.train_step(batch)
        _check_finite(stats, epoch, step)
        size = len(batch.labels)
        loss_sum += stats["loss"] * size
        if "correct" in stats:
            has_correct = True
            correct += stats["correct"]
        seen += size
    seconds = time.perf_counter() - started
    return {
        "epoch": epoch,
        "train_loss": loss_sum / max(seen, 1),
        "train_accuracy": correct / seen if has_correct and seen else None,
        "train_seconds": seconds,
        "train_samples": seen,
        "samples_per_second": seen / seconds if seconds > 0 else None,
    }


def _epoch_line(entry: dict[str, Any]) -> str:
    parts = [f"epoch {entry['epoch']}", f"loss {entry['train_loss']:.4f}"]
    if entry.get("train_accuracy") is not None:
        parts.append(f"train acc {entry['train_accuracy']:.4f}")
    if entry.get("validation_accuracy") is not None:
        parts.append(f"val acc {entry['validation_accuracy']:.4f}")
    parts.append(f"test acc {entry['test_accuracy']:.4f}")
    parts.append(f"{entry['samples_per_second']:.0f} samples/s")
    return " | ".join(parts)


def _jsonable(stats: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in stats.items():
        if isinstance(value, torch.Tensor):
            value = value.tolist()
        out[key] = value
    return out


def evaluate_checkpoint(path: str | Path, split: str = "test", device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Rebuild the model saved in checkpoint ``path`` and recompute its accuracy on ``split``.

    Returns:
        ``{"accuracy", "split", "samples", "epoch", "predictions", "labels", "params"}``.
    """
    path = Path(path)
    state = load_checkpoint(path)
    params = params_from_dict(state["params"], f"{path} (stored params)")
    train_split, test_split, info = load_dataset(params.data)
    train_split, validation_split = train_split.split_last(params.train.validation)
    learner = build_learner(params, info, device)
    learner.load_state_dict(state["learner"])
    chosen = {"test": test_split, "train": train_split, "validation": validation_split}[split]
    batch = params.train.eval_batch_size or params.train.batch_size
    predictions = predict_split(learner, chosen, batch, split, progress)
    return {
        "accuracy": accuracy(predictions, chosen.labels),
        "split": split,
        "samples": len(chosen),
        "epoch": int(state["epoch"]),
        "predictions": predictions,
        "labels": chosen.labels,
        "params": params,
    }
