"""Every params value is range-checked when the file is read, and YAML surprises are refused.

Each case is one line of the error message: the file, the dotted key, the value, what is allowed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from snnbp.config import ConfigError, load_params, parse_yaml, read_yaml

ROOT = Path(__file__).resolve().parents[1]

ANN = {
    "name": "t",
    "method": "ann",
    "notebook": "04_train_ann.ipynb",
    "seed": 3,
    "data": {"dataset": "mnist", "train_limit": 100, "test_limit": 50},
    "train": {"epochs": 1, "batch_size": 4},
    "model": {"hidden": [5], "lr": 0.01},
}
STDBP = {
    **ANN,
    "method": "stdbp",
    "notebook": "20_train_stdbp.ipynb",
    "model": {"hidden": [5], "t_max": 5.0, "clip": 2.0, "chunk": 16, "theta": 1.0},
}
HM2BP = {
    **ANN,
    "method": "hm2bp",
    "notebook": "10_train_hm2bp.ipynb",
    "model": {"layers": ["8"], "thresholds": [2.0, 2.0], "time_steps": 20, "tau_m": 64.0, "engine": "auto"},
}


def _write(tmp_path: Path, content, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def _changed(base: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(base)
    *parents, last = dotted.split(".")
    target = out
    for part in parents:
        target = target[part]
    target[last] = value
    return out


@pytest.mark.parametrize(
    "base, key, value, allowed",
    [
        (ANN, "train.epochs", 0, "an integer >= 1"),
        (ANN, "train.epochs", -1, "an integer >= 1"),
        (ANN, "data.test_limit", 0, "an integer >= 1"),
        (ANN, "data.train_limit", -10, "an integer >= 1"),
        (ANN, "train.batch_size", 0, "an integer >= 1"),
        (ANN, "train.eval_batch_size", 0, "an integer >= 1"),
        (ANN, "train.num_threads", -1, "an integer in [1, 1024]"),
        (ANN, "train.validation", 0, "an integer >= 1"),
        (ANN, "model.lr", float("nan"), "a finite number > 0"),
        (ANN, "model.lr", float("inf"), "a finite number > 0"),
        (ANN, "model.lr", -0.1, "a finite number > 0"),
        (ANN, "model.lr", 0, "a finite number > 0"),
        (ANN, "model.hidden", [5, 0], "an integer >= 1"),
        (ANN, "model.weight_decay", -1.0, "a finite number >= 0"),
        (ANN, "seed", -1, "an integer in [0,"),
        (STDBP, "model.chunk", 0, "an integer >= 1"),
        (STDBP, "model.t_max", 0.0, "a finite number > 0"),
        (STDBP, "model.t_max", -5.0, "a finite number > 0"),
        (STDBP, "model.clip", 0.0, "a finite number > 0"),
        (STDBP, "model.clip", -1.0, "a finite number > 0"),
        (STDBP, "model.theta", 0.0, "a finite number > 0"),
        (STDBP, "model.lr_decay", 0.0, "a number in (0, 1]"),
        (STDBP, "model.init_mean", float("nan"), "a finite number"),
        (STDBP, "model.layers", ["16C3", "P0"], "'<N>' (fully connected)"),
        (HM2BP, "model.time_steps", 0, "an integer >= 2"),
        (HM2BP, "model.tau_m", 0.0, "a finite number > 0"),
        (HM2BP, "model.thresholds", [0.0, 2.0], "a finite number > 0"),
        (HM2BP, "model.thresholds", [2.0, -1.0], "a finite number > 0"),
        (HM2BP, "model.layers", ["0"], "'<N>' (fully connected)"),
        (HM2BP, "model.layers", ["15C0"], "'<N>' (fully connected)"),
        (HM2BP, "model.rate_scale", 0.5, "a finite number >= 1"),
        (HM2BP, "model.adam_beta2", 1.0, "a number in [0, 1)"),
        (HM2BP, "model.engine", "fast", "one of ['auto', 'event', 'torch']"),
        (HM2BP, "model.dtype", "float16", "one of ['float32', 'float64']"),
    ],
)
def test_out_of_range_values_are_refused_in_one_line(tmp_path, base, key, value, allowed):
    path = _write(tmp_path, _changed(base, key, value))
    with pytest.raises(ConfigError) as error:
        load_params(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: key '{key}") and allowed in message
    assert any(f"got {item!r}" in message for item in (value if isinstance(value, list) else [value]))


@pytest.mark.parametrize("engine", ["auto", "event", "torch"])
def test_every_hm2bp_engine_is_accepted(tmp_path, engine):
    assert load_params(_write(tmp_path, _changed(HM2BP, "model.engine", engine))).model.engine == engine


def test_thresholds_must_match_the_layers(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'model.thresholds' must hold 2 values .* got 3"):
        load_params(_write(tmp_path, _changed(HM2BP, "model.thresholds", [1.0, 2.0, 3.0])))


def test_a_hold_out_as_large_as_the_training_subset_is_refused(tmp_path):
    with pytest.raises(
        ConfigError, match=r"'train.validation' \(100\) must be smaller than 'data.train_limit' \(100\)"
    ):
        load_params(_write(tmp_path, _changed(ANN, "train.validation", 100)))


def test_unknown_dataset_is_refused_at_load_time(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'data.dataset' must be one of \[.*'mnist'.*\], got 'cifar100'"):
        load_params(_write(tmp_path, _changed(ANN, "data.dataset", "cifar100")))


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", ".", "..", ".hidden", "", "x" * 101, "a b", "a\nb"])
def test_a_run_name_is_one_safe_folder_name(tmp_path, name):
    with pytest.raises(ConfigError, match="key 'name' must be one folder name"):
        load_params(_write(tmp_path, {**ANN, "name": name}))


def test_the_notebook_must_be_the_methods(tmp_path):
    with pytest.raises(
        ConfigError, match="key 'notebook' must be '20_train_stdbp.ipynb' for method 'stdbp', got '04_train_ann.ipynb'"
    ):
        load_params(_write(tmp_path, {**STDBP, "notebook": "04_train_ann.ipynb"}))
    with pytest.raises(ConfigError, match="key 'notebook' must be '04_train_ann.ipynb'"):
        load_params(_write(tmp_path, {**ANN, "notebook": "../../evil.ipynb"}))


def test_exponent_floats_are_floats(tmp_path):
    path = _write(tmp_path, yaml.safe_dump(ANN).replace("lr: 0.01", "lr: 1e-3"))
    assert load_params(path).model.lr == pytest.approx(1e-3)
    assert parse_yaml("a: 1e-3\nb: 5E+2\nc: -2.5e-1\nd: 10\ne: 1.5\nf: 1_000\ng: 1e3x\n", "s") == {
        "a": 1e-3,
        "b": 500.0,
        "c": -0.25,
        "d": 10,
        "e": 1.5,
        "f": 1000,
        "g": "1e3x",
    }


def test_duplicate_keys_are_refused(tmp_path):
    path = _write(tmp_path, yaml.safe_dump(ANN) + "seed: 4\n")
    with pytest.raises(
        ConfigError, match=r"not valid YAML at line \d+, column 1: duplicate key 'seed' \(first at line \d+\)"
    ):
        load_params(path)
    nested = yaml.safe_dump(ANN).replace("  lr: 0.01\n", "  lr: 0.01\n  lr: 0.02\n")
    with pytest.raises(ConfigError, match="duplicate key 'lr'"):
        load_params(_write(tmp_path, nested))


def test_a_file_that_is_not_utf8_is_refused_cleanly(tmp_path):
    path = _write(tmp_path, yaml.safe_dump(ANN).encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset \d+\)") as error:
        load_params(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("1: x\nname: t\n", "key 1 in the top level is a int"),
        ("null: x\nname: t\n", "key None in the top level is a NoneType"),
        ("name: t\ndata: {1: 2, dataset: mnist}\n", "key 1 in section 'data' is a int"),
        ("? [a, b]\n: 1\n", "not valid YAML"),
        ("a: !!python/object/apply:os.system [echo]\n", "not valid YAML"),
        ("a: \x07\n", "not valid YAML"),
        ("[1, 2]\n", "expected a mapping at the top level"),
        ("", "expected a mapping at the top level"),
    ],
)
def test_odd_yaml_is_refused_in_one_line(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as error:
        read_yaml(_write(tmp_path, text))
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_huge_integers_where_floats_are_expected(tmp_path):
    with pytest.raises(ConfigError, match="key 'model.lr' expected a float, got an integer too large"):
        load_params(_write(tmp_path, yaml.safe_dump(ANN).replace("lr: 0.01", "lr: " + "9" * 400)))


def test_every_committed_params_file_and_record_passes_the_checks():
    import json

    from snnbp.config import _is_evaluation, eval_params_from_dict, params_from_dict
    from snnbp.paths import run_params_files

    for path in run_params_files():
        load_params(path)
    for path in sorted((ROOT / "results").glob("*/*/run.json")):
        stored = json.loads(path.read_text())["params"]
        (eval_params_from_dict if _is_evaluation(stored.get("method")) else params_from_dict)(stored, str(path))
