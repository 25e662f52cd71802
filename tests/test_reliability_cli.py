"""`snnbp run` checks everything before a kernel starts, loses nothing, and speaks in one line.

Exit codes: 0 done (or nothing to do), 1 a run that started and failed, 2 bad input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from snnbp.cli import execute_notebook, execute_params
from snnbp.data.fetch import is_complete
from snnbp.io import RunLockedError, run_lock
from snnbp.train import CheckpointMismatchError

ROOT = Path(__file__).resolve().parents[1]
needs_mnist = pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")

ANN = {
    "name": "ann_cli_test",
    "method": "ann",
    "notebook": "04_train_ann.ipynb",
    "seed": 2,
    "data": {"dataset": "mnist", "train_limit": 300, "test_limit": 100},
    "train": {"epochs": 1, "batch_size": 50, "num_threads": 1},
    "model": {"hidden": [8], "lr": 0.003},
}


def _snnbp(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnbp", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def _params_file(tmp_path: Path, content: dict | str, name: str = "run.yaml") -> Path:
    folder = tmp_path / "testprofile"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    """The one error line (the Jupyter kernel's own start-up warnings, which snnbp does not print, aside)."""
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("[IPKernelApp]")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"train": {"epochs": 0, "batch_size": 50}}, "key 'train.epochs' must be an integer >= 1, got 0"),
        ({"name": "../../escaped"}, "key 'name' must be one folder name"),
        ({"data": {"dataset": "cifar10"}}, "key 'data.dataset' must be one of"),
    ],
)
def test_bad_values_exit_2_in_one_line_before_any_kernel(tmp_path, change, fragment):
    path = _params_file(tmp_path, {**ANN, **change})
    done = _snnbp("run", str(path), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 2 and fragment in _one_line_error(done)
    assert not (tmp_path / "out").exists() and not (ROOT / "results" / "escaped").exists()


def test_a_params_file_that_is_not_utf8_exits_2(tmp_path):
    path = tmp_path / "testprofile" / "bad.yaml"
    path.parent.mkdir()
    path.write_bytes(b"name: caf\xe9\n")
    done = _snnbp("run", str(path))
    assert done.returncode == 2 and "not UTF-8 text" in _one_line_error(done)


def test_a_run_folder_of_other_params_is_refused_before_papermill(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"params_hash": "0" * 64, "status": "completed"}))
    (folder / "04_train_ann.ipynb").write_text("the committed executed notebook\n")
    before = _snapshot(folder)
    with pytest.raises(CheckpointMismatchError, match="run.json records a run of other params"):
        execute_params(_params_file(tmp_path, ANN), output_dir=folder, progress=False)
    assert _snapshot(folder) == before
    done = _snnbp("run", str(_params_file(tmp_path, ANN)), "--output-dir", str(folder))
    assert done.returncode == 2 and "records a run of other params" in _one_line_error(done)
    assert _snapshot(folder) == before


def test_a_locked_run_folder_is_refused(tmp_path):
    folder = tmp_path / "run"
    with run_lock(folder):
        with pytest.raises(RunLockedError, match="in use by another run"):
            execute_params(_params_file(tmp_path, ANN), output_dir=folder, progress=False)
        done = _snnbp("run", str(_params_file(tmp_path, ANN)), "--output-dir", str(folder))
    assert done.returncode == 2 and "in use by another run" in _one_line_error(done)


