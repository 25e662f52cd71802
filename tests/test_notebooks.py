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
        "name": "ann_papermill_test",
        "method": "ann",
        "notebook": "04_train_ann.ipynb",
        "seed": 2,
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
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "00_data.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters={"rate_steps": 50, "samples_shown": 5},
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    assert (tmp_path / "out.ipynb").is_file()


def _recorded_corpora_present() -> bool:
    from snnbp.data.caltech import default_folder as caltech_folder
    from snnbp.data.emnist import packed_folder
    from snnbp.data.nmnist import default_folder as nmnist_folder
    from snnbp.paths import data_root

    return all(p.is_dir() for p in (nmnist_folder(), packed_folder(), data_root() / "fsdd", caltech_folder()))


def _text(cell) -> str:
    return "".join(
        "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])
    )


@needs_mnist
def test_data_notebook_smoke_profile_reads_no_recorded_data(tmp_path, monkeypatch):
    """The smoke profile (the committed outputs) prints the same without any data root."""
    empty_root = tmp_path / "empty_data_root"
    empty_root.mkdir()
    monkeypatch.setenv("SNNBP_DATA_ROOT", str(empty_root))
    out = tmp_path / "smoke.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "00_data.ipynb"),
        str(out),
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    executed = json.loads(out.read_text())["cells"]
    assert not any(o.get("output_type") == "error" for c in executed for o in c.get("outputs", []))
    pointers = [c for c in executed if "not read in the smoke profile" in _text(c)]
    assert len(pointers) == 4  # N-MNIST recordings, EMNIST, FSDD, Caltech


@needs_mnist
@pytest.mark.skipif(not _recorded_corpora_present(), reason="recorded corpora not under SNNBP_DATA_ROOT")
def test_data_notebook_full_run_shows_every_recorded_corpus(tmp_path):
    """recorded_data = True: every section that the smoke profile leaves empty now draws its figure."""
    notebook = ROOT / "notebooks" / "00_data.ipynb"
    out = tmp_path / "full.ipynb"
    papermill.execute_notebook(
        str(notebook),
        str(out),
        parameters={"recorded_data": True},
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        kernel_name="python3",
    )
    smoke = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    full = [
        c
        for c in json.loads(out.read_text())["cells"]
        if c["cell_type"] == "code" and "injected-parameters" not in c["metadata"].get("tags", [])
    ]
    assert len(smoke) == len(full)
    silent_in_smoke = [
        i
        for i, c in enumerate(smoke)
        if not c.get("outputs")
        and "parameters" not in c["metadata"].get("tags", [])
        and "import " not in "".join(c["source"])
    ]
    assert len(silent_in_smoke) >= 7  # the recorded sections' figures and front-end cells
    for i in silent_in_smoke:
        assert full[i]["outputs"], (
            f"code cell {i} shows nothing in the full run either: {''.join(full[i]['source'])[:80]}"
        )
    assert not any("not read in the smoke profile" in _text(c) for c in full)
    names = "\n".join(_text(c) for c in full)
    for name in (
        "N-MNIST (real, 1100-sample subset):",
        "EMNIST-ByMerge-test (re-split):",
        "FSDD spoken digits",
        "Caltech-101 face/motorbike",
    ):
        assert name in names
