"""Parameter files: YAML in, frozen dataclasses out, with errors that say what and where.

A params file (``params/<profile>/<run>.yaml``)::

    name: hm2bp_mnist_fc        # the run's folder: results/<profile>/<name>
    profile: cpu                # the params file's folder name (params/<profile>/)
    method: hm2bp               # ann | hm2bp | stdbp (snnbp.methods)
    notebook: 10_train_hm2bp.ipynb
    seed: 1                     # the root seed; every generator derives from it
    data: {dataset: mnist, train_limit: null, test_limit: null}
    train: {epochs: 20, batch_size: 32}
    model: {...}                # validated against the method's ModelParams

An evaluation notebook's params file (``method`` names an evaluation of
:data:`snnbp.methods.EVALUATIONS`, e.g. ``yoso``) has no ``data``/``train``/``model`` sections: it
holds ``name``, ``profile``, ``method``, ``notebook``, ``seed`` and the evaluation's own top-level
keys, validated by that evaluation's ``StudyParams`` into :class:`EvalParams`::

    name: yoso_mnist
    profile: cpu
    method: yoso
    notebook: 30_yoso.ipynb
    seed: 1
    stdbp_checkpoint: results/cpu/stdbp_mnist_fc/best.pt   # the evaluation's own keys
    ...

Paths in a params file are relative to the project root (or absolute), never to the working
directory (:func:`snnbp.paths.resolve`).

``profile`` names the params file's folder: a file under ``params/<profile>/`` must say that
folder's name (a copied file cannot write into another profile's results by mistake); elsewhere it
is optional and defaults to the file's folder name (:func:`profile_of`). It names the run folder
(``results/<profile>/<name>``) and the notebooks' titles, and never enters a run's identity
(:func:`snnbp.train.params_hash`).

:func:`load_params` reads either kind; :func:`params_from_dict` only training params (what a
checkpoint stores).

Every error (missing file, a file that is not UTF-8 text, YAML syntax, a duplicate key, unknown key,
missing key, wrong type, a value out of range) is a one-line :class:`ConfigError` naming the file,
the dotted key, the value and what is allowed. Every value is checked when the file is read, before
a notebook or a kernel starts: counts are integers >= 1, times, thresholds and learning rates finite
and positive, ``name`` one safe path component, ``notebook`` the method's notebook
(:data:`NOTEBOOKS`), ``data.dataset`` a known dataset (:data:`snnbp.datasets.LOADERS`).

YAML is read as YAML 1.2 reads numbers (``1e-3`` is a float, not a string); a key given twice in
one mapping is refused, and so is a key that is not a string (:mod:`snnbp.config_yaml`). The value
checks are in :mod:`snnbp.config_values`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from snnbp.config_values import DEVICE_PATTERN as DEVICE_PATTERN
from snnbp.config_values import NOTEBOOKS as NOTEBOOKS
from snnbp.config_values import check_run_values, check_shell
from snnbp.config_yaml import ConfigError as ConfigError
from snnbp.config_yaml import check_string_keys
from snnbp.config_yaml import parse_yaml as parse_yaml
from snnbp.config_yaml import read_yaml as read_yaml

T = TypeVar("T")


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
        validation_stratified: hold out samples of every class in proportion to the class sizes,
            evenly spaced within each class, instead of the last ``validation`` samples overall
            (for data stored class by class; :meth:`snnbp.data.base.LabelledSplit.hold_out`).
            None: as false.
        device: where to compute: ``auto`` (CUDA when torch sees a GPU and the run can use it,
            else the CPU), ``cpu``, ``cuda`` or ``cuda:<index>`` (:mod:`snnbp.devices`). Changes
            speed, not results: not part of the run's identity.
    """

    epochs: int
    batch_size: int
    eval_batch_size: int | None = None
    shuffle: bool = True
    num_threads: int | None = None
    validation: int | None = None
    device: str = "auto"
    validation_stratified: bool | None = None


@dataclass(frozen=True)
class RunParams:
    """A whole params file; ``model`` is the method's own ``ModelParams`` instance; ``profile`` the
    file's profile (None where it was not given, e.g. in a checkpoint written before it existed)."""

    name: str
    method: str
    notebook: str
    seed: int
    data: DataParams
    train: TrainParams
    model: Any
    profile: str | None = None


@dataclass(frozen=True)
class EvalParams:
    """An evaluation notebook's params file; ``study`` is the evaluation's own ``StudyParams`` instance
    (its fields are the file's remaining top-level keys)."""

    name: str
    method: str
    notebook: str
    seed: int
    study: Any
    profile: str | None = None


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
                if dataclasses.is_dataclass(option) and isinstance(value, dict):
                    raise  # a nested section's own error (unknown key, wrong type) names the key inside it
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
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{source}: key '{key}' expected a float, got an integer too large for one") from None
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
    check_string_keys(mapping, source, prefix)
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


