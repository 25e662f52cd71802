"""``snnbp sweep SWEEP.yaml``: many runs of one params file, executed as independent jobs on Dask.

A sweep file names a base params file and the values to vary, by dotted key::

    base: params/cpu/stdbp_mnist_fc.yaml   # relative to the project root, or absolute
    grid:                                  # every combination of these values
      seed: [1, 2, 3]
      model.lr: [0.001, 0.002]
    runs:                                  # optional: explicit combinations, each crossed with the grid
      - {train.batch_size: 64, model.lr_decay: 0.9}
      - {train.batch_size: 128}

It expands (:func:`load_sweep`) into one params file per run, written beside the sweep file in a
folder named after it (``params/sweeps/<sweep>/<run>.yaml``) and named from the base name and the
values that differ between the runs (``stdbp_mnist_fc-seed2-lr0.002``). A run equal to the base
file keeps the base's name and file, so that its existing run folder counts. Every run is checked
(:func:`snnbp.config.params_from_content`) before anything is written or started.

Each run is one task on a ``dask.distributed`` cluster (:func:`run_sweep`): the same code path as
``snnbp run`` (:func:`snnbp.execution.execute_params`, a Papermill notebook into
``results/<profile>/<name>``), so a completed run is skipped, an interrupted one resumes from its
checkpoint, and a run folder holding other results is refused. A failed run is reported with its
error and the others go on; a task whose worker dies is run again by the scheduler on another
worker (and resumes from the run's last checkpoint), until the scheduler gives up on it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snnbp.config import ConfigError, params_from_content, read_yaml
from snnbp.io import atomic_write_text
from snnbp.paths import ProjectRootError, project_root, resolve

SWEEP_KEYS = ("base", "grid", "runs")
FIXED_KEYS = ("name",)
"""Keys a sweep cannot vary: the sweep names its runs."""

UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


class MissingDependencyError(RuntimeError):
    """An optional dependency of a command is not installed."""


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep.

    Attributes:
        name: the run's name (its run folder ``results/<profile>/<name>``).
        values: the dotted keys and values this run sets, in the sweep file's order.
        params_path: its params file (the base file itself for the run equal to the base).
        content: the params file's mapping.
    """

    name: str
    values: tuple[tuple[str, Any], ...]
    params_path: Path
    content: Mapping[str, Any]


@dataclass(frozen=True)
class Sweep:
    """A sweep file, expanded: its path, its base params file and its runs in order."""

    path: Path
    base: Path
    runs: tuple[SweepRun, ...]


def shown_path(path: Path) -> str:
    """``path`` relative to the project root when inside it."""
    try:
        return str(path.resolve().relative_to(project_root()))
    except (ValueError, ProjectRootError):
        return str(path)


