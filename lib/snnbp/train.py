"""The one training loop for every method.

``fit`` builds the method's learner from the params, trains for the configured epochs and after
every epoch evaluates on the test split, appends to the history, and atomically writes a
checkpoint (model, optimiser, epoch, RNG states, params hash, versions), ``metrics.json`` and
``run.json``. With ``train.validation`` set, the last training samples are held out, evaluated
after every epoch, and the epoch with the best validation accuracy is the run's model
(``best.pt``, same format): the test split is reported, never used to select.

Nothing is ever lost (:func:`inspect_run`): a run folder whose ``run.json`` or checkpoint records
other params is refused; one that holds results without any record is refused; a folder whose
run of the same params stopped resumes from its checkpoint; a completed run is left exactly as it
is (``fit`` returns its model and writes nothing). The folder is locked while a run writes into it
(:func:`snnbp.io.run_lock`). Checkpoints hold tensors and plain data only and load with
``weights_only=True``: a file that holds anything else is refused, never unpickled. A NaN/inf
loss, gradient or model state stops the run with an error naming the epoch and batch and the last
good checkpoint; a non-finite model state is never saved.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from snnbp.config import ConfigError, RunParams, params_to_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.datasets import load_dataset
from snnbp.devices import cpu_only_reason, resolve_device, run_device
from snnbp.distributed import DataParallel, check_shards
from snnbp.io import atomic_torch_save, atomic_write_json, remove_stale_temporaries, run_lock
from snnbp.learner import Batch, Learner
from snnbp.paths import root_relative
from snnbp.progress import bar as progress_bar
from snnbp.progress import line as progress_line
from snnbp.provenance import RunRecord, package_versions
from snnbp.run_folder import BEST_NAME as BEST_NAME
from snnbp.run_folder import CHECKPOINT_NAME as CHECKPOINT_NAME
from snnbp.run_folder import METRICS_NAME as METRICS_NAME
from snnbp.run_folder import RECORD_NAME as RECORD_NAME
from snnbp.run_folder import CheckpointMismatchError as CheckpointMismatchError
from snnbp.run_folder import CorruptCheckpointError as CorruptCheckpointError
from snnbp.run_folder import RunFolder as RunFolder
from snnbp.run_folder import RunFolderError as RunFolderError
from snnbp.run_folder import UnsafeCheckpointError as UnsafeCheckpointError
from snnbp.run_folder import build_learner as build_learner
from snnbp.run_folder import check_loadable as check_loadable
from snnbp.run_folder import inspect_run as inspect_run
from snnbp.run_folder import load_checkpoint as load_checkpoint
from snnbp.run_folder import non_finite_entry as non_finite_entry
from snnbp.run_folder import params_hash as params_hash
from snnbp.run_folder import read_checkpoint as read_checkpoint
from snnbp.run_folder import restore_learner as restore_learner
from snnbp.seeding import derive_seed


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


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def batches(split: LabelledSplit, batch_size: int, name: str, order: torch.Tensor | None = None):
    """Yield :class:`Batch` objects over ``split`` in ``order`` (default: as stored)."""
    order = torch.arange(len(split)) if order is None else order
    for start in range(0, len(split), batch_size):
        index = order[start : start + batch_size]
        yield Batch(split.inputs[index], split.labels[index], index, name)


def predict_split(
    learner: Learner, split: LabelledSplit, batch_size: int, name: str = "test", progress: bool = True
) -> torch.Tensor:
    """Predicted classes ``[N]`` for every sample of ``split``."""
    chunks = []
    steps = math.ceil(len(split) / batch_size)
    for batch in progress_bar(
        batches(split, batch_size, name), progress=progress, total=steps, desc=f"eval {name}", leave=False
    ):
        chunks.append(learner.predict(batch).cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.long)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``predictions`` equal to ``labels``."""
    return float((predictions == labels).to(torch.float64).mean().item()) if len(labels) else float("nan")


