"""Command line: ``snnbp run PARAMS.yaml``, ``snnbp train PARAMS.yaml``, ``snnbp sweep SWEEP.yaml``, ``snnbp smoke``, ``snnbp evaluate CHECKPOINT``, ``snnbp table``, ``snnbp figures RUN_DIR``, ``snnbp fetch``.

Every command works on the project root (:func:`snnbp.paths.project_root`: ``$SNNBP_ROOT``, the
clone snnbp is installed from, or the working directory).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from snnbp.config import ConfigError, EvalParams, load_params, profile_of
from snnbp.execution import absolute_data_env, environment
from snnbp.execution import execute_notebook as execute_notebook
from snnbp.execution import execute_params as execute_params
from snnbp.execution import headline as headline
from snnbp.execution import run_dir_for as run_dir_for
from snnbp.execution import up_to_date as up_to_date
from snnbp.paths import notebooks_dir, results_dir

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
"""Exit codes: 0 done (or nothing to do), 1 the run started and failed, 2 bad input (refused before work)."""

INPUT_ERRORS = frozenset(
    {
        "ConfigError",
        "RunFolderError",
        "RunMismatchError",
        "CheckpointMismatchError",
        "CorruptCheckpointError",
        "UnsafeCheckpointError",
        "RunLockedError",
        "ResultsMismatchError",
        "MissingDatasetError",
        "DataIntegrityError",
        "FileNotFoundError",
        "ProjectRootError",
        "NoNotebooksError",
        "MissingDependencyError",
    }
)
"""Errors raised inside a notebook that mean bad input (exit code 2) rather than a failed run."""


def numbered_notebooks() -> list[Path]:
    """``notebooks/NN_*.ipynb`` in order."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


class NoNotebooksError(FileNotFoundError):
    """``snnbp smoke`` found no notebook to run."""


def _cmd_smoke(args: argparse.Namespace) -> int:
    notebooks = numbered_notebooks()
    if not notebooks:
        raise NoNotebooksError(
            f"no notebooks found in {notebooks_dir()} (notebooks/NN_*.ipynb); run snnbp inside a "
            "clone of the repository or set SNNBP_ROOT to one"
        )
    chosen = [nb for nb in notebooks if not args.only or any(key in nb.name for key in args.only)]
    if not chosen:
        raise NoNotebooksError(
            f"no notebook in {notebooks_dir()} matches {' '.join(args.only)} "
            f"(notebooks: {', '.join(nb.name for nb in notebooks)})"
        )
    target = results_dir() / "smoke"
    target.mkdir(parents=True, exist_ok=True)
    for notebook in chosen:
        print(f"smoke: {notebook.name}", flush=True)
        with environment(**absolute_data_env()):
            execute_notebook(notebook, target / notebook.name, progress=False)
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    for path in args.params:
        output = execute_params(
            Path(path),
            output_dir=Path(args.output_dir) if args.output_dir else None,
            report=print,
            stream=sys.stdout,
            device=args.device,
        )
        print(f"executed notebook: {output}")
        summary = headline(output.parent, load_params(Path(path)).method)
        if summary:
            print(summary, flush=True)
    return EXIT_OK