def combinations(grid: Mapping[str, list[Any]], runs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every run's dotted-key values: each entry of ``runs`` (default one empty entry) crossed with
    every combination of ``grid``, grid keys varying last-fastest.

    >>> combinations({"seed": [1, 2]}, [{"model.lr": 0.1}, {"model.lr": 0.2}])
    [{'model.lr': 0.1, 'seed': 1}, {'model.lr': 0.1, 'seed': 2}, {'model.lr': 0.2, 'seed': 1}, {'model.lr': 0.2, 'seed': 2}]
    """
    keys = list(grid)
    points = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    return [{**entry, **point} for entry in (runs or [{}]) for point in points]


def with_value(content: Mapping[str, Any], key: str, value: Any, source: str) -> dict[str, Any]:
    """A deep copy of ``content`` with the dotted ``key`` set to ``value``.

    Raises:
        ConfigError: ``key`` is fixed (``name``), or one of its sections is absent or not a mapping.
    """
    if key in FIXED_KEYS:
        raise ConfigError(f"{source}: key {key!r} cannot be varied (the sweep names its runs)")
    out = json.loads(json.dumps(content))
    *sections, leaf = key.split(".")
    where = out
    for depth, section in enumerate(sections):
        if not isinstance(where.get(section), dict):
            name = ".".join(sections[: depth + 1])
            raise ConfigError(f"{source}: key {key!r}: the base params file has no section {name!r}")
        where = where[section]
    where[leaf] = value
    return out


def value_label(value: Any) -> str:
    """A value as a run name writes it: ``0.002``, ``true``, ``800x400`` (lists joined by ``x``).

    >>> value_label(0.002), value_label(True), value_label([800, 400]), value_label("relpsp")
    ('0.002', 'true', '800x400', 'relpsp')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "x".join(value_label(v) for v in value)
    if isinstance(value, dict):
        return "_".join(f"{k}{value_label(v)}" for k, v in value.items())
    return str(value)


def key_labels(keys: list[str]) -> dict[str, str]:
    """How a run name writes each varied key: its last part (``model.lr`` -> ``lr``), or the whole
    dotted key where two varied keys share a last part."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: (tail if last.count(tail) == 1 else key) for key, tail in zip(keys, last)}


def run_name(base_name: str, values: Mapping[str, Any], varied: list[str]) -> str:
    """``<base>-<key><value>-...`` over the ``varied`` keys this run sets, or over all the keys it
    sets where it sets none of them (characters a folder name cannot hold become ``_``).

    >>> run_name("stdbp_mnist_fc", {"seed": 2, "model.lr": 0.002}, ["seed", "model.lr"])
    'stdbp_mnist_fc-seed2-lr0.002'
    """
    named = [k for k in varied if k in values] or list(values)
    labels = key_labels(named)
    parts = [base_name] + [UNSAFE_CHARACTERS.sub("_", f"{labels[k]}{value_label(values[k])}") for k in named]
    return "-".join(parts)


def _check_layout(content: Any, source: str) -> tuple[Path, dict[str, list[Any]], list[dict[str, Any]]]:
    """The base path, grid and runs of a sweep file's mapping, with their types checked."""
    unknown = sorted(set(content) - set(SWEEP_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key {', '.join(map(repr, unknown))}; a sweep file has {list(SWEEP_KEYS)}")
    if not isinstance(content.get("base"), str) or not content["base"]:
        raise ConfigError(f"{source}: key 'base' must name the base params file (a path), got {content.get('base')!r}")
    grid = content.get("grid") or {}
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise ConfigError(f"{source}: key 'grid' must map dotted keys to non-empty lists of values, got {grid!r}")
    runs = content.get("runs") or []
    if not isinstance(runs, list) or any(not isinstance(r, dict) for r in runs):
        raise ConfigError(f"{source}: key 'runs' must be a list of mappings of dotted keys to values, got {runs!r}")
    if not grid and not runs:
        raise ConfigError(f"{source}: the sweep varies nothing (give 'grid', 'runs' or both)")
    return resolve(content["base"]), grid, runs


def load_sweep(path: str | Path) -> Sweep:
    """Read and expand a sweep file; check every run's params (nothing is written).

    Raises:
        ConfigError: naming the sweep file and the key (and the run) that is wrong, or two runs
            that would get the same name.
    """
    path = Path(path)
    source = str(path)
    base_path, grid, runs = _check_layout(read_yaml(path), source)
    base = read_yaml(base_path)
    base_params = params_from_content(base, str(base_path))
    profile = base.get("profile") or base_params.profile or base_path.resolve().parent.name
    points = combinations(grid, runs)
    keys = list(dict.fromkeys(k for point in points for k in point))
    varied = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True) for p in points}) > 1]
    folder = path.resolve().parent / path.stem
    expanded: list[SweepRun] = []
    for point in points:
        content = dict(base, profile=profile)
        for key, value in point.items():
            content = with_value(content, key, value, source)
        if content == dict(base, profile=profile):
            name, params_path = base_params.name, base_path
        else:
            name = run_name(base_params.name, point, varied)
            content["name"] = name
            params_path = folder / f"{name}.yaml"
        params_from_content(content, f"{source}: run {name}")
        expanded.append(SweepRun(name, tuple(point.items()), params_path, content))
    names = [run.name for run in expanded]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"{source}: several runs would be named {', '.join(twice)}; a sweep lists every combination once"
        )
    return Sweep(path, base_path, tuple(expanded))


def params_text(sweep: Sweep, run: SweepRun) -> str:
    """The YAML of a generated params file, headed by where it comes from."""
    values = ", ".join(f"{k} = {json.dumps(v)}" for k, v in run.values)
    header = (
        f"# Generated by `snnbp sweep {shown_path(sweep.path)}` from {shown_path(sweep.base)} ({values}).\n"
        "# Edit the sweep file or the base params file, not this one.\n"
    )
    return header + yaml.safe_dump(dict(run.content), sort_keys=False, default_flow_style=None, width=110)


def write_params_files(sweep: Sweep) -> list[Path]:
    """Write the params file of every run that is not the base file itself (only when its text
    changed); return the files of all the runs, in order."""
    for run in sweep.runs:
        if run.params_path == sweep.base:
            continue
        text = params_text(sweep, run)
        if not run.params_path.is_file() or run.params_path.read_text() != text:
            atomic_write_text(run.params_path, text)
    return [run.params_path for run in sweep.runs]


def threads_per_run(sweep: Sweep, cores: int) -> int:
    """The most torch threads one run of the sweep uses (``train.num_threads``; unset: every core)."""
    threads = [(run.content.get("train") or {}).get("num_threads") or cores for run in sweep.runs]
    return max(1, min(cores, max(threads)))