def test_a_failing_notebook_keeps_the_previous_executed_notebook(tmp_path):
    """The notebook stops on an error (here: no MNIST in the data folder): the run folder's executed
    notebook is not replaced, the error is one line with the failed notebook's path."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "04_train_ann.ipynb").write_text("the committed executed notebook\n")
    empty = tmp_path / "nodata"
    empty.mkdir()
    path = _params_file(tmp_path, ANN)
    done = _snnbp("run", str(path), "--output-dir", "run", cwd=tmp_path, env={"SNNBP_DATA_DIR": "nodata"})
    line = _one_line_error(done)
    assert done.returncode == 2  # a missing dataset is bad input
    assert line.startswith("error: MissingDatasetError: MNIST is missing from " + str(empty.resolve() / "mnist"))
    assert f"(executed notebook: {folder.resolve() / '04_train_ann.failed.ipynb'})" in line
    assert (folder / "04_train_ann.ipynb").read_text() == "the committed executed notebook\n"
    assert (folder / "04_train_ann.failed.ipynb").is_file() and not list(folder.glob(".*"))


def test_an_error_in_a_notebook_cell_is_exit_1(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    notebook = tmp_path / "boom.ipynb"
    notebook.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "id": "boom",
                        "cell_type": "code",
                        "metadata": {},
                        "execution_count": None,
                        "outputs": [],
                        "source": "raise RuntimeError('diverged\\nbadly')",
                    }
                ],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )
    with pytest.raises(PapermillExecutionError) as error:
        execute_notebook(notebook, tmp_path / "out" / "boom.ipynb", progress=False)
    from snnbp.cli import report_error

    assert report_error(error.value) == 1
    assert error.value.notebook_path == tmp_path / "out" / "boom.failed.ipynb"
    assert not (tmp_path / "out" / "boom.ipynb").exists()


def test_exit_codes_are_documented_in_the_readme():
    text = (ROOT / "README.md").read_text()
    assert "## Exit codes" in text
    for code in ("`0`", "`1`", "`2`"):
        assert code in text.split("## Exit codes")[1].split("\n## ")[0]


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_evaluate_refuses_a_crafted_checkpoint(tmp_path):
    marker = tmp_path / "payload-ran"
    crafted = tmp_path / "best.pt"
    torch.save({"params": {}, "learner": _Payload(str(marker)), "epoch": 1}, crafted)
    done = _snnbp("evaluate", str(crafted))
    assert done.returncode == 2 and "refused: the file holds Python objects" in _one_line_error(done)
    assert not marker.exists()


def test_evaluate_on_a_missing_checkpoint_exits_2(tmp_path):
    done = _snnbp("evaluate", str(tmp_path / "absent.pt"))
    assert done.returncode == 2 and "checkpoint not found" in _one_line_error(done)


@needs_mnist
def test_a_run_then_a_rerun_that_changes_nothing(tmp_path):
    """A relative --output-dir is the current directory's; the executed notebook lands in place with no
    temporary left; running the same params again changes no file."""
    path = _params_file(tmp_path, ANN)
    done = _snnbp("run", str(path), "--output-dir", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "out"
    assert (folder / "04_train_ann.ipynb").is_file() and (folder / "metrics.json").is_file()
    assert not list(folder.glob(".*")) and not list(folder.glob("*.failed.ipynb"))
    assert not (ROOT / "notebooks" / "out").exists()
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "completed" and record["run_dir"] == str(folder.resolve())
    assert f"{ROOT.resolve()}/" not in (folder / "04_train_ann.ipynb").read_text()  # paths relative to the project
    before = _snapshot(folder)
    again = _snnbp("run", str(path), "--output-dir", str(folder))
    assert again.returncode == 0 and "up to date" in again.stdout
    assert _snapshot(folder) == before


def test_the_committed_runs_are_up_to_date():
    """Re-running a committed params file whose recorded run is complete (even one whose checkpoint is
    too large to commit) changes nothing."""
    from snnbp.cli import run_dir_for, up_to_date
    from snnbp.config import RunParams, load_params, params_to_dict
    from snnbp.train import params_hash

    checked = []
    for path in sorted((ROOT / "params" / "cpu").glob("*.yaml")):
        params = load_params(path)
        record_path = run_dir_for(path, params.name) / "run.json"
        if not isinstance(params, RunParams) or not record_path.is_file():
            continue
        record = json.loads(record_path.read_text())
        if record.get("status") == "completed" and record.get("params_hash") == params_hash(params_to_dict(params)):
            assert up_to_date(record_path.parent, params), path
            checked.append(path.stem)
    assert checked


def test_an_evaluation_is_up_to_date_only_with_the_same_inputs(tmp_path):
    from snnbp.cli import up_to_date
    from snnbp.config import eval_params_from_dict, params_to_dict

    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    content = {
        "name": "yoso_t",
        "method": "yoso",
        "notebook": "30_yoso.ipynb",
        "seed": 1,
        "stdbp_checkpoint": str(model),
        "hm2bp_checkpoint": str(model),
    }
    params = eval_params_from_dict(content, "test")
    import hashlib

    digest = hashlib.sha256(b"weights").hexdigest()
    record = {
        "status": "completed",
        "params": params_to_dict(params),
        "inputs": {
            "stdbp_checkpoint": {"path": str(model), "sha256": digest},
            "hm2bp_checkpoint": {"path": str(model), "sha256": digest},
        },
    }
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(record))
    assert up_to_date(folder, params)
    model.write_bytes(b"retrained")  # changed inputs: the study itself decides (and refuses)
    assert not up_to_date(folder, params)
    model.write_bytes(b"weights")
    other = eval_params_from_dict({**content, "hm2bp_images": 7}, "test")
    assert not up_to_date(folder, other)


@needs_mnist
def test_an_interrupt_stops_the_running_cell_at_once_and_the_run_records_it(tmp_path):
    import signal
    import time

    long_run = {**ANN, "data": {**ANN["data"], "train_limit": 2000}, "train": {**ANN["train"], "epochs": 500}}
    params = _params_file(tmp_path, {**long_run, "profile": "testprofile"})
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "snnbp", "run", str(params), "--output-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    try:
        for line in process.stdout:  # the epoch lines stream while the training cell runs
            if line.startswith("epoch 2 "):
                break
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert time.monotonic() - started < 60 and process.returncode == 1, stderr
    record = json.loads((run_dir / "run.json").read_text())  # the training cell saw the interrupt and said so
    assert record["status"] == "interrupted" and (run_dir / "checkpoint.pt").is_file(), stderr
    assert stderr.strip().splitlines()[-1].startswith("error: KeyboardInterrupt"), stderr