def torchrun_command(processes: int, argv: list[str]) -> list[str]:
    """``torchrun --standalone --nproc-per-node N -m snnbp train ...`` through this Python (``argv``:
    the train command's own arguments, ``--processes`` left out)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "snnbp",
        "train",
        *argv,
    ]


def _cmd_train(args: argparse.Namespace) -> int:
    path = Path(args.params)
    params = load_params(path)
    if isinstance(params, EvalParams):
        raise ConfigError(
            f"{path}: key 'method' names the evaluation {params.method!r}, which trains nothing; run it with snnbp run"
        )
    if args.processes is not None and args.processes < 1:
        raise ConfigError(f"--processes must be at least 1, got {args.processes}")
    if args.processes and args.processes > 1:
        rest = [str(path)] + [
            item
            for flag, value in (("--output-dir", args.output_dir), ("--device", args.device))
            if value
            for item in (flag, value)
        ]
        import subprocess

        return subprocess.run(torchrun_command(args.processes, rest), check=False).returncode
    from snnbp import distributed
    from snnbp.devices import run_device
    from snnbp.train import fit

    device = run_device(params, args.device, source=str(path))
    run_dir = (
        Path(args.output_dir).resolve() if args.output_dir else run_dir_for(path, params.name, profile_of(params, path))
    )
    parallel = distributed.from_environment(device)
    try:
        fit(
            params,
            run_dir,
            device=distributed.rank_device(device),
            parallel=parallel,
            progress=parallel is None or parallel.is_main,
        )
    finally:
        distributed.close()
    if parallel is None or parallel.is_main:
        print(f"run folder: {run_dir}")
        summary = headline(run_dir, params.method)
        if summary:
            print(summary, flush=True)
    return EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    from snnbp import sweep as sweeps

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    plan = sweeps.load_sweep(Path(args.sweep))
    if not args.dry_run:
        sweeps.require_dask()
    sweeps.write_params_files(plan)
    for run in plan.runs:
        print(f"run {run.name}: {sweeps.shown_path(run.params_path)}")
    if args.dry_run:
        return EXIT_OK
    cores = sweeps.available_cores()
    workers = args.workers or sweeps.local_workers(plan, cores)
    with sweeps.dask_client(args.scheduler, workers) as client:
        if args.scheduler:
            print(
                f"Dask scheduler {client.scheduler.address}: {len(client.scheduler_info().get('workers', {}))} workers"
            )
        else:
            print(
                f"Dask local cluster: {workers} workers of one run each, up to "
                f"{sweeps.threads_per_run(plan, cores)} torch threads per run ({cores} cores)"
            )
        print(f"Dask dashboard: {client.dashboard_link}", flush=True)
        outcomes = sweeps.run_sweep(plan, client, results=Path(args.results) if args.results else None)
    print(sweeps.summary(outcomes))
    return EXIT_FAILED if any(o.status == "failed" for o in outcomes) else EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from snnbp.train import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, split=args.split, device=args.device)
    print(f"checkpoint={args.checkpoint} epoch={result['epoch']} split={result['split']} samples={result['samples']}")
    print(f"accuracy={result['accuracy']:.6f}")
    return EXIT_OK


def _cmd_table(args: argparse.Namespace) -> int:
    from snnbp.paths import PROJECT_ROOT
    from snnbp.table import build_table

    readme = PROJECT_ROOT / "README.md" if args.write_readme and not args.results else None
    _, text = build_table(Path(args.results) if args.results else None, write=args.write_readme, readme=readme)
    print(text, end="")
    if args.write_readme:
        print(f"written: summary.csv, summary.md{' and README.md' if readme else ''} (completed runs, no smoke rows)")
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from snnbp.figures import render_run

    for run_dir in args.run_dirs:
        report = render_run(Path(run_dir), evaluate=args.evaluate)
        for path in report.written:
            print(f"written: {path}")
        for name, why in report.skipped.items():
            print(f"kept as it is: {Path(run_dir) / 'figures' / name}: {why}")
    return EXIT_OK


def _cmd_fetch(args: argparse.Namespace) -> int:
    from snnbp.data.fetch import main as fetch_main

    return fetch_main(args.datasets)


def build_parser() -> argparse.ArgumentParser:
    """The ``snnbp`` argument parser."""
    from snnbp import __version__

    parser = argparse.ArgumentParser(
        prog="snnbp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--version", action="version", version=f"snnbp {__version__}", help="print the version of snnbp and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of the commands below")
    run = sub.add_parser("run", help="execute the notebook of one or more params files with Papermill")
    run.add_argument(
        "params",
        nargs="+",
        metavar="PARAMS",
        help="params file(s), params/<profile>/<run>.yaml; each runs the notebook it names, in turn",
    )
    run.add_argument(
        "--output-dir",
        help="run folder (default results/<profile>/<name>); with several params files, each must be a different run",
    )
    run.add_argument(
        "--device",
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:<index>: where the runs compute, instead of each params file's "
        "train.device (itself auto, the GPU when torch sees one, by default); CUDA where torch sees "
        "none is refused before any work",
    )
    run.set_defaults(func=_cmd_run)
    smoke = sub.add_parser("smoke", help="execute every numbered notebook with its smoke defaults into results/smoke/")
    smoke.add_argument("only", nargs="*", help="substrings of notebook names to run (default: all)")
    smoke.set_defaults(func=_cmd_smoke)
    train = sub.add_parser(
        "train",
        help="train one params file in this process, without its notebook; under "
        "torchrun (or with --processes N), data-parallel over the processes",
    )
    train.add_argument("params", metavar="PARAMS", help="a training params file, params/<profile>/<run>.yaml")
    train.add_argument("--output-dir", help="run folder (default results/<profile>/<name>, as snnbp run)")
    train.add_argument(
        "--device",
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:<index> instead of the file's "
        "train.device (under torchrun, cuda is each process's GPU)",
    )
    train.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="train data-parallel over N local processes (torchrun --standalone --nproc-per-node N; "
        "gloo on the CPU, NCCL on GPUs); default: this process alone",
    )
    train.set_defaults(func=_cmd_train)
    sweep = sub.add_parser(
        "sweep",
        help="expand a sweep file into one params file per run and execute them as "
        "independent jobs on Dask (skipping completed runs, resuming interrupted ones)",
    )
    sweep.add_argument(
        "sweep",
        metavar="SWEEP",
        help="sweep file: a base params file and the values to vary, e.g. params/sweeps/ann_mnist_fc_seeds.yaml",
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler (tcp://host:8786) or its scheduler file (JSON); default: a local "
        "cluster sized to this machine",
    )
    sweep.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="workers of the local cluster (default: the cores divided by the torch threads of a run)",
    )
    sweep.add_argument(
        "--results",
        metavar="DIR",
        help="results folder the run folders go under, DIR/<profile>/<name> (default: the project's results/)",
    )
    sweep.add_argument("--dry-run", action="store_true", help="write and list the runs' params files; run nothing")
    sweep.set_defaults(func=_cmd_sweep)
    evaluate = sub.add_parser("evaluate", help="recompute the accuracy of a checkpoint; last line: accuracy=<float>")
    evaluate.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a checkpoint written by a training run, e.g. results/cpu/stdbp_mnist_fc/best.pt",
    )
    evaluate.add_argument(
        "--split",
        choices=("test", "train", "validation"),
        default="test",
        help="the split of the run's dataset to evaluate (default: test)",
    )
    evaluate.add_argument(
        "--device", default="cpu", help="where to evaluate: auto, cpu, cuda or cuda:<index> (default: cpu)"
    )
    evaluate.set_defaults(func=_cmd_evaluate)
    table = sub.add_parser("table", help="join every metrics.json with the papers' numbers (results/summary.csv, .md)")
    table.add_argument("--results", help="results folder (default: the project's results/)")
    table.add_argument(
        "--write-readme",
        action="store_true",
        help="also write the tracked summaries (results/summary.csv, .md) and README.md's results "
        "section: completed runs only, never smoke rows (default: print only)",
    )
    table.set_defaults(func=_cmd_table)
    figures = sub.add_parser(
        "figures", help="redraw a run's figures from its recorded metrics and predictions (no training)"
    )
    figures.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="training run folder, e.g. results/cpu/alpha_mnist_fc"
    )
    figures.add_argument(
        "--evaluate",
        action="store_true",
        help="when a run stored no test predictions, evaluate its saved model once (inference only, "
        "checked against the recorded accuracy) and store them",
    )
    figures.set_defaults(func=_cmd_figures)
    fetch = sub.add_parser("fetch", help="fetch MNIST / Fashion-MNIST into the data folder (sha256-verified)")
    fetch.add_argument(
        "datasets",
        nargs="*",
        metavar="DATASET",
        help="datasets to fetch (default: all that can be downloaded: mnist, fashion_mnist)",
    )
    fetch.set_defaults(func=_cmd_fetch)
    return parser


def one_line(text: Any) -> str:
    """``text`` on one line (runs of white space, newlines included, become one space)."""
    return " ".join(str(text).split())


def error_line(error: BaseException) -> tuple[str, int]:
    """``error`` as the one line ``snnbp`` prints (``error: ...``, no traceback) and the exit code it calls for."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        where = getattr(error, "notebook_path", None)
        suffix = f" (executed notebook: {where})" if where else ""
        return (
            f"error: {error.ename}: {one_line(error.evalue)}{suffix}",
            EXIT_BAD_INPUT if error.ename in INPUT_ERRORS else EXIT_FAILED,
        )
    if isinstance(error, KeyboardInterrupt):
        where = getattr(error, "notebook_path", None)
        return "error: interrupted" + (f" (executed notebook: {where})" if where else ""), EXIT_FAILED
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    bad_input = type(error).__name__ in INPUT_ERRORS or isinstance(error, (ConfigError, KeyError, FileNotFoundError))
    return f"error: {one_line(message)}", EXIT_BAD_INPUT if bad_input else EXIT_FAILED


def report_error(error: BaseException) -> int:
    """Print ``error`` as one line on stderr (:func:`error_line`); return the exit code it calls for."""
    text, code = error_line(error)
    print(text, file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snnbp`` command and of ``python -m snnbp``.

    Exit codes (:data:`EXIT_OK`, :data:`EXIT_FAILED`, :data:`EXIT_BAD_INPUT`): 0 done or nothing
    to do; 1 a run started and failed (an error in the notebook, a non-finite loss, an
    interruption); 2 bad input, refused before any work (a params file, a run folder holding other
    results or in use, a missing, corrupt or unsafe checkpoint or data file). Errors are one line
    on stderr; a failure inside a notebook is ``ename: evalue`` and the executed notebook's path.
    """
    from papermill.exceptions import PapermillExecutionError

    from snnbp.io import RunLockedError
    from snnbp.run_folder import CorruptCheckpointError, RunFolderError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (
        ConfigError,
        RunFolderError,
        CorruptCheckpointError,
        RunLockedError,
        PapermillExecutionError,
        KeyboardInterrupt,
        KeyError,
        OSError,
        RuntimeError,
        ValueError,
        FloatingPointError,
    ) as error:
        return report_error(error)
