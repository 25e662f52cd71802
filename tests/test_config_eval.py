"""Params files of evaluation notebooks (``method: yoso``): validated by the evaluation's own
frozen dataclass, with errors that name the file and the key; training params are unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from snnbp.cli import execute_params
from snnbp.config import (
    ConfigError,
    EvalParams,
    RunParams,
    eval_params_from_dict,
    load_params,
    params_from_dict,
    params_to_dict,
)
from snnbp.yoso.study import StudyParams, eval_params_from_notebook

ROOT = Path(__file__).resolve().parents[1]

GOOD = {
    "name": "yoso_t",
    "method": "yoso",
    "notebook": "30_yoso.ipynb",
    "seed": 2,
    "stdbp_checkpoint": "a/stdbp.pt",
    "hm2bp_checkpoint": "b/hm2bp.pt",
    "test_images": 100,
    "hm2bp_images": 10,
    "mesh_sizes": [[2, 3]],
    "hidden_sizes": [4, 8],
}


def _write(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "yoso.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_good_file_loads_into_frozen_dataclasses(tmp_path):
    params = load_params(_write(tmp_path, GOOD))
    assert isinstance(params, EvalParams) and isinstance(params.study, StudyParams)
    assert params.name == "yoso_t" and params.seed == 2 and params.notebook == "30_yoso.ipynb"
    assert params.study.mesh_sizes == ((2, 3),) and params.study.hidden_sizes == (4, 8)
    assert params.study.yoso_params == "params/yoso/default.yaml"  # the default, relative to the project root
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.study.test_images = 5  # frozen


def test_params_to_dict_is_flat_like_the_file_and_round_trips(tmp_path):
    params = load_params(_write(tmp_path, GOOD))
    flat = params_to_dict(params)
    assert "study" not in flat and flat["mesh_sizes"] == [[2, 3]] and flat["method"] == "yoso"
    assert eval_params_from_dict(flat, "again") == params


def test_null_test_images_means_all(tmp_path):
    params = load_params(_write(tmp_path, {**GOOD, "test_images": None, "hm2bp_images": 5000}))
    assert params.study.test_images is None and params.study.hm2bp_images == 5000


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"surprise": 1}, ["'surprise'", "unknown key", "allowed keys for method 'yoso'", "stdbp_checkpoint"]),
        ({"data": {"dataset": "mnist"}}, ["'data'", "unknown key"]),
        ({"stdbp_checkpoint": None}, ["stdbp_checkpoint", "expected str"]),
        ({"stdbp_checkpoint": " "}, ["stdbp_checkpoint", "empty"]),
        ({"test_images": 0}, ["test_images", ">= 1"]),
        ({"test_images": "all"}, ["test_images", "expected"]),
        ({"hm2bp_images": 0}, ["hm2bp_images", ">= 1"]),
        ({"hm2bp_images": 200}, ["hm2bp_images", "test_images", "same images"]),
        ({"mesh_sizes": [[3]]}, ["mesh_sizes[0]", "expected 2 items"]),
        ({"mesh_sizes": [[0, 3]]}, ["mesh_sizes[0]", ">= 1"]),
        ({"mesh_sizes": []}, ["mesh_sizes", "at least one"]),
        ({"hidden_sizes": [4, -1]}, ["hidden_sizes[1]", ">= 1"]),
        ({"seed": "one"}, ["seed", "expected int"]),
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path, changes, fragments):
    path = _write(tmp_path, {**GOOD, **changes})
    with pytest.raises(ConfigError) as error:
        load_params(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("key", ["stdbp_checkpoint", "hm2bp_checkpoint", "name", "notebook", "seed"])
def test_missing_required_keys_are_named(tmp_path, key):
    path = _write(tmp_path, {k: v for k, v in GOOD.items() if k != key})
    with pytest.raises(ConfigError, match=f"missing key '{key}'"):
        load_params(path)


def test_training_params_still_load_as_run_params_and_unknown_methods_list_evaluations(tmp_path):
    training = {
        "name": "t",
        "method": "ann",
        "notebook": "04_train_ann.ipynb",
        "seed": 3,
        "data": {"dataset": "mnist"},
        "train": {"epochs": 1, "batch_size": 4},
        "model": {},
    }
    assert isinstance(load_params(_write(tmp_path, training)), RunParams)
    with pytest.raises(ConfigError, match=r"unknown method 'magic'.*evaluations: \['yoso'\]"):
        load_params(_write(tmp_path, {**training, "method": "magic"}))


def test_an_evaluation_is_not_accepted_where_training_params_are_needed():
    with pytest.raises(ConfigError, match="names the evaluation 'yoso', which trains nothing"):
        params_from_dict(GOOD, "checkpoint params")


def test_notebook_parameters_validate_the_same_way():
    values = {**GOOD, "profile": "smoke", "output_dir": None, "torch": object()}  # other globals are ignored
    params = eval_params_from_notebook(values)
    assert params.study.hidden_sizes == (4, 8)
    with pytest.raises(ConfigError, match="notebook parameters: key 'test_images'"):
        eval_params_from_notebook({**values, "test_images": -3})


def test_the_committed_yoso_params_file_is_valid_and_points_at_the_training_runs():
    from snnbp.paths import resolve

    path = ROOT / "params" / "cpu" / "yoso_mnist.yaml"
    params = load_params(path)
    assert isinstance(params, EvalParams) and params.method == "yoso" and params.study.test_images is None
    assert params.profile == "cpu"
    assert (ROOT / "notebooks" / params.notebook).is_file()
    assert resolve(params.study.yoso_params) == ROOT / "params" / "yoso" / "default.yaml"
    for key, training in (("stdbp_checkpoint", "stdbp_mnist_fc"), ("hm2bp_checkpoint", "hm2bp_mnist_fc")):
        run = load_params(ROOT / "params" / "cpu" / f"{training}.yaml")
        model_file = "best.pt" if run.train.validation else "checkpoint.pt"  # the run's model (snnbp.train)
        assert not getattr(params.study, key).startswith("..")  # relative to the repository root, not to notebooks/
        assert resolve(getattr(params.study, key)) == ROOT / "results" / "cpu" / run.name / model_file


def test_root_relative_paths_keep_the_identity_of_the_committed_yoso_run():
    """The params file moved from notebooks/-relative paths (``../results/...``) to root-relative ones;
    the run's identity (params hash over the params and its recorded inputs) is unchanged, so the
    committed run is up to date whenever its input files are the ones it recorded."""
    import hashlib
    import json

    from snnbp.yoso.study import identity_params

    params = load_params(ROOT / "params" / "cpu" / "yoso_mnist.yaml")
    record = json.loads((ROOT / "results" / "cpu" / "yoso_mnist" / "run.json").read_text())
    stored = {k: v for k, v in record["params"].items() if k not in ("notebook", "profile")}
    identity = identity_params(params)
    assert {k: stored[k] for k in identity} == identity
    # keys the identity leaves out (added after the first runs) are at their defaults in the record
    defaults = {f.name: f.default for f in dataclasses.fields(StudyParams)}
    for key in set(stored) - set(identity):
        assert stored[key] == json.loads(json.dumps(defaults[key])), key
    digest = hashlib.sha256(
        json.dumps({"params": identity_params(params), "inputs": record["inputs"]}, sort_keys=True).encode()
    ).hexdigest()
    assert (
        digest
        == record["params_hash"]
        == json.loads((ROOT / "results" / "cpu" / "yoso_mnist" / "metrics.json").read_text())["params_hash"]
    )


def test_study_paths_resolve_from_the_project_root_whatever_the_working_directory(tmp_path, monkeypatch):
    from snnbp.yoso.study import existing_file

    monkeypatch.chdir(tmp_path)
    assert (
        existing_file("params/yoso/default.yaml", "accelerator params file")
        == ROOT / "params" / "yoso" / "default.yaml"
    )
    absolute = tmp_path / "model.pt"
    absolute.write_bytes(b"x")
    assert existing_file(str(absolute), "checkpoint") == absolute
    with pytest.raises(FileNotFoundError, match=str(ROOT / "results" / "nowhere.pt")):
        existing_file("results/nowhere.pt", "STDBP checkpoint")


def test_a_params_file_under_params_names_its_profile(tmp_path):
    from snnbp.config import profile_of
    from snnbp.paths import run_params_files

    for path in run_params_files():
        params = load_params(path)
        assert params.profile == path.parent.name, path
    outside = _write(tmp_path, GOOD)  # outside params/: optional, the folder's name by default
    assert load_params(outside).profile is None and profile_of(load_params(outside), outside) == tmp_path.name
    assert load_params(_write(tmp_path, {**GOOD, "profile": "mine"})).profile == "mine"
    with pytest.raises(ConfigError, match="key 'profile' must be one folder name"):
        load_params(_write(tmp_path, {**GOOD, "profile": "../cpu"}))


def test_a_params_file_under_params_with_another_or_no_profile_is_refused(tmp_path, monkeypatch):
    import shutil

    project = tmp_path / "clone"
    for part in ("notebooks", "params/cpu"):
        (project / part).mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    monkeypatch.setenv("SNNBP_ROOT", str(project))
    path = project / "params" / "cpu" / "yoso.yaml"
    path.write_text(yaml.safe_dump({**GOOD, "profile": "paper"}))
    with pytest.raises(
        ConfigError, match=r"key 'profile' must be 'cpu', the name of the file's folder params/cpu/, got 'paper'"
    ):
        load_params(path)
    path.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ConfigError, match=r"missing key 'profile' \(a params file under params/cpu/ names its profile"):
        load_params(path)
    path.write_text(yaml.safe_dump({**GOOD, "profile": "cpu"}))
    assert load_params(path).profile == "cpu"


def test_profile_stays_out_of_the_identity():
    from snnbp.train import params_hash

    training = {
        "name": "t",
        "method": "ann",
        "notebook": "04_train_ann.ipynb",
        "seed": 3,
        "data": {"dataset": "mnist"},
        "train": {"epochs": 1, "batch_size": 4},
        "model": {},
    }
    plain, named = params_from_dict(training, "a"), params_from_dict({**training, "profile": "cpu"}, "b")
    assert "profile" not in params_to_dict(plain) and params_to_dict(named)["profile"] == "cpu"
    assert params_hash(params_to_dict(plain)) == params_hash(params_to_dict(named))


def test_execute_params_reads_an_evaluation_file_up_to_its_notebook(tmp_path):
    path = _write(tmp_path, {**GOOD, "notebook": "99_absent.ipynb"})
    with pytest.raises(
        ConfigError, match="key 'notebook' must be '30_yoso.ipynb' for method 'yoso', got '99_absent.ipynb'"
    ):
        execute_params(path, output_dir=tmp_path / "run", progress=False)


def test_the_committed_yoso_run_is_up_to_date_with_its_params_file():
    """``snnbp run params/cpu/yoso_mnist.yaml`` has nothing to do: the record holds every key of the
    params (in the records' path form) and the input files it hashed."""
    from snnbp.execution import up_to_date

    params = load_params(ROOT / "params" / "cpu" / "yoso_mnist.yaml")
    assert up_to_date(ROOT / "results" / "cpu" / "yoso_mnist", params)
    changed = dataclasses.replace(params, study=dataclasses.replace(params.study, calibration_images=100))
    assert not up_to_date(ROOT / "results" / "cpu" / "yoso_mnist", changed)


def test_records_write_project_paths_relative_to_the_project_root(tmp_path):
    from snnbp.paths import project_root, root_relative, without_root

    root = project_root().resolve()
    assert root_relative(root / "results" / "cpu" / "x") == "results/cpu/x"
    assert root_relative(tmp_path / "elsewhere") == str((tmp_path / "elsewhere").resolve())
    text = f'{{"input_path": "{root}/notebooks/20_train_stdbp.ipynb", "other": "{tmp_path}/a"}}'
    assert without_root(text) == f'{{"input_path": "notebooks/20_train_stdbp.ipynb", "other": "{tmp_path}/a"}}'
