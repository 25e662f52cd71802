"""The value checks of params files: every count, time, rate, name, notebook, dataset and device is
checked when the file is read, before a notebook or a kernel starts (:func:`check_run_values`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from snnbp.config_yaml import ConfigError
from snnbp.notation import LAYER_TOKEN, LAYER_TOKEN_HELP

if TYPE_CHECKING:
    from snnbp.config import RunParams


NOTEBOOKS = {
    "ann": "04_train_ann.ipynb",
    "hm2bp": "10_train_hm2bp.ipynb",
    "stdbp": "20_train_stdbp.ipynb",
    "yoso": "30_yoso.ipynb",
}
"""The notebook that runs each method (``notebook:`` must name it)."""

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(?::[0-9]+)?")
"""The values of ``train.device`` (matched whole)."""
"""A run ``name``: one path component of letters, digits, ``.``, ``_`` and ``-`` (not starting with a dot)."""

MAX_SEED = 2**63 - 1

Rule = tuple[Callable[[Any], bool], str]
COUNT: Rule = (lambda v: v >= 1, "an integer >= 1")
NON_NEGATIVE_COUNT: Rule = (lambda v: v >= 0, "an integer >= 0")
POSITIVE: Rule = (lambda v: math.isfinite(v) and v > 0, "a finite number > 0")
NON_NEGATIVE: Rule = (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
FINITE: Rule = (math.isfinite, "a finite number")
DECAY: Rule = (lambda v: 0 < v <= 1, "a number in (0, 1]")
MOMENT: Rule = (lambda v: 0 <= v < 1, "a number in [0, 1)")
AT_LEAST_ONE: Rule = (lambda v: math.isfinite(v) and v >= 1, "a finite number >= 1")
TIME_STEPS: Rule = (lambda v: v >= 2, "an integer >= 2 (input spikes fall on steps 1 .. T-1)")
SEED: Rule = (lambda v: 0 <= v <= MAX_SEED, f"an integer in [0, {MAX_SEED}]")
LAYER: Rule = (lambda v: bool(LAYER_TOKEN.match(str(v))), LAYER_TOKEN_HELP)

DATA_RULES: dict[str, Rule] = {"train_limit": COUNT, "test_limit": COUNT}
TRAIN_RULES: dict[str, Rule] = {
    "epochs": COUNT,
    "batch_size": COUNT,
    "eval_batch_size": COUNT,
    "num_threads": (lambda v: 1 <= v <= 1024, "an integer in [1, 1024]"),
    "validation": COUNT,
    "device": (lambda v: bool(DEVICE_PATTERN.fullmatch(v)), "one of 'auto', 'cpu', 'cuda' or 'cuda:<index>'"),
}
MODEL_RULES: dict[str, dict[str, Rule]] = {
    "ann": {"hidden": COUNT, "lr": POSITIVE, "weight_decay": NON_NEGATIVE},
    "stdbp": {
        "layers": LAYER,
        "hidden": COUNT,
        "conv_channels": COUNT,
        "conv_kernel": COUNT,
        "pool_size": COUNT,
        "theta": POSITIVE,
        "t_max": POSITIVE,
        "tau": POSITIVE,
        "init_std": NON_NEGATIVE,
        "lr": POSITIVE,
        "lr_decay": DECAY,
        "warmup_steps": NON_NEGATIVE_COUNT,
        "weight_decay": NON_NEGATIVE,
        "clip": POSITIVE,
        "t_silent": POSITIVE,
        "silent_penalty": NON_NEGATIVE,
        "chunk": COUNT,
        "stats_samples": NON_NEGATIVE_COUNT,
        "temperature": POSITIVE,
        "shift_pixels": NON_NEGATIVE_COUNT,
        "dropout": (MOMENT[0], "a probability in [0, 1)"),
    },
    "hm2bp": {
        "layers": LAYER,
        "thresholds": POSITIVE,
        "time_steps": TIME_STEPS,
        "tau_m": POSITIVE,
        "tau_s": POSITIVE,
        "t_ref": NON_NEGATIVE_COUNT,
        "threshold_margin": NON_NEGATIVE,
        "conv_threshold_margin": NON_NEGATIVE,
        "rate_scale": (
            AT_LEAST_ONE[0],
            "a finite number >= 1 (a pixel fires with probability pixel / (rate_scale * 255))",
        ),
        "init_fc": POSITIVE,
        "init_conv": POSITIVE,
        "desired": NON_NEGATIVE,
        "undesired": NON_NEGATIVE,
        "margin": NON_NEGATIVE,
        "lateral_strength": NON_NEGATIVE,
        "spsp_pre_shift": NON_NEGATIVE_COUNT,
        "spsp_lookback": POSITIVE,
        "silent_post_probe": NON_NEGATIVE,
        "silent_post_side_ratio": NON_NEGATIVE,
        "lambda_reg": NON_NEGATIVE,
        "beta_reg": NON_NEGATIVE,
        "weight_limit": POSITIVE,
        "boost_divisor": POSITIVE,
        "lr": POSITIVE,
        "adam_beta1": MOMENT,
        "adam_beta2": MOMENT,
        "adam_eps": POSITIVE,
        "dtype": (lambda v: v in ("float32", "float64"), "one of ['float32', 'float64']"),
        "engine": (lambda v: v in ("auto", "event", "torch"), "one of ['auto', 'event', 'torch']"),
        "distortion.scale": (lambda v: math.isfinite(v) and 0 <= v < 100, "a number in [0, 100) (percent)"),
        "distortion.rotation": (lambda v: math.isfinite(v) and 0 <= v <= 180, "a number in [0, 180] (degrees)"),
        "distortion.elastic": NON_NEGATIVE,
        "distortion.elastic_sigma": POSITIVE,
        "distortion.elastic_window": (lambda v: v >= 1 and v % 2 == 1, "an odd integer >= 1 (pixels)"),
    },
}
"""What each ``model:`` field allows, per method (a field a method does not have is skipped; a float
field without a rule must still be finite). Items of a list field are checked one by one."""


def _check_value(value: Any, rule: Rule | None, key: str, source: str) -> None:
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_value(item, rule, f"{key}[{index}]", source)
        return
    if rule is None:
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{source}: key '{key}' must be a finite number, got {value!r}")
        return
    test, allowed = rule
    if not test(value):
        raise ConfigError(f"{source}: key '{key}' must be {allowed}, got {value!r}")


def _check_section(section: Any, rules: dict[str, Rule], prefix: str, source: str) -> None:
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if dataclasses.is_dataclass(value):  # a nested section: its rules are the dotted keys "<field>.<key>"
            inner = {k.split(".", 1)[1]: r for k, r in rules.items() if k.startswith(f"{field.name}.")}
            _check_section(value, inner, f"{prefix}.{field.name}", source)
            continue
        _check_value(value, rules.get(field.name), f"{prefix}.{field.name}", source)


def check_shell(shell: Any, source: str) -> None:
    """``name``, ``profile``, ``method``, ``notebook`` and ``seed``, common to every params file."""
    if not SAFE_NAME.match(shell.name):
        raise ConfigError(
            f"{source}: key 'name' must be one folder name of letters, digits, '.', '_' and '-' "
            f"(not starting with '.', at most 100 characters), got {shell.name!r}"
        )
    if shell.profile is not None and not SAFE_NAME.match(shell.profile):
        raise ConfigError(
            f"{source}: key 'profile' must be one folder name of letters, digits, '.', '_' and '-' "
            f"(not starting with '.', at most 100 characters), got {shell.profile!r}"
        )
    expected = NOTEBOOKS.get(shell.method)
    if expected is not None and shell.notebook != expected:
        raise ConfigError(
            f"{source}: key 'notebook' must be {expected!r} for method {shell.method!r}, got {shell.notebook!r}"
        )
    _check_value(shell.seed, SEED, "seed", source)


def check_run_values(params: RunParams, source: str) -> None:
    """Range-check every value of training params (see :data:`MODEL_RULES`).

    Raises:
        ConfigError: one line naming ``source``, the dotted key, the value and what is allowed.
    """
    from snnbp.datasets import LOADERS

    check_shell(params, source)
    if params.data.dataset not in LOADERS:
        raise ConfigError(f"{source}: key 'data.dataset' must be one of {sorted(LOADERS)}, got {params.data.dataset!r}")
    _check_section(params.data, DATA_RULES, "data", source)
    _check_section(params.train, TRAIN_RULES, "train", source)
    limit, held_out = params.data.train_limit, params.train.validation
    if limit is not None and held_out is not None and held_out >= limit:
        raise ConfigError(
            f"{source}: key 'train.validation' ({held_out}) must be smaller than 'data.train_limit' "
            f"({limit}): the hold-out would leave nothing to train on"
        )
    if params.train.validation_stratified and held_out is None:
        raise ConfigError(
            f"{source}: key 'train.validation_stratified' is true but 'train.validation' is unset: "
            f"say how many training samples to hold out"
        )
    _check_section(params.model, MODEL_RULES.get(params.method, {}), "model", source)
    if params.method == "hm2bp":
        layers, thresholds = getattr(params.model, "layers", ()), getattr(params.model, "thresholds", ())
        if len(thresholds) != len(layers) + 1:
            raise ConfigError(
                f"{source}: key 'model.thresholds' must hold {len(layers) + 1} values (one per entry of "
                f"model.layers plus the output layer), got {len(thresholds)}"
            )