def local_workers(sweep: Sweep, cores: int) -> int:
    """Workers of the local cluster: one run each, as many as the cores hold without oversubscribing
    them (``cores // threads_per_run``), at most one per run."""
    return max(1, min(len(sweep.runs), cores // threads_per_run(sweep, cores)))


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ------------------------------------------------------------------------------------ execution
@dataclass(frozen=True)
class RunOutcome:
    """How one run of a sweep ended.

    Attributes:
        name: the run's name.
        status: ``completed`` (it trained now), ``up to date`` (its folder already held the
            completed run: nothing changed) or ``failed``.
        detail: the headline metric, or the one-line error.
        run_dir: its run folder (empty when it failed before one was known).
        resumed_from_epoch: the epoch its last start resumed from (None: it started afresh).
    """

    name: str
    status: str
    detail: str = ""
    run_dir: str = ""
    resumed_from_epoch: int | None = None

    def line(self) -> str:
        """``<status>: <name> <detail>`` as the sweep prints it."""
        resumed = f" (resumed from epoch {self.resumed_from_epoch})" if self.resumed_from_epoch else ""
        return f"{self.status}: {self.name}{resumed}{' ' + self.detail if self.detail else ''}"


_ONE_RUN_AT_A_TIME = threading.Lock()
"""One run per worker process at a time: a run sets the environment its notebook's kernel inherits."""


def _resumed_from(run_dir: Path) -> int | None:
    """The epoch the run's last start resumed from, from its ``run.json`` (None: not resumed)."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return None
    resumes = record.get("resumes") if isinstance(record, dict) else None
    last = resumes[-1] if isinstance(resumes, list) and resumes and isinstance(resumes[-1], dict) else {}
    epoch = last.get("resumed_from_epoch")
    return int(epoch) if isinstance(epoch, int) and epoch > 0 else None


def execute_run(params_path: str, name: str, output_dir: str | None = None) -> RunOutcome:
    """Run one params file as ``snnbp run`` does (on a Dask worker), into ``output_dir`` (default
    ``results/<profile>/<name>``); never raises for a failed run.

    Returns:
        the run's :class:`RunOutcome`: ``failed`` with the one-line error that ``snnbp run``
        would print, ``up to date`` when nothing was to do, else ``completed``.
    """
    from snnbp.cli import error_line
    from snnbp.execution import execute_params, headline

    said: list[str] = []
    with _ONE_RUN_AT_A_TIME:
        try:
            output = execute_params(
                Path(params_path),
                output_dir=Path(output_dir) if output_dir else None,
                progress=False,
                report=said.append,
            )
        except Exception as error:  # noqa: BLE001 - a failed run is a result of the sweep, not its end
            return RunOutcome(name, "failed", error_line(error)[0])
    method = str(read_yaml(params_path).get("method"))
    return RunOutcome(
        name,
        "up to date" if said else "completed",
        headline(output.parent, method) or "",
        str(output.parent),
        _resumed_from(output.parent),
    )


def require_dask() -> Any:
    """The ``distributed`` module.

    Raises:
        MissingDependencyError: it is not installed (naming the extra that installs it).
    """
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            f"snnbp sweep needs dask.distributed ({exc}); install it with pip install -e '.[distributed]'"
        ) from None
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler`` (an address such as
    ``tcp://host:8786``, or the path of a scheduler file written by ``dask scheduler
    --scheduler-file``), else of a local cluster of ``workers`` processes of one thread each."""
    distributed = require_dask()
    if scheduler:
        options = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
        with distributed.Client(timeout="30s", **options) as client:
            yield client
        return
    with (
        distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def run_folder(run: SweepRun, results: Path | None) -> Path | None:
    """``<results>/<profile>/<name>``; None (``snnbp run``'s own default) without ``results``."""
    return None if results is None else Path(results).resolve() / str(run.content["profile"]) / run.name


def run_sweep(sweep: Sweep, client: Any, *, results: Path | None = None, progress: bool = True) -> list[RunOutcome]:
    """Submit every run of ``sweep`` to ``client``'s cluster; print each run's :meth:`RunOutcome.line`
    on stdout as it ends (under a bar of the finished runs on stderr, :mod:`snnbp.progress`);
    return the outcomes in the sweep's order.

    Args:
        results: the results folder the run folders go under (default the project's ``results/``).

    A task that could not finish at all (its worker died every time it ran it: Dask's
    ``KilledWorker``) is a ``failed`` outcome naming that error.
    """
    from snnbp.cli import one_line
    from snnbp.progress import bar, line

    distributed = require_dask()
    token = secrets.token_hex(3)
    futures = {
        client.submit(
            execute_run,
            str(run.params_path),
            run.name,
            None if results is None else str(run_folder(run, results)),
            key=f"{run.name}-{token}",
            pure=False,
        ): run
        for run in sweep.runs
    }
    outcomes: dict[str, RunOutcome] = {}
    with bar(total=len(futures), desc="runs finished", unit="run", progress=progress) as finished:
        for future in distributed.as_completed(futures):
            run = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # noqa: BLE001 - the task itself was lost, e.g. KilledWorker
                outcome = RunOutcome(run.name, "failed", f"error: {type(error).__name__}: {one_line(error)}")
            future.release()  # its result is read: a worker lost later need not recompute it
            outcomes[run.name] = outcome
            finished.update(1)
            line(outcome.line(), file=sys.stdout)
    return [outcomes[run.name] for run in sweep.runs]


def summary(outcomes: list[RunOutcome]) -> str:
    """``sweep: 3 runs: 1 completed, 1 up to date, 1 failed``."""
    counts = {status: sum(o.status == status for o in outcomes) for status in ("completed", "up to date", "failed")}
    return f"sweep: {len(outcomes)} runs: " + ", ".join(f"{n} {status}" for status, n in counts.items())
