"""Run records (``run.json``): how a result was produced, written atomically at start and end.

Holds the git commit and dirty flag, the resolved params, the root seed and the derived seeds,
package versions, host/CPU/GPU, UTC start/stop and the status (running, completed, failed).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from snnbp.io import atomic_write_json
from snnbp.paths import PROJECT_ROOT
from snnbp.seeding import derive_seed

PACKAGES = ("snnbp", "torch", "numpy", "scipy", "tonic", "papermill", "seaborn", "matplotlib", "pyyaml", "pillow")
SEED_PURPOSES = ("model", "shuffle", "encoding")


def utc_now() -> str:
    """Current UTC time in ISO 8601 with a ``Z`` suffix."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository at ``root``."""
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a result depends on (None when absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def host_info() -> dict[str, Any]:
    """Host name, OS, CPU model and count, torch threads, GPU (name or None)."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
    }


def derived_seeds(root_seed: int) -> dict[str, int]:
    """The seeds derived from ``root_seed`` for each standard purpose."""
    return {purpose: derive_seed(root_seed, purpose) for purpose in SEED_PURPOSES}


class RunRecord:
    """The ``run.json`` of one run; call :meth:`start`, then :meth:`finish` or :meth:`fail`."""

    def __init__(self, path: Path, params: dict[str, Any], root_seed: int) -> None:
        self.path = Path(path)
        self.content: dict[str, Any] = {
            "params": params,
            "root_seed": root_seed,
            "derived_seeds": derived_seeds(root_seed),
            "git": git_state(),
            "versions": package_versions(),
            "host": host_info(),
            "start_utc": None,
            "stop_utc": None,
            "status": "created",
        }

    def start(self, **extra: Any) -> None:
        """Mark the run as running and write the record."""
        self.content.update(start_utc=utc_now(), status="running", **extra)
        atomic_write_json(self.path, self.content)

    def finish(self, **extra: Any) -> None:
        """Mark the run as completed (with ``extra`` fields, e.g. the final metrics) and write it."""
        self.content.update(stop_utc=utc_now(), status="completed", **extra)
        atomic_write_json(self.path, self.content)

    def fail(self, error: BaseException) -> None:
        """Mark the run as failed with the error's type and message and write it."""
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        self.content.update(stop_utc=utc_now(), status=status, error=f"{type(error).__name__}: {error}")
        atomic_write_json(self.path, self.content)
