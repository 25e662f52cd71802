"""Notebooks run through Papermill with a params file, and the values they record are checked.

(pyhf style: one test per notebook, parameters pointing at small data, assertions on what the
notebook wrote, not on printed text.)
"""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest
import yaml

from snnbp.cli import execute_params
from snnbp.data.fetch import is_complete

ROOT = Path(__file__).resolve().parents[1]
needs_mnist = pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")


@needs_mnist
def test_ann_notebook_with_a_params_file_writes_metrics(tmp_path):
    params = {
        "name": "ann_papermill_test", "method": "ann", "notebook": "04_train_ann.ipynb", "seed": 2,
        "data": {"dataset": "mnist", "train_limit": 600, "test_limit": 200},
        "train": {"epochs": 1, "batch_size": 50, "num_threads": 1},
        "model": {"hidden": [32], "lr": 0.003, "weight_decay": 0.0},
    }
    profile_dir = tmp_path / "testprofile"
    profile_dir.mkdir()
    params_path = profile_dir / "ann.yaml"
    params_path.write_text(yaml.safe_dump(params))
    output = execute_params(params_path, output_dir=tmp_path / "run", progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert output.is_file() and metrics["network"] == "784-32-10" and metrics["epochs"] == 1
    assert 0.5 < metrics["test_accuracy"] <= 1.0
    assert (tmp_path / "run" / "figures" / "learning_curves.png").is_file()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "completed" and run["params"]["data"]["train_limit"] == 600


@needs_mnist
def test_data_notebook_runs_with_other_parameters(tmp_path):
    papermill.execute_notebook(str(ROOT / "notebooks" / "00_data.ipynb"), str(tmp_path / "out.ipynb"),
                               parameters={"rate_steps": 50, "samples_shown": 5}, cwd=str(ROOT / "notebooks"),
                               progress_bar=False, kernel_name="python3")
    assert (tmp_path / "out.ipynb").is_file()
