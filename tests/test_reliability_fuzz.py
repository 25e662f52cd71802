"""Property-based fuzzing (bounded, deterministic, a few seconds) of what reads outside input:
the params loader, the IDX reader and the N-MNIST event decoder.

Each reader either returns a well-formed value or raises its own one-line error, never anything else.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnbp.config import ConfigError, RunParams, load_params, params_from_dict, parse_yaml, read_yaml
from snnbp.data.base import DataIntegrityError
from snnbp.data.idx import read_idx_bytes
from snnbp.encoding.events import decode_nmnist_bytes

BOUNDED = settings(
    max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

GOOD = {
    "name": "fuzz",
    "method": "stdbp",
    "notebook": "20_train_stdbp.ipynb",
    "seed": 1,
    "data": {"dataset": "mnist", "train_limit": 100, "test_limit": 50},
    "train": {"epochs": 2, "batch_size": 8, "num_threads": 1, "validation": 10},
    "model": {"hidden": [8], "theta": 1.0, "t_max": 5.0, "lr": 0.001, "lr_decay": 0.9, "clip": 2.0, "chunk": 16},
}
PATHS = [(), ("data",), ("train",), ("model",)]
KEYS = [
    "name",
    "method",
    "notebook",
    "seed",
    "data",
    "train",
    "model",
    "dataset",
    "train_limit",
    "test_limit",
    "epochs",
    "batch_size",
    "num_threads",
    "validation",
    "hidden",
    "theta",
    "t_max",
    "lr",
    "lr_decay",
    "clip",
    "chunk",
    "kernel",
    "engine",
    "bogus",
    "",
    "../x",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["mnist", "relpsp", "alpha", "1e-3", "../../x", "/abs", "20_train_stdbp.ipynb", "auto"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.integers()), inner, max_size=3)
    ),
    max_leaves=6,
)
mutation = st.tuples(st.sampled_from(PATHS), st.sampled_from(KEYS), st.one_of(values, st.just(KeyError)))


def _mutated(changes) -> dict:
    content = copy.deepcopy(GOOD)
    for path, key, value in changes:
        target = content
        for part in path:
            if not isinstance(target.get(part), dict):
                break
            target = target[part]
        else:
            if value is KeyError:
                target.pop(key, None)
            else:
                target[key] = value
    return content


@BOUNDED
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_params_load_or_raise_a_config_error(changes):
    content = _mutated(changes)
    try:
        params = params_from_dict(content, "fuzz")
    except ConfigError as error:
        assert "\n" not in str(error) and str(error).startswith("fuzz")
        return
    assert isinstance(params, RunParams) and params.train.epochs >= 1 and params.train.batch_size >= 1
    assert params.model.lr > 0 and params.name and "/" not in params.name


@BOUNDED
@given(st.lists(mutation, min_size=1, max_size=3))
def test_mutated_params_survive_the_yaml_round_trip(changes):
    try:
        text = yaml.safe_dump(_mutated(changes))
    except yaml.YAMLError:
        return
    try:
        content = parse_yaml(text, "fuzz.yaml")
        params_from_dict(content, "fuzz.yaml")
    except ConfigError as error:
        assert "\n" not in str(error)


@BOUNDED
@given(st.binary(max_size=300), st.integers(min_value=0, max_value=400))
def test_any_bytes_in_a_params_file_load_or_raise_a_config_error(noise, cut):
    good = yaml.safe_dump(GOOD).encode()
    raw = good[:cut] + noise + good[cut:]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cpu" / "p.yaml"
        path.parent.mkdir()
        path.write_bytes(raw)
        try:
            read_yaml(path)
            load_params(path)
        except ConfigError as error:
            assert "\n" not in str(error) and str(path) in str(error)


@BOUNDED
@given(
    st.binary(max_size=64),
    st.lists(st.integers(min_value=0, max_value=6), max_size=4),
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
)
def test_the_idx_reader_returns_arrays_or_names_the_source(payload, shape, type_code):
    header = bytes([0, 0, type_code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()
    for raw in (header + payload, payload, header[: len(payload) % (len(header) + 1)]):
        try:
            array = read_idx_bytes(raw, "fuzz.idx")
        except DataIntegrityError as error:
            assert str(error).startswith("fuzz.idx: ")
            continue
        assert isinstance(array, np.ndarray) and list(array.shape) == shape


@BOUNDED
@given(st.binary(max_size=200))
def test_the_event_decoder_returns_events_or_a_value_error(raw):
    try:
        events = decode_nmnist_bytes(raw)
    except ValueError:
        assert len(raw) % 5
        return
    assert len(events) <= len(raw) // 5
    assert ((events["p"] == 0) | (events["p"] == 1)).all() and (events["t"] >= 0).all()
    assert (events["y"] != 240).all()  # overflow markers are dropped