def _check_finite(stats: dict[str, float]) -> None:
    loss = stats.get("loss", 0.0)
    if not math.isfinite(loss):
        raise FloatingPointError(f"non-finite training loss ({loss})")


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
    device: str | None = None,
    resume: bool = True,
    progress: bool = True,
    data: tuple[LabelledSplit, LabelledSplit, DatasetInfo] | None = None,
    stop_after_epoch: int | None = None,
    parallel: DataParallel | None = None,
) -> FitResult:
    """Train ``params`` into ``run_dir`` and return the history, final metrics and learner.

    Args:
        params: the validated params.
        run_dir: the run's folder (created); holds checkpoint.pt, metrics.json, run.json.
        device: where to compute (``auto``, ``cpu``, ``cuda``, ``cuda:<index>``); None:
            ``params.train.device`` (:func:`snnbp.devices.run_device`). Checked before anything
            is loaded or written.
        resume: continue from ``run_dir/checkpoint.pt`` when it exists and matches the params.
        progress: show bars and the per-epoch lines (:mod:`snnbp.progress`; bars are quiet under
            ``TQDM_DISABLE=1``, the epoch lines are not).
        data: pre-loaded ``(train, test, info)``; loaded from ``params.data`` when None.
        stop_after_epoch: stop (as if interrupted) after this epoch; for resume tests.
        parallel: this process's place in a data-parallel run (:mod:`snnbp.distributed`): every
            rank trains its shard of each batch; rank 0 alone checks the folder, evaluates and
            writes, and sends the others the state it starts from (a checkpoint to resume).

    A folder that holds a completed run of the same params is left untouched: the result is
    rebuilt from its checkpoint and nothing is written.

    Raises:
        ConfigError: CUDA asked for where torch sees none, or by a run that runs on the CPU only.
        CheckpointMismatchError: the folder's checkpoint or record was made with other params.
        RunFolderError: the folder holds results without a record, or a completed run without
            the checkpoint needed to rebuild its model.
        CorruptCheckpointError: the folder's checkpoint cannot be read (or is unsafe).
        snnbp.io.RunLockedError: another process is running into the folder.
        FloatingPointError: a non-finite loss, gradient or model state, naming epoch and batch.
    """
    device = run_device(params, device, source=f"run {params.name!r}", flag="device")
    run_dir = Path(run_dir)
    resolved = params_to_dict(params)
    digest = params_hash(resolved)
    if parallel is not None and not parallel.is_main:
        return _follow(params, run_dir, device, data, parallel, stop_after_epoch)
    with run_lock(run_dir):
        remove_stale_temporaries(run_dir)
        folder = inspect_run(run_dir, digest)
        if folder.state == "completed":
            if parallel is not None:
                parallel.broadcast({"completed": True})
            return _completed(params, run_dir, folder, device, progress, data)
        if params.train.num_threads:
            torch.set_num_threads(params.train.num_threads)
        checkpoint_path = run_dir / CHECKPOINT_NAME
        if folder.checkpoint_epoch is not None and not resume:
            raise CheckpointMismatchError(
                f"{checkpoint_path} exists and resume is off; move it away or choose another folder"
            )
        train_split, test_split, info = data if data is not None else load_dataset(params.data)
        try:
            train_split, validation_split = train_split.hold_out(
                params.train.validation, stratified=bool(params.train.validation_stratified)
            )
        except ValueError as exc:
            raise ConfigError(f"train.validation: {exc}") from exc
        start = load_checkpoint(checkpoint_path) if folder.checkpoint_epoch is not None else None
        if parallel is not None:
            check_shards(len(train_split), params.train.batch_size, parallel.world_size)
            parallel.broadcast({"completed": False, "state": start})
        learner, history, start_epoch = _start(params, info, device, start, parallel)
        processes = {} if parallel is None else {"processes": parallel.world_size}
        record = RunRecord(run_dir / RECORD_NAME, resolved, params.seed)
        record.start(
            params_hash=digest,
            resumed_from_epoch=start_epoch,
            run_dir=root_relative(run_dir),
            **processes,
            device=str(device),
        )
        commit = (record.attempt or record.content)["git"]
        last_good = f"{checkpoint_path} (epoch {start_epoch})" if start_epoch else "none (no epoch completed)"
        eval_batch = params.train.eval_batch_size or params.train.batch_size
        predictions = torch.empty(0, dtype=torch.long)
        try:
            for epoch in range(start_epoch + 1, params.train.epochs + 1):
                history.append(_train_epoch(learner, train_split, params, epoch, progress, last_good, parallel))
                history[-1].update(_jsonable(learner.end_epoch(epoch)))
                learner_state = learner.state_dict()
                bad = non_finite_entry(learner_state, "learner")
                if bad is not None:
                    raise FloatingPointError(
                        f"non-finite model state {bad} after epoch {epoch}; not saved. The last good "
                        f"checkpoint is {last_good}"
                    )
                predictions = predict_split(learner, test_split, eval_batch, "test", progress)
                history[-1]["test_accuracy"] = accuracy(predictions, test_split.labels)
                if len(validation_split):
                    history[-1]["validation_accuracy"] = accuracy(
                        predict_split(learner, validation_split, eval_batch, "validation", progress),
                        validation_split.labels,
                    )
                progress_line(_epoch_line(history[-1]), progress=progress)
                state = {
                    "params": resolved,
                    "params_hash": digest,
                    "epoch": epoch,
                    "learner": learner_state,
                    "history": history,
                    "torch_rng_state": torch.get_rng_state(),
                    "versions": package_versions(),
                    "git": commit,
                }
                check_loadable(state)
                atomic_torch_save(checkpoint_path, state)
                last_good = f"{checkpoint_path} (epoch {epoch})"
                if selected_epoch(history) == epoch:
                    atomic_torch_save(run_dir / BEST_NAME, state)
                atomic_write_json(run_dir / METRICS_NAME, _summary(params, info, learner, history))
                if stop_after_epoch is not None and epoch >= stop_after_epoch:
                    break
            chosen = selected_epoch(history)
            if chosen is not None and chosen != len(history):
                learner.load_state_dict(load_checkpoint(run_dir / BEST_NAME)["learner"])
                predictions = torch.empty(0, dtype=torch.long)
            if len(predictions) == 0:
                predictions = predict_split(learner, test_split, eval_batch, "test", progress)
            metrics = _summary(params, info, learner, history)
            metrics["test_samples"] = len(test_split)
            atomic_write_json(run_dir / METRICS_NAME, metrics)
            _store_predictions(run_dir, predictions, test_split.labels)
            done = {"epochs_trained": len(history) - start_epoch}
            if len(history) >= params.train.epochs:
                record.finish(metrics={k: v for k, v in metrics.items() if k != "history"}, attempt=done)
            else:
                record.fail(
                    RuntimeError(f"stopped after epoch {len(history)} of {params.train.epochs}; run again to resume"),
                    attempt=done,
                )
        except BaseException as error:
            record.fail(error, attempt={"epochs_trained": max(len(history) - start_epoch, 0)})
            raise
    return FitResult(history, metrics, learner, run_dir, start_epoch, predictions, test_split.labels, info)


