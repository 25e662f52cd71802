"""Run records (``run.json``): how a result was produced, written atomically at start and end.

Holds the git commit and dirty flag, the resolved params, the root seed and the derived seeds,
package versions, host/CPU/GPU, UTC start/stop and the status (running, completed, failed,
interrupted; ``died`` for an attempt that stopped without a word). A resumed run keeps its first
start's record and appends one entry per resume (:class:`RunRecord`).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from snnbp.io import atomic_write_json
from snnbp.paths import project_root
from snnbp.seeding import derive_seed

PACKAGES = ("snnbp", "torch", "numpy", "scipy", "tonic", "papermill", "seaborn", "matplotlib", "pyyaml", "pillow")
SEED_PURPOSES = ("model", "shuffle", "encoding")


def utc_now() -> str:
    """Current UTC time in ISO 8601 with a ``Z`` suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def git_state(root: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository at ``root`` (default: the project root)."""
    root = project_root() if root is None else root

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
    """The ``run.json`` of one run; call :meth:`start`, then :meth:`finish` or :meth:`fail`.

    A run that continues an earlier start of the same params (the same ``params_hash`` in the
    folder's ``run.json``) keeps that first start's record (its commit, host, versions and start
    time) and appends one entry per resume to ``resumes``: start/stop time, commit and dirty flag,
    host name, versions, the epoch it resumed from and what it did (status, epochs trained).
    The top-level ``status``, ``stop_utc``, ``error`` and ``metrics`` always describe the run as a
    whole, as of its latest attempt; ``first_start`` keeps what the first start did.
    """

    def __init__(self, path: Path, params: dict[str, Any], root_seed: int) -> None:
        self.path = Path(path)
        self.attempt: dict[str, Any] | None = None
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

    def _previous(self, params_hash: Any) -> dict[str, Any] | None:
        """The folder's record when it is an earlier start of the same params."""
        if params_hash is None or not self.path.is_file():
            return None
        try:
            previous = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return previous if isinstance(previous, dict) and previous.get("params_hash") == params_hash else None

    def start(self, **extra: Any) -> None:
        """Mark the run as running and write the record (as a resume of an earlier start of the same
        ``params_hash``, when the folder holds one)."""
        previous = self._previous(extra.get("params_hash"))
        if previous is None:
            self.content.update(start_utc=utc_now(), status="running", **extra)
        else:
            attempts = previous.setdefault("resumes", [])
            if not attempts:  # the first resume: keep what the first start did
                previous["first_start"] = {
                    k: previous.get(k)
                    for k in ("start_utc", "stop_utc", "status", "error", "epochs_trained")
                    if k in previous
                }
            last = attempts[-1] if attempts else previous["first_start"]
            if last.get("status") == "running":  # that process died without a word (kill -9, power loss)
                last["status"] = "died"
            self.attempt = {
                "start_utc": utc_now(),
                "stop_utc": None,
                "status": "running",
                "git": self.content["git"],
                "hostname": self.content["host"]["hostname"],
                "host": self.content["host"],
                "versions": self.content["versions"],
                **{k: v for k, v in extra.items() if k not in ("params_hash", "run_dir")},
            }
            attempts.append(self.attempt)
            previous.pop("error", None)
            previous.update(status="running", stop_utc=None)
            self.content = previous
        atomic_write_json(self.path, self.content)

    def _end(self, status: str, attempt: dict[str, Any] | None, **extra: Any) -> None:
        now = utc_now()
        self.content.update(stop_utc=now, status=status, **extra)
        if status == "completed":
            self.content.pop("error", None)
        if self.attempt is None:
            self.content.update(attempt or {})
        else:
            self.attempt.update(stop_utc=now, status=status, **(attempt or {}))
            if "error" in extra:
                self.attempt["error"] = extra["error"]
        atomic_write_json(self.path, self.content)

    def finish(self, *, attempt: dict[str, Any] | None = None, **extra: Any) -> None:
        """Mark the run as completed (with ``extra`` fields, e.g. the final metrics) and write it.

        ``attempt`` holds what this start did (e.g. ``epochs_trained``): on the record itself for a
        first start, on its entry in ``resumes`` for a resume.
        """
        self._end("completed", attempt, **extra)

    def fail(self, error: BaseException, *, attempt: dict[str, Any] | None = None) -> None:
        """Mark the run as failed (or interrupted) with the error's type and message and write it."""
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        self._end(status, attempt, error=f"{type(error).__name__}: {error}")
