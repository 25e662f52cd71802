"""Command line: ``snnbp run PARAMS.yaml``, ``snnbp smoke``, ``snnbp evaluate CHECKPOINT``, ``snnbp table``, ``snnbp fetch``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snnbp.config import ConfigError, load_params, read_yaml
from snnbp.paths import notebooks_dir, results_dir


def run_dir_for(params_path: Path, name: str) -> Path:
    """``results/<profile>/<name>`` where the profile is the params file's folder name."""
    return results_dir() / params_path.resolve().parent.name / name


def execute_params(params_path: Path, *, output_dir: Path | None = None, progress: bool = True) -> Path:
    """Run the notebook named in a params file through Papermill; return the executed notebook's path.

    The YAML's top-level keys and ``profile`` (the file's folder name) are injected as parameters;
    the executed notebook is written into the run folder next to its metrics and records.
    """
    import papermill

    params = load_params(params_path)
    profile = params_path.resolve().parent.name
    run_dir = Path(output_dir) if output_dir else run_dir_for(params_path, params.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    notebook = notebooks_dir() / params.notebook
    if not notebook.is_file():
        raise ConfigError(f"{params_path}: key 'notebook' names {notebook}, which does not exist")
    injected = dict(read_yaml(params_path), profile=profile, output_dir=str(run_dir))
    output = run_dir / params.notebook
    papermill.execute_notebook(str(notebook), str(output), parameters=injected, cwd=str(notebooks_dir()),
                               progress_bar=progress, kernel_name="python3")
    return output


def numbered_notebooks() -> list[Path]:
    """``notebooks/NN_*.ipynb`` in order."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))


def _cmd_smoke(args: argparse.Namespace) -> int:
    import papermill

    target = results_dir() / "smoke"
    target.mkdir(parents=True, exist_ok=True)
    for notebook in numbered_notebooks():
        if args.only and not any(key in notebook.name for key in args.only):
            continue
        print(f"smoke: {notebook.name}", flush=True)
        papermill.execute_notebook(str(notebook), str(target / notebook.name), cwd=str(notebooks_dir()),
                                   progress_bar=False, kernel_name="python3")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    for path in args.params:
        output = execute_params(Path(path), output_dir=Path(args.output_dir) if args.output_dir else None)
        print(f"executed notebook: {output}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from snnbp.train import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, split=args.split, device=args.device)
    print(f"checkpoint={args.checkpoint} epoch={result['epoch']} split={result['split']} samples={result['samples']}")
    print(f"accuracy={result['accuracy']:.6f}")
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    from snnbp.paths import PROJECT_ROOT
    from snnbp.table import build_table, markdown_table, update_readme

    frame, text = build_table(Path(args.results) if args.results else None)
    print(text, end="")
    if not args.results:
        update_readme(PROJECT_ROOT / "README.md", markdown_table(frame[frame["profile"] != "smoke"]))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from snnbp.data.fetch import main as fetch_main

    return fetch_main(args.datasets)


def build_parser() -> argparse.ArgumentParser:
    """The ``snnbp`` argument parser."""
    parser = argparse.ArgumentParser(prog="snnbp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute the notebook of one or more params files with Papermill")
    run.add_argument("params", nargs="+", help="params/<profile>/<run>.yaml")
    run.add_argument("--output-dir", help="run folder (default results/<profile>/<name>)")
    run.set_defaults(func=_cmd_run)
    smoke = sub.add_parser("smoke", help="execute every numbered notebook with its smoke defaults into results/smoke/")
    smoke.add_argument("only", nargs="*", help="substrings of notebook names to run (default: all)")
    smoke.set_defaults(func=_cmd_smoke)
    evaluate = sub.add_parser("evaluate", help="recompute the accuracy of a checkpoint; last line: accuracy=<float>")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--split", choices=("test", "train", "validation"), default="test")
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(func=_cmd_evaluate)
    table = sub.add_parser("table", help="join every metrics.json with the papers' numbers (results/summary.csv, .md)")
    table.add_argument("--results", help="results folder (default: the project's results/)")
    table.set_defaults(func=_cmd_table)
    fetch = sub.add_parser("fetch", help="fetch MNIST / Fashion-MNIST into the data folder (sha256-verified)")
    fetch.add_argument("datasets", nargs="*")
    fetch.set_defaults(func=_cmd_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``snnbp`` command and of ``python -m snnbp``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, KeyError, FileNotFoundError, RuntimeError, FloatingPointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