def _start(
    params: RunParams, info: DatasetInfo, device: Any, state: dict[str, Any] | None, parallel: DataParallel | None
) -> tuple[Learner, list[dict[str, Any]], int]:
    """The learner (from the checkpoint ``state`` when given, its gradients reduced over the ranks
    of ``parallel``), the history so far and the last epoch done."""
    learner = build_learner(params, info, device)
    if parallel is not None:
        parallel.attach(learner, params.method)
    if state is None:
        return learner, [], 0
    learner.load_state_dict(state["learner"])
    torch.set_rng_state(state["torch_rng_state"])
    return learner, list(state["history"]), int(state["epoch"])


def _follow(
    params: RunParams,
    run_dir: Path,
    device: Any,
    data: tuple[LabelledSplit, LabelledSplit, DatasetInfo] | None,
    parallel: DataParallel,
    stop_after_epoch: int | None,
) -> FitResult:
    """A rank other than 0 of a data-parallel run: train its shards from the state rank 0 sends;
    no evaluation, nothing written (``metrics`` empty)."""
    if params.train.num_threads:
        torch.set_num_threads(params.train.num_threads)
    train_split, _, info = data if data is not None else load_dataset(params.data)
    train_split, _ = train_split.hold_out(params.train.validation, stratified=bool(params.train.validation_stratified))
    check_shards(len(train_split), params.train.batch_size, parallel.world_size)
    start = parallel.broadcast(None)
    if start["completed"]:
        return FitResult([], {}, None, run_dir, info=info)
    learner, history, start_epoch = _start(params, info, device, start["state"], parallel)
    for epoch in range(start_epoch + 1, params.train.epochs + 1):
        history.append(_train_epoch(learner, train_split, params, epoch, False, parallel=parallel))
        history[-1].update(_jsonable(learner.end_epoch(epoch)))
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break
    return FitResult(history, {}, learner, run_dir, start_epoch, info=info)


def _store_predictions(run_dir: Path, predictions: torch.Tensor, labels: torch.Tensor) -> None:
    """The run model's test predictions beside its metrics, so that its confusion matrix can be redrawn
    without the model or the data (``snnbp figures``)."""
    from snnbp.figures import write_predictions

    write_predictions(run_dir, predictions.tolist(), labels.tolist())


