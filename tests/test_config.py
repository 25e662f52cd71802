"""Params files: every kind of error names the file, the key and what was expected."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from snnbp.config import ConfigError, load_params, params_to_dict

GOOD = {
    "name": "t",
    "method": "ann",
    "notebook": "04_train_ann.ipynb",
    "seed": 3,
    "data": {"dataset": "mnist", "train_limit": 10},
    "train": {"epochs": 1, "batch_size": 4},
    "model": {"hidden": [5], "lr": 0.01},
}


def _write(tmp_path: Path, content) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def _with(**changes):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = out
        for p in parents:
            target = target[p]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return out


def test_good_file_loads_into_frozen_dataclasses(tmp_path):
    params = load_params(_write(tmp_path, GOOD))
    assert params.model.hidden == (5,) and params.train.batch_size == 4 and params.data.test_limit is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.seed = 4  # frozen
    assert params_to_dict(params)["model"]["hidden"] == [5]


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"train__epochs": "ten"}, ["train.epochs", "expected int", "'ten'"]),
        ({"train__shuffle": 1}, ["train.shuffle", "expected bool"]),
        ({"model__lr": "fast"}, ["model.lr", "expected float"]),
        ({"model__hidden": 5}, ["model.hidden", "expected a list"]),
        ({"data__datset": "mnist"}, ["data.datset", "unknown key"]),
        ({"model__width": 3}, ["model.width", "unknown key"]),
        ({"surprise": 1}, ["surprise", "unknown key"]),
        ({"train__batch_size": KeyError}, ["missing key 'train.batch_size'", "int"]),
        ({"seed": KeyError}, ["missing key 'seed'"]),
        ({"method": "magic"}, ["method", "unknown method 'magic'"]),
        ({"model": KeyError}, ["missing key 'model'"]),
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path, changes, fragments):
    path = _write(tmp_path, _with(**changes))
    with pytest.raises(ConfigError) as error:
        load_params(path)
    message = str(error.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "absent.yaml")


def test_yaml_syntax_error_is_named(tmp_path):
    path = _write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        load_params(path)
    assert str(path) in str(error.value)


def test_every_committed_params_file_is_valid():
    from snnbp.paths import run_params_files

    root = Path(__file__).resolve().parents[1] / "params"
    files = run_params_files()
    assert files, "no params files found"
    for path in files:
        params = load_params(path)
        assert (root.parent / "notebooks" / params.notebook).is_file(), f"{path}: notebook {params.notebook} missing"