def params_from_dict(content: dict[str, Any], source: str) -> RunParams:
    """Validate a params mapping (e.g. from YAML or a checkpoint) into :class:`RunParams`."""
    from snnbp.methods import EVALUATIONS, method_module

    if not isinstance(content, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    check_string_keys(content, source, "")
    if _is_evaluation(content.get("method")):
        raise ConfigError(
            f"{source}: key 'method' names the evaluation {content['method']!r}, which trains "
            "nothing; read the file with load_params"
        )
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
    params = RunParams(model=model, **{f.name: getattr(partial, f.name) for f in dataclasses.fields(_RunShell)})
    check_run_values(params, source)
    return params


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
    check_string_keys(content, source, "")
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
        raise ConfigError(
            f"{source}: unknown key {', '.join(repr(k) for k in unknown)} in the top level; allowed "
            f"keys for method {content['method']!r}: {allowed}"
        )
    shell = from_mapping(_EvalShell, {k: v for k, v in content.items() if k in shell_keys}, source=source)
    check_shell(shell, source)
    study = module.params_from_mapping({k: v for k, v in content.items() if k not in shell_keys}, source)
    return EvalParams(study=study, **{k: getattr(shell, k) for k in shell_keys})


def load_params(path: str | Path) -> RunParams | EvalParams:
    """Load and validate a params YAML file: :class:`EvalParams` when its ``method`` is an
    evaluation (:data:`snnbp.methods.EVALUATIONS`), else :class:`RunParams`."""
    content = read_yaml(path)
    _check_profile_folder(content, Path(path))
    return params_from_content(content, str(path))


def params_from_content(content: dict[str, Any], source: str) -> RunParams | EvalParams:
    """Validate a params mapping of either kind: :class:`EvalParams` when its ``method`` is an
    evaluation, else :class:`RunParams` (``source`` names it in every error)."""
    if _is_evaluation(content.get("method")):
        return eval_params_from_dict(content, source)
    return params_from_dict(content, source)


def _profile_folder(path: Path) -> str | None:
    """The profile a params file's place names: ``<profile>`` for ``<project>/params/<profile>/<run>.yaml``."""
    from snnbp.paths import ProjectRootError, params_dir

    try:
        params = params_dir().resolve()
    except ProjectRootError:
        return None
    folder = path.resolve().parent
    return folder.name if folder.parent == params else None


def _check_profile_folder(content: dict[str, Any], path: Path) -> None:
    """A file under ``params/<profile>/`` names that profile (key ``profile``)."""
    folder = _profile_folder(path)
    if folder is None:
        return
    if "profile" not in content:
        raise ConfigError(
            f"{path}: missing key 'profile' (a params file under params/{folder}/ names its profile: profile: {folder})"
        )
    if content["profile"] != folder:
        raise ConfigError(
            f"{path}: key 'profile' must be {folder!r}, the name of the file's folder params/{folder}/, "
            f"got {content['profile']!r}; move the file to params/{content['profile']}/ or change the key"
        )


def profile_of(params: RunParams | EvalParams, path: str | Path) -> str:
    """The profile of params read from ``path``: its ``profile`` key, else the file's folder name."""
    return params.profile or Path(path).resolve().parent.name


def _is_evaluation(method: Any) -> bool:
    from snnbp.methods import EVALUATIONS

    return isinstance(method, str) and method in EVALUATIONS


def params_to_dict(params: RunParams | EvalParams) -> dict[str, Any]:
    """The resolved params as plain data (tuples become lists), for records and checkpoints.

    An :class:`EvalParams` comes out flat, as in its file (the ``study`` fields at the top level). An
    unset ``profile`` is left out (so params written before the key existed read back the same).
    """
    if isinstance(params, EvalParams):
        flat = {f.name: getattr(params, f.name) for f in dataclasses.fields(EvalParams) if f.name != "study"}
        out = _plain({**flat, **dataclasses.asdict(params.study)})
    else:
        out = _plain(dataclasses.asdict(params))
    if out.get("profile") is None:
        out.pop("profile", None)
    return out


NOT_IDENTITY = ("notebook", "profile")
"""Top-level keys that do not change a run's results and stay out of its identity (params hash)."""

NOT_IDENTITY_TRAIN = ("num_threads", "eval_batch_size", "device")
"""``train`` keys that change speed, not results."""


NOT_IDENTITY_MODEL = ("engine", "gradient_stats")
"""Model options that change how a run computes or what it records, never its results."""

LATER_MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "stdbp": {"temperature": 1.0, "shift_pixels": 0, "layers": [], "dropout": 0.0},
    "hm2bp": {"distortion": None},
}
"""Model options added after runs had been recorded, per method, with the value that reproduces those
runs: at that value they stay out of the identity, so the older runs keep theirs."""


def run_identity(params: dict[str, Any]) -> dict[str, Any]:
    """The part of a training run's resolved params (:func:`params_to_dict`) that decides its results.

    Left out: :data:`NOT_IDENTITY`, :data:`NOT_IDENTITY_TRAIN`, unset (None) training options (so
    that an option added later keeps the identity of runs made before it existed), model options
    of :data:`LATER_MODEL_OPTIONS` at their neutral value (for the same reason) and
    :data:`NOT_IDENTITY_MODEL` (the engines compute the same spikes and gradients; statistics only
    record).
    """
    relevant = {k: v for k, v in params.items() if k not in NOT_IDENTITY}
    relevant["train"] = {k: v for k, v in params["train"].items() if k not in NOT_IDENTITY_TRAIN and v is not None}
    if isinstance(relevant.get("model"), dict):
        later = LATER_MODEL_OPTIONS.get(params.get("method"), {})
        relevant["model"] = {
            k: v
            for k, v in relevant["model"].items()
            if k not in NOT_IDENTITY_MODEL and not (k in later and v == later[k])
        }
    return relevant


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
    profile: str | None = None


@dataclass(frozen=True)
class _EvalShell:
    name: str
    method: str
    notebook: str
    seed: int
    profile: str | None = None
