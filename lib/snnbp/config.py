"""Parameter files: YAML in, frozen dataclasses out, with errors that say what and where.

A params file (``params/<profile>/<run>.yaml``)::

    name: hm2bp_mnist_fc        # the run's folder: results/<profile>/<name>
    method: hm2bp               # ann | hm2bp | stdbp (snnbp.methods)
    notebook: 10_train_hm2bp.ipynb
    seed: 1                     # the root seed; every generator derives from it
    data: {dataset: mnist, train_limit: null, test_limit: null}
    train: {epochs: 20, batch_size: 32}
    model: {...}                # validated against the method's ModelParams

An evaluation notebook's params file (``method`` names an evaluation of
:data:`snnbp.methods.EVALUATIONS`, e.g. ``yoso``) has no ``data``/``train``/``model`` sections: it
holds ``name``, ``method``, ``notebook``, ``seed`` and the evaluation's own top-level keys, validated
by that evaluation's ``StudyParams`` into :class:`EvalParams`::

    name: yoso_mnist
    method: yoso
    notebook: 30_yoso.ipynb
    seed: 1
    stdbp_checkpoint: ../results/cpu/stdbp_mnist_fc/checkpoint.pt   # the evaluation's own keys
    ...

:func:`load_params` reads either kind; :func:`params_from_dict` only training params (what a
checkpoint stores).

Every error (missing file, YAML syntax, unknown key, missing key, wrong type) is a
:class:`ConfigError` naming the file, the dotted key and what was expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A params file is missing or malformed; the message names file, key and expectation."""


@dataclass(frozen=True)
class DataParams:
    """The ``data:`` section.

    Attributes:
        dataset: a key of :data:`snnbp.datasets.LOADERS` (e.g. ``mnist``, ``fashion_mnist``).
        train_limit: use only the first ``n`` training samples (None: all).
        test_limit: use only the first ``n`` test samples (None: all).
    """

    dataset: str
    train_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True)
class TrainParams:
    """The ``train:`` section.

    Attributes:
        epochs: number of passes over the training split.
        batch_size: samples per training step.
        eval_batch_size: samples per evaluation step (None: same as ``batch_size``).
        shuffle: reshuffle the training split every epoch (seeded).
        num_threads: torch intra-op threads (None: torch's default).
        validation: hold out the last ``n`` training samples as a validation split (None: none).
            The loop then evaluates it after every epoch and keeps the epoch with the best
            validation accuracy as the run's model (``best.pt``); the test split never selects.
    """

    epochs: int
    batch_size: int
    eval_batch_size: int | None = None
    shuffle: bool = True
    num_threads: int | None = None
    validation: int | None = None


@dataclass(frozen=True)
class RunParams:
    """A whole params file; ``model`` is the method's own ``ModelParams`` instance."""

    name: str
    method: str
    notebook: str
    seed: int
    data: DataParams
    train: TrainParams
    model: Any


