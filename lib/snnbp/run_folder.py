"""One run folder: its files, its checkpoints, the check that it belongs to the params at hand, and
rebuilding the model it saved.

A run folder ``results/<profile>/<name>/`` holds ``checkpoint.pt`` (the last epoch), ``best.pt``
(the epoch a validation hold-out chose), ``run.json`` (:mod:`snnbp.provenance`) and
``metrics.json``. :func:`inspect_run` says what a folder holds for a params hash (new, resume,
completed) and refuses one of other params; :func:`load_checkpoint` reads tensors and plain data
only; :func:`read_checkpoint` and :func:`restore_learner` are the one way the project rebuilds a
saved model (training, evaluation, the analyses and the YOSO study).
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnbp.config import RunParams, params_from_dict, run_identity
from snnbp.data.base import DatasetInfo
from snnbp.learner import Learner
from snnbp.methods import method_module

CHECKPOINT_NAME = "checkpoint.pt"


BEST_NAME = "best.pt"


RECORD_NAME = "run.json"


METRICS_NAME = "metrics.json"


class RunFolderError(RuntimeError):
    """A run folder cannot take this run without losing or misattributing results."""


class RunMismatchError(RunFolderError):
    """A run folder holds results, a checkpoint or a record of another run identity (other params
    or other inputs): the one mismatch error of every record (:func:`check_identity`)."""


class CheckpointMismatchError(RunMismatchError):
    """A training run folder holds a checkpoint or a record made with other params."""


MISMATCH_HINT = "move the folder away or rename the run so nothing is overwritten"
"""What a :class:`RunMismatchError` tells the user to do."""


def identity_hash(identity: Any) -> str:
    """sha256 of the canonical JSON (sorted keys) of a run's identity: the one hash that every
    record (training checkpoints and ``run.json``, evaluation ``metrics.json``) stores."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def check_identity(
    path: Path, stored: Any, digest: str, what: str, error: type[RunMismatchError] = RunMismatchError
) -> None:
    """Refuse a record at ``path`` whose stored hash is not ``digest``.

    Raises:
        RunMismatchError: (or the subclass ``error``) ``"<path> <what> (hash <stored> vs <digest>);
            move the folder away ..."``, hashes to 12 digits.
    """
    if stored != digest:
        raise error(f"{path} {what} (hash {str(stored)[:12]} vs {digest[:12]}); {MISMATCH_HINT}")


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file cannot be read."""


class UnsafeCheckpointError(CorruptCheckpointError):
    """A checkpoint file holds Python objects other than tensors and plain data (it could run code)."""


def params_hash(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the resolved params' :func:`snnbp.config.run_identity` (minus
    ``notebook``, ``profile``, ``train.num_threads``, ``train.eval_batch_size``, ``train.device``,
    the model options of :data:`snnbp.config.NOT_IDENTITY_MODEL` and unset training options)."""
    return identity_hash(run_identity(params))


