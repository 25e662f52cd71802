"""Data-parallel training: one run over several processes with ``torch.distributed``.

Started by ``torchrun --nproc-per-node N -m snnbp train PARAMS.yaml`` (or ``snnbp train --processes
N``), every process (rank) builds the same learner from the run's seed and walks the same global
batches (the loop's seeded shuffle); each takes its shard (:func:`shard_bounds`: contiguous, sizes
differing by at most one) and the gradients are summed over the ranks before every update, so all
ranks apply the same update and hold the same weights. With ``B_r`` samples on rank ``r`` of a
global batch of ``B``, a learner's mean gradient ``g_r`` over its shard enters as

    g = sum_r (B_r / B) g_r

which is the mean gradient over the global batch (:meth:`DataParallel.average_`); a learner that
sums per-sample gradients (HM2-BP's event engine) all-reduces its sums and divides by ``B``.
Learners with a ``torch.optim`` optimiser (STDBP, the ANN) are reduced by a hook that runs before
every ``optimizer.step()`` (:meth:`DataParallel.attach`); a learner with hand-written gradients
takes the group itself (``use_data_parallel``, HM2-BP).

Rank 0 alone checks and locks the run folder, evaluates, and writes checkpoints and records; it
sends the starting state (a checkpoint to resume from) to the other ranks (:meth:`DataParallel.broadcast`).
gloo on the CPU, NCCL on CUDA (:func:`backend_for`).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from snnbp.config import ConfigError
from snnbp.learner import Batch

WORLD_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
"""What ``torchrun`` sets in every process it starts."""

COLLECTIVE_TIMEOUT = datetime.timedelta(hours=1)
"""How long a rank waits in a collective: the others wait there while rank 0 evaluates an epoch."""


def shard_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s part of ``size`` samples: contiguous, in rank order,
    sizes differing by at most one.

    >>> [shard_bounds(10, r, 3) for r in range(3)]
    [(0, 3), (3, 6), (6, 10)]
    """
    return size * rank // world_size, size * (rank + 1) // world_size


def backend_for(device: str | torch.device) -> str:
    """``nccl`` for a CUDA device, else ``gloo``."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@dataclass
class DataParallel:
    """This process's place in a data-parallel run, and the collectives the loop and learners use.

    Attributes:
        rank, world_size: this process and the number of processes.
        share: ``B_r / B`` of the global batch :meth:`shard` cut last.
        global_size: ``B`` of that batch.
    """

    rank: int
    world_size: int
    share: float = 1.0
    global_size: int = 0
    _hooks: list[Any] = field(default_factory=list, repr=False)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that evaluates and writes."""
        return self.rank == 0

    def shard(self, batch: Batch) -> Batch:
        """This rank's contiguous part of a global ``batch`` (and the share of it, for :meth:`average_`)."""
        start, stop = shard_bounds(len(batch.labels), self.rank, self.world_size)
        self.global_size = len(batch.labels)
        self.share = (stop - start) / self.global_size
        return Batch(batch.inputs[start:stop], batch.labels[start:stop], batch.indices[start:stop], batch.split)

    def sum_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Replace every tensor by its sum over the ranks, in place."""
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)

    def max_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Replace every tensor by its element-wise maximum over the ranks, in place."""
        for tensor in tensors:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)

    def average_(self, gradients: Iterable[torch.Tensor]) -> None:
        """Turn every rank's mean gradient over its shard into the mean over the global batch, in place:
        ``g <- sum_r (B_r / B) g_r``."""
        for gradient in gradients:
            gradient.mul_(self.share)
            dist.all_reduce(gradient, op=dist.ReduceOp.SUM)

    def sum_values(self, *values: float) -> tuple[float, ...]:
        """Python numbers summed over the ranks (float64)."""
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        return tuple(float(v) for v in totals.cpu())

    @property
    def device(self) -> torch.device:
        """Where the collectives' own tensors live (NCCL needs them on this rank's GPU)."""
        if dist.get_backend() == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def _reduce_before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """Optimiser step pre-hook: every parameter's gradient averaged over the global batch."""
        gradients = []
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                if parameter.grad is None:  # every rank must take part in every reduction
                    parameter.grad = torch.zeros_like(parameter)
                gradients.append(parameter.grad)
        self.average_(gradients)

    def attach(self, learner: Any, method: str) -> None:
        """Make ``learner`` reduce its gradients over the ranks before each update.

        Raises:
            ConfigError: the learner has neither a ``use_data_parallel`` method nor a ``torch.optim``
                optimiser, or refuses data-parallel training (naming why).
        """
        if hasattr(learner, "use_data_parallel"):
            learner.use_data_parallel(self)
        elif isinstance(getattr(learner, "optimizer", None), torch.optim.Optimizer):
            self._hooks.append(learner.optimizer.register_step_pre_hook(self._reduce_before_step))
        else:
            raise ConfigError(
                f"method {method!r} cannot train data-parallel: its learner exposes no gradients to reduce"
            )


def from_environment(device: str | torch.device = "cpu") -> DataParallel | None:
    """The process group ``torchrun`` describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joined;
    None for a single process. On CUDA, each rank takes the GPU of its ``LOCAL_RANK``.

    Raises:
        ConfigError: ``WORLD_SIZE`` is set without the rest, or is not a positive integer.
    """
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    missing = [name for name in WORLD_ENV if not os.environ.get(name, "").isdigit()]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set to an integer: "
            "start data-parallel training with torchrun (or snnbp train --processes N)"
        )
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return DataParallel(dist.get_rank(), dist.get_world_size())


def rank_device(device: torch.device) -> torch.device:
    """``device`` for this rank: a CUDA device becomes the GPU of ``LOCAL_RANK``."""
    if device.type == "cuda" and os.environ.get("LOCAL_RANK", "").isdigit():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def close() -> None:
    """Leave the process group (when one was joined)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def check_shards(train_size: int, batch_size: int, world_size: int) -> None:
    """Every global batch must give each rank at least one sample.

    Raises:
        ConfigError: naming ``train.batch_size`` and the batch that would leave a rank empty.
    """
    last = train_size % batch_size or batch_size
    smallest = min(batch_size, last) if train_size >= batch_size else train_size
    if smallest < world_size:
        raise ConfigError(
            f"key 'train.batch_size' ({batch_size}) over {train_size} training samples gives a batch of "
            f"{smallest}, fewer samples than the {world_size} processes; data-parallel training needs "
            "at least one sample per process in every batch"
        )