@dataclass(frozen=True)
class EvalParams:
    """An evaluation notebook's params file; ``study`` is the evaluation's own ``StudyParams`` instance
    (its fields are the file's remaining top-level keys)."""

    name: str
    method: str
    notebook: str
    seed: int
    study: Any


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _coerce(value: Any, annotation: Any, source: str, key: str) -> Any:
    """Check ``value`` against ``annotation`` (recursively); return the typed value."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, source, key)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: key '{key}' expected {_type_name(annotation)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{source}: key '{key}' expected one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{key}' expected a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{source}: key '{key}' expected {len(args)} items, got {len(value)}")
            items = [_coerce(v, a, source, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            inner = args[0] if args else Any
            items = [_coerce(v, inner, source, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{key}' expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        return from_mapping(annotation, value, source=source, prefix=key)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}' expected bool (true/false), got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{key}' expected int, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: key '{key}' expected float, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{key}' expected str, got {value!r}")
        return value
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"{source}: key '{key}' expected null, got {value!r}")
        return None
    raise ConfigError(f"{source}: key '{key}' has an unsupported annotation {annotation!r}")


def from_mapping(cls: type[T], mapping: Any, *, source: str, prefix: str = "") -> T:
    """Build the frozen dataclass ``cls`` from ``mapping``, validating keys and types.

    Fields without a default are required; fields with a default may be omitted.

    Raises:
        ConfigError: on an unknown key, a missing key or a wrong type, naming ``source`` and the
            dotted key.
    """
    where = f"section '{prefix}'" if prefix else "the top level"
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: {where} must be a mapping of keys to values, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        dotted = ", ".join(f"'{prefix + '.' if prefix else ''}{k}'" for k in unknown)
        raise ConfigError(f"{source}: unknown key {dotted} in {where}; allowed keys: {sorted(fields)}")
    values = {}
    for name, field in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in mapping:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: missing key '{key}' (expected {_type_name(hints[name])})")
            continue
        values[name] = _coerce(mapping[name], hints[name], source, key)
    return cls(**values)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a syntax error is a :class:`ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(content).__name__}")
    return content


def params_from_dict(content: dict[str, Any], source: str) -> RunParams:
    """Validate a params mapping (e.g. from YAML or a checkpoint) into :class:`RunParams`."""
    from snnbp.methods import EVALUATIONS, method_module

    if not isinstance(content, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    if _is_evaluation(content.get("method")):
        raise ConfigError(f"{source}: key 'method' names the evaluation {content['method']!r}, which trains "
                          "nothing; read the file with load_params")
    model_section = content.get("model")
    shell = {k: v for k, v in content.items() if k != "model"}
    partial = from_mapping(_RunShell, shell, source=source)
    try:
        module = method_module(partial.method)
    except KeyError as exc:
        raise ConfigError(f"{source}: key 'method' {exc.args[0]} (evaluations: {sorted(EVALUATIONS)})") from exc
    if model_section is None:
        raise ConfigError(f"{source}: missing key 'model' (expected the {partial.method} model section)")
    model = from_mapping(module.ModelParams, model_section, source=source, prefix="model")
    return RunParams(model=model, **{f.name: getattr(partial, f.name) for f in dataclasses.fields(_RunShell)})


def eval_params_from_dict(content: dict[str, Any], source: str) -> EvalParams:
    """Validate an evaluation's params mapping into :class:`EvalParams`.

    The top level holds the keys of every params file but ``data``/``train``/``model`` (``name``,
    ``method``, ``notebook``, ``seed``) plus the fields of the evaluation's ``StudyParams``.

    Raises:
        ConfigError: an unknown ``method``, an unknown or missing key, a wrong type or a bad value,
            naming ``source`` and the key.
    """
    from snnbp.methods import evaluation_module

    if not isinstance(content, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    if "method" not in content:
        raise ConfigError(f"{source}: missing key 'method' (expected str)")
    if not isinstance(content["method"], str):
        raise ConfigError(f"{source}: key 'method' expected str, got {content['method']!r}")
    try:
        module = evaluation_module(content["method"])
    except KeyError as exc:
        raise ConfigError(f"{source}: key 'method' {exc.args[0]}") from exc
    shell_keys = [f.name for f in dataclasses.fields(_EvalShell)]
    allowed = sorted(set(shell_keys) | {f.name for f in dataclasses.fields(module.StudyParams)})
    unknown = sorted(set(content) - set(allowed))
    if unknown:
        raise ConfigError(f"{source}: unknown key {', '.join(repr(k) for k in unknown)} in the top level; allowed "
                          f"keys for method {content['method']!r}: {allowed}")
    shell = from_mapping(_EvalShell, {k: v for k, v in content.items() if k in shell_keys}, source=source)
    study = module.params_from_mapping({k: v for k, v in content.items() if k not in shell_keys}, source)
    return EvalParams(study=study, **{k: getattr(shell, k) for k in shell_keys})


def load_params(path: str | Path) -> RunParams | EvalParams:
    """Load and validate a params YAML file: :class:`EvalParams` when its ``method`` is an
    evaluation (:data:`snnbp.methods.EVALUATIONS`), else :class:`RunParams`."""
    content = read_yaml(path)
    if _is_evaluation(content.get("method")):
        return eval_params_from_dict(content, str(path))
    return params_from_dict(content, str(path))


def _is_evaluation(method: Any) -> bool:
    from snnbp.methods import EVALUATIONS

    return isinstance(method, str) and method in EVALUATIONS


def params_to_dict(params: RunParams | EvalParams) -> dict[str, Any]:
    """The resolved params as plain data (tuples become lists), for records and checkpoints.

    An :class:`EvalParams` comes out flat, as in its file (the ``study`` fields at the top level).
    """
    if isinstance(params, EvalParams):
        flat = {f.name: getattr(params, f.name) for f in dataclasses.fields(EvalParams) if f.name != "study"}
        return _plain({**flat, **dataclasses.asdict(params.study)})
    return _plain(dataclasses.asdict(params))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class _RunShell:
    name: str
    method: str
    notebook: str
    seed: int
    data: DataParams
    train: TrainParams


@dataclass(frozen=True)
class _EvalShell:
    name: str
    method: str
    notebook: str
    seed: int