def build_learner(params: RunParams, info: DatasetInfo, device: str | torch.device = "cpu") -> Learner:
    """The learner of ``params.method`` for dataset ``info``, computing on ``device``."""
    return method_module(params.method).build_learner(params.model, info, seed=params.seed, device=str(device))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fit`, with ``torch.load(weights_only=True)``.

    Raises:
        CorruptCheckpointError: naming the file when it is missing or cannot be read.
        UnsafeCheckpointError: the file holds objects other than tensors and plain data; it is
            refused without running anything in it.
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptCheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        unsafe = re.search(r"GLOBAL (\S+)|unrecognized function (\S+)|Unsupported class (\S+)", text)
        if unsafe:
            found = next(g for g in unsafe.groups() if g).strip(".,;")
            raise UnsafeCheckpointError(
                f"{path}: refused: the file holds Python objects, not only tensors and plain data (it names {found}); "
                "a checkpoint written by snnbp never does, and loading it could run code"
            ) from None
        detail = text.split("Unpickler error:")[-1]
        detail = " ".join(detail.split("Check the documentation")[0].split())[:200]
        raise CorruptCheckpointError(
            f"{path}: cannot read the checkpoint ({detail}); move it away to start over"
        ) from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise CorruptCheckpointError(
            f"{path}: cannot read the checkpoint ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            "move it away to start over"
        ) from None
    if not isinstance(state, dict) or not {"params", "learner", "epoch"} <= set(state):
        raise CorruptCheckpointError(
            f"{path}: not an snnbp checkpoint (keys {sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__})"
        )
    return state


_PLAIN_LEAVES = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.device, torch.Size)


def check_loadable(value: Any, where: str = "checkpoint") -> None:
    """Make sure ``value`` holds only what ``torch.load(weights_only=True)`` reads back.

    Raises:
        TypeError: naming the first entry of another type.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            check_loadable(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        for index, item in enumerate(value):
            check_loadable(item, f"{where}[{index}]")
    elif not isinstance(value, _PLAIN_LEAVES):
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}; a checkpoint holds "
            "tensors and plain data only"
        )


def non_finite_entry(value: Any, where: str = "") -> str | None:
    """The first entry of ``value`` (nested dicts/lists) that is a float tensor or float with NaN/inf."""
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            return None if bool(torch.isfinite(value).all()) else where
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = non_finite_entry(item, f"{where}[{key!r}]")
        if found is not None:
            return found
    return None


def read_record(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunFolderError(
            f"{path}: cannot read the run record ({exc}); move the folder away so that nothing is overwritten"
        ) from None
    if not isinstance(record, dict):
        raise RunFolderError(f"{path}: not a run record; move the folder away so that nothing is overwritten")
    return record


@dataclass(frozen=True)
class RunFolder:
    """What :func:`inspect_run` found in a run folder.

    Attributes:
        state: ``"new"`` (nothing there), ``"resume"`` (an unfinished run of the same params) or
            ``"completed"`` (a finished run of the same params: nothing to do).
        record: the folder's ``run.json`` (None when absent).
        checkpoint_epoch: epoch of ``checkpoint.pt`` (None when absent).
    """

    state: str
    record: dict[str, Any] | None
    checkpoint_epoch: int | None


def inspect_run(run_dir: str | Path, digest: str) -> RunFolder:
    """Check that ``run_dir`` can take a run of params hash ``digest`` without losing anything.

    Both the run's record (``run.json``) and its checkpoint are compared, since a committed run
    folder may hold a record without its (large) checkpoint.

    Raises:
        CheckpointMismatchError: the record or the checkpoint (or ``best.pt``) is of other params.
        RunFolderError: the folder holds results without a record, or a record that cannot be read.
        CorruptCheckpointError: a checkpoint cannot be read.
    """
    run_dir = Path(run_dir)
    epoch = None
    for name in (CHECKPOINT_NAME, BEST_NAME):
        path = run_dir / name
        if path.exists():
            state = load_checkpoint(path)
            check_identity(
                path, state.get("params_hash"), digest, "was made with other params", CheckpointMismatchError
            )
            if name == CHECKPOINT_NAME:
                epoch = int(state["epoch"])
    record = read_record(run_dir / RECORD_NAME)
    if record is not None:
        stored = record.get("params_hash")
        if (
            stored is None
            and isinstance(record.get("params"), dict)
            and isinstance(record["params"].get("train"), dict)
        ):
            stored = params_hash(record["params"])
        check_identity(run_dir / RECORD_NAME, stored, digest, "records a run of other params", CheckpointMismatchError)
    if record is None and epoch is None and (run_dir / METRICS_NAME).exists():
        raise RunFolderError(
            f"{run_dir} holds results ({METRICS_NAME}) but no run record or checkpoint says which "
            f"params made them; {MISMATCH_HINT}"
        )
    if record is not None and record.get("status") == "completed":
        return RunFolder("completed", record, epoch)
    return RunFolder("resume" if record is not None or epoch is not None else "new", record, epoch)


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], RunParams]:
    """A checkpoint written by :func:`fit` (:func:`load_checkpoint`) and its params, validated
    (an error names the file).

    Raises:
        CorruptCheckpointError, UnsafeCheckpointError: as :func:`load_checkpoint`.
        snnbp.config.ConfigError: the stored params do not validate.
    """
    path = Path(path)
    state = load_checkpoint(path)
    return state, params_from_dict(state["params"], f"{path} (stored params)")


def restore_learner(
    state: dict[str, Any], params: RunParams, info: DatasetInfo, device: str | torch.device = "cpu"
) -> Learner:
    """The learner of ``params`` for dataset ``info`` with the weights of ``state`` (:func:`read_checkpoint`):
    the one way the project rebuilds a saved model."""
    learner = build_learner(params, info, device)
    learner.load_state_dict(state["learner"])
    return learner
