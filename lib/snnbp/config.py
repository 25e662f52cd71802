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
one mapping is refused, and so is a key that is not a string.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable
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
    _check_string_keys(mapping, source, prefix)
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


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats (``1e-3``) and without silent duplicate keys."""

    yaml_implicit_resolvers = {key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key (a list or mapping as key): refused below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


# Exponent floats without a dot (1e-3, 5E+2), which YAML 1.1 reads as strings; the others resolve as before.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML ``text`` (see :class:`_Loader`); any error is a one-line :class:`ConfigError` naming ``source``."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise ConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        problem = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"{source}: not valid YAML: {problem}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with string keys.

    Raises:
        ConfigError: naming the file when it is missing, not UTF-8 text, not valid YAML, holds a
            duplicate key or a key that is not a string, or is not a mapping at the top level.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the params file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save the file as UTF-8"
        ) from None
    content = parse_yaml(text, str(path))
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(content).__name__}")
    _check_string_keys(content, str(path), "", deep=True)
    return content


def _check_string_keys(mapping: dict[Any, Any], source: str, prefix: str, *, deep: bool = False) -> None:
    """Refuse keys that are not strings (``1: x``, ``null: x``), naming the section."""
    for key, value in mapping.items():
        if not isinstance(key, str):
            where = f"section '{prefix}'" if prefix else "the top level"
            raise ConfigError(
                f"{source}: key {key!r} in {where} is a {type(key).__name__}; keys must be names (strings)"
            )
        if deep and isinstance(value, dict):
            _check_string_keys(value, source, f"{prefix}.{key}" if prefix else key, deep=True)
        if deep and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    _check_string_keys(
                        item, source, f"{prefix}.{key}[{index}]" if prefix else f"{key}[{index}]", deep=True
                    )


def params_from_dict(content: dict[str, Any], source: str) -> RunParams:
    """Validate a params mapping (e.g. from YAML or a checkpoint) into :class:`RunParams`."""
    from snnbp.methods import EVALUATIONS, method_module

    if not isinstance(content, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    _check_string_keys(content, source, "")
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
    _check_string_keys(content, source, "")
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
    _check_shell(shell, source)
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
    "stdbp": {"temperature": 1.0, "shift_pixels": 0},
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


# ---------------------------------------------------------------------------------- value checks

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
_HM2BP_LAYER = re.compile(r"^(?:[1-9][0-9]*|[1-9][0-9]*C[1-9][0-9]*|P[1-9][0-9]*)$")

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
    },
    "hm2bp": {
        "layers": (
            lambda v: bool(_HM2BP_LAYER.match(v)),
            "'<N>' (fully connected), '<C>C<k>' (convolution) or 'P<p>' (pooling), every number >= 1",
        ),
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


def _check_shell(shell: Any, source: str) -> None:
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

    _check_shell(params, source)
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