def _completed(
    params: RunParams,
    run_dir: Path,
    folder: RunFolder,
    device: torch.device,
    progress: bool,
    data: tuple[LabelledSplit, LabelledSplit, DatasetInfo] | None,
) -> FitResult:
    """The result of a completed run, rebuilt from its checkpoint; writes nothing."""
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if folder.checkpoint_epoch is None:
        raise RunFolderError(
            f"{run_dir / RECORD_NAME} records a completed run of these params, but {checkpoint_path} is "
            "absent, so its model cannot be rebuilt; nothing was changed. To train it again, move the "
            "folder away or give another output folder"
        )
    state = load_checkpoint(checkpoint_path)
    history = list(state["history"])
    train_split, test_split, info = data if data is not None else load_dataset(params.data)
    learner = build_learner(params, info, device)
    chosen = selected_epoch(history)
    model_state = load_checkpoint(run_dir / BEST_NAME) if chosen is not None and chosen != len(history) else state
    learner.load_state_dict(model_state["learner"])
    try:
        metrics = json.loads((run_dir / METRICS_NAME).read_text())
    except (OSError, ValueError):
        metrics = _summary(params, info, learner, history)
    eval_batch = params.train.eval_batch_size or params.train.batch_size
    predictions = predict_split(learner, test_split, eval_batch, "test", progress)
    progress_line(f"{run_dir}: completed run of these params, nothing to do", progress=progress)
    return FitResult(history, metrics, learner, run_dir, int(state["epoch"]), predictions, test_split.labels, info)


def _train_epoch(
    learner: Learner,
    split: LabelledSplit,
    params: RunParams,
    epoch: int,
    progress: bool,
    last_good: str = "unknown",
    parallel: DataParallel | None = None,
) -> dict[str, Any]:
    """One pass over ``split`` in the epoch's seeded order (each rank of ``parallel`` training its
    shard of every batch); the loss, accuracy and sample counts are the global batch's."""
    generator = torch.Generator().manual_seed(derive_seed(params.seed, f"shuffle/{epoch}"))
    order = torch.randperm(len(split), generator=generator) if params.train.shuffle else None
    steps = math.ceil(len(split) / params.train.batch_size)
    loss_sum = correct = 0.0
    seen = 0
    has_correct = False
    started = time.perf_counter()
    bar = progress_bar(
        batches(split, params.train.batch_size, "train", order),
        progress=progress,
        total=steps,
        desc=f"epoch {epoch}/{params.train.epochs}",
        leave=False,
    )
    for step, batch in enumerate(bar, start=1):
        part = batch if parallel is None else parallel.shard(batch)
        try:
            stats = learner.train_step(part)
            _check_finite(stats)
        except FloatingPointError as error:  # the learners do not know the epoch and batch: add them
            raise FloatingPointError(
                f"{error} at epoch {epoch}, batch {step} of {steps}; the run stops here. "
                f"The last good checkpoint is {last_good}"
            ) from error
        size = len(part.labels)
        loss_sum += stats["loss"] * size
        if "correct" in stats:
            has_correct = True
            correct += stats["correct"]
        seen += size
    seconds = time.perf_counter() - started
    if parallel is not None:
        loss_sum, correct, total = parallel.sum_values(loss_sum, correct, seen)
        seen = int(total)
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


def evaluate_checkpoint(
    path: str | Path, split: str = "test", device: str = "cpu", progress: bool = True
) -> dict[str, Any]:
    """Rebuild the model saved in checkpoint ``path`` and recompute its accuracy on ``split``, on ``device``
    (``auto``, ``cpu``, ``cuda`` or ``cuda:<index>``; checked before the data is loaded).

    Returns:
        ``{"accuracy", "split", "samples", "epoch", "predictions", "labels", "params"}``.
    """
    path = Path(path)
    state, params = read_checkpoint(path)
    device = resolve_device(device, source=f"{path}: device", cpu_only=cpu_only_reason(params.model))
    train_split, test_split, info = load_dataset(params.data)
    train_split, validation_split = train_split.hold_out(
        params.train.validation, stratified=bool(params.train.validation_stratified)
    )
    learner = restore_learner(state, params, info, device)
    chosen = {"test": test_split, "train": train_split, "validation": validation_split}[split]
    if len(chosen) == 0:
        raise ConfigError(
            f"{path}: the run has no {split} split (train.validation is unset)"
            if split == "validation"
            else f"{path}: the {split} split of {params.data.dataset} is empty"
        )
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
