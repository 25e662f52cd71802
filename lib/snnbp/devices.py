"""Where a training run computes: ``train.device`` (or ``snnbp run --device``) resolved on this machine.

* ``auto`` (the default): the CUDA device when torch sees one and the run can use it, else the CPU;
* ``cpu``, ``cuda`` or ``cuda:<index>``: that device; a CUDA request on a machine where torch sees
  no CUDA device is refused (:class:`snnbp.config.ConfigError`) before any data is loaded.

HM2-BP's event-driven engine (``model.engine: event``) runs on the CPU only: under ``auto`` such a
run stays on the CPU, and an explicit CUDA request is refused; HM2-BP's ``model.engine: auto``
takes the event engine on the CPU and the torch engine on a GPU. The device changes speed, not
results (up to float rounding), so it is not part of a run's identity (:func:`snnbp.train.params_hash`).
"""

from __future__ import annotations

from typing import Any

import torch

from snnbp.config import DEVICE_PATTERN, ConfigError, RunParams


def cpu_only_reason(model: Any) -> str | None:
    """Why a ``model:`` section can only run on the CPU, or None when any device will do."""
    if getattr(model, "engine", None) == "event":
        return "model.engine 'event' (HM2-BP's event-driven engine) runs on the CPU only"
    return None


def cuda_state() -> str:
    """What torch says about CUDA on this machine, in a few words (for error messages and records)."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} is built for CUDA {torch.version.cuda} but finds no usable GPU"
    return f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s)"


def resolve_device(requested: str | torch.device, *, source: str, cpu_only: str | None = None) -> torch.device:
    """The device ``requested`` names on this machine.

    Args:
        requested: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"`` (or a ``torch.device``).
        source: what the request comes from, for the error (e.g. ``"params/x.yaml: key 'train.device'"``).
        cpu_only: why the run must stay on the CPU (:func:`cpu_only_reason`), or None.

    Raises:
        ConfigError: one line naming ``source``: an unknown name, CUDA asked for where torch sees
            none (or not that many GPUs), or CUDA asked for by a run that runs on the CPU only.
    """
    name = str(requested)
    if not DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"{source} must be one of auto, cpu, cuda or cuda:<index>, got {name!r}")
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        return torch.device("cuda" if cpu_only is None and torch.cuda.is_available() else "cpu")
    if cpu_only is not None:
        raise ConfigError(
            f"{source} is {name!r}, but {cpu_only}; use model.engine auto or torch on a GPU, or device cpu"
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            f"{source} is {name!r}, but {cuda_state()}; install a CUDA build of torch (README: GPU) "
            "or use device cpu or auto"
        )
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"{source} is {name!r}, but this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def run_device(
    params: RunParams, requested: str | torch.device | None = None, *, source: str = "params", flag: str = "--device"
) -> torch.device:
    """The device a training run of ``params`` uses: ``requested`` when given (``snnbp run --device``,
    named ``flag`` in errors), else ``params.train.device`` (:func:`resolve_device`, with the model's
    :func:`cpu_only_reason`)."""
    where = f"{source}: key 'train.device'" if requested is None else f"{source}: {flag}"
    chosen = params.train.device if requested is None else requested
    return resolve_device(chosen, source=where, cpu_only=cpu_only_reason(params.model))
