"""Atomic file writes and run-folder locks: a partial file is never left where a reader expects a
complete one, and two runs never write into one folder at once."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_ENV = "SNNBP_HELD_LOCK"
"""Set by ``snnbp run`` to the run folder it holds locked, so that the notebook's kernel (its child)
works in that folder without taking the lock a second time."""


class RunLockedError(RuntimeError):
    """Another process is running into the same run folder."""


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on the folder ``run_dir`` (created) while the block runs.

    The lock is ``flock`` on the folder itself (no lock file is left behind); the kernel dies with
    its process, so a killed run never leaves a stale lock. Inside a folder that ``snnbp run``
    already holds (:data:`LOCK_ENV`), nothing more is taken.

    Raises:
        RunLockedError: another process holds the folder.
    """
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get(LOCK_ENV) == str(run_dir):
        yield run_dir
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"{run_dir} is in use by another run; wait for it to finish or choose another folder"
            ) from None
        yield run_dir
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files an interrupted atomic write left in ``folder``; return them.

    Call it only while holding the folder's :func:`run_lock` (a running writer's file looks the same).
    """
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write ``payload`` as indented, key-sorted, valid JSON atomically (NaN and inf become null)."""
    text = json.dumps(json_safe(payload), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode())


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    import torch  # here, so that writing text or JSON never loads torch (benchmarks set threads first)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
