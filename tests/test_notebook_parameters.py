"""Notebook parameters: typed and explained for ``papermill --help-notebook``, checked when injected
(unknown names and another notebook's params file refused), and smoke run folders named by a hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from papermill.inspection import inspect_notebook

from snnbp.config import ConfigError
from snnbp.notebook import PARAMETERS_MARKER, check_cells, parameter_cells
from snnbp.runs import run_folder

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [
    ROOT / "notebooks" / name
    for name in (
        "00_data.ipynb",
        "01_problem_analysis.ipynb",
        "02_hm2bp_spsp.ipynb",
        "03_relpsp_stdbp.ipynb",
        "04_train_ann.ipynb",
        "10_train_hm2bp.ipynb",
        "20_train_stdbp.ipynb",
        "30_yoso.ipynb",
    )
]

PARAMS_CELL = '# parameters: literals only\nname: str = "x"  # the name\nnotebook: str = "20_train_stdbp.ipynb"  # this notebook\ntrain: dict = {"epochs": 2}  # section\n'


def _parameters_source(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_parameter_has_a_type_and_a_help_text(path):
    assert _parameters_source(path).lower().startswith(PARAMETERS_MARKER)  # the marker snnbp.notebook looks for
    parameters = inspect_notebook(str(path))
    assert parameters
    for name, parameter in parameters.items():
        assert parameter["inferred_type_name"] != "None", f"{path.name}: {name} has no type annotation"
        assert parameter["help"], f"{path.name}: {name} has no comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_checks_what_it_is_given(path):
    code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert any(
        call in code
        for call in (
            "check_parameters(globals())",
            "train_from_notebook(globals()",
            "study.eval_params_from_notebook(globals())",
        )
    )


def test_parameter_cells_are_found_in_the_kernel_history():
    injected = '# Parameters\nname = "y"\n'
    assert parameter_cells(["", PARAMS_CELL, injected, "x = 1"]) == (PARAMS_CELL, injected)
    assert parameter_cells(["", PARAMS_CELL, "x = 1"]) == (None, None)  # nothing injected: nothing to check
    check_cells(PARAMS_CELL, injected)  # a known name


def test_an_unknown_injected_name_is_refused_with_the_known_ones():
    with pytest.raises(
        ConfigError,
        match=r"unknown parameter 'epochs' .*parameters are name, notebook, train; "
        r"a key inside a section \(train\) is set by giving the whole section",
    ):
        check_cells(PARAMS_CELL, "# Parameters\nepochs = 1\n")


def test_another_notebooks_params_are_refused():
    with pytest.raises(
        ConfigError,
        match=r"these parameters are for notebooks/10_train_hm2bp.ipynb \(method 'hm2bp'\), "
        r"but this notebook is 20_train_stdbp.ipynb",
    ):
        check_cells(PARAMS_CELL, '# Parameters\nnotebook = "10_train_hm2bp.ipynb"\nmethod = "hm2bp"\n')


def test_the_library_checks_in_a_notebook_namespace():
    from snnbp.runs import run_params_from_notebook

    values = {"In": ["", PARAMS_CELL, "# Parameters\nepochs = 1\n"], "name": "x"}
    with pytest.raises(ConfigError, match="unknown parameter 'epochs'"):
        run_params_from_notebook(values)


def test_smoke_run_folders_carry_a_params_hash_and_full_runs_their_name(tmp_path):
    from snnbp.paths import results_dir

    assert (
        run_folder("stdbp_mnist_fc", "smoke", None, "0123456789abcdef")
        == results_dir() / "smoke" / "stdbp_mnist_fc-01234567"
    )
    assert run_folder("stdbp_mnist_fc", "cpu", None, "0123456789abcdef") == results_dir() / "cpu" / "stdbp_mnist_fc"
    assert run_folder("x", "smoke", str(tmp_path), "0123") == tmp_path


def test_editing_a_smoke_runs_parameters_starts_a_new_folder(tmp_path, monkeypatch):
    """What happens in JupyterLab: run the smoke defaults, change a value, run again: no checkpoint mismatch."""
    from snnbp import runs
    from snnbp.data.fetch import is_complete

    if not is_complete("mnist"):
        pytest.skip("MNIST not fetched (make data)")
    monkeypatch.setattr(runs, "results_dir", lambda: tmp_path)
    values = {
        "name": "ann_lab",
        "profile": "smoke",
        "method": "ann",
        "notebook": "04_train_ann.ipynb",
        "seed": 1,
        "data": {"dataset": "mnist", "train_limit": 200, "test_limit": 100},
        "train": {"epochs": 1, "batch_size": 100, "num_threads": 1},
        "model": {"hidden": [8]},
    }
    first = runs.train_from_notebook(values, profile="smoke", progress=False)
    edited = runs.train_from_notebook({**values, "model": {"hidden": [12]}}, profile="smoke", progress=False)
    again = runs.train_from_notebook(values, profile="smoke", progress=False)
    assert first.run_dir != edited.run_dir and again.run_dir == first.run_dir
    assert first.run_dir.parent == tmp_path / "smoke" and first.run_dir.name.startswith("ann_lab-")
    assert edited.metrics["network"] == "784-12-10"
