"""The study's params: the ``yoso`` evaluation's keys, validated, and the run identity they give."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from snnbp.config import (
    NOT_IDENTITY,
    ConfigError,
    EvalParams,
    eval_params_from_dict,
    from_mapping,
    params_to_dict,
)
from snnbp.paths import record_form
from snnbp.yoso.energy import (
    BREAKDOWN,
    PAPER_LATENCY_MS,
    PAPER_POWER_MW,
)

SMOKE_PROFILE = "smoke"

GROUPS = tuple(BREAKDOWN) + ("leakage",)
"""Energy groups of the breakdown, in display order."""

PAPER_ENERGY_UJ = PAPER_POWER_MW * PAPER_LATENCY_MS
"""YOSO's energy per image derived from its published power and latency (mW x ms = uJ)."""


@dataclass(frozen=True)
class StudyParams:
    """The study's own keys (the params file's top level besides name, method, notebook, seed).

    Relative paths are from the project root, whatever the working directory
    (:func:`snnbp.paths.resolve`): ``results/cpu/stdbp_mnist_fc/best.pt``.

    Attributes:
        stdbp_checkpoint: STDBP checkpoint of a fully connected ReL-PSP network (``snnbp.train``).
        hm2bp_checkpoint: HM2-BP checkpoint of a fully connected network with the same layer sizes.
        yoso_params: the accelerator's params file (``arch:`` and ``energy:`` sections).
        test_images: the first ``n`` images of the test split (None: all of it).
        hm2bp_images: the first ``n`` test images of the rate-vs-temporal comparison.
        mesh_sizes: ``[rows, cols]`` of each mesh of the mesh sweep.
        hidden_sizes: hidden widths of the network-size sweep (the trained network truncated to its
            first ``k`` hidden neurons, not retrained); each at most the trained width.
        quantization_bits: weight widths of the fixed-point sweep (:mod:`snnbp.yoso.deployment`).
        quantization_dt_ms: time steps of the fixed-point sweep; the accelerator's own ``dt_ms``
            must be one of them (the smallest width within tolerance is named at it).
        state_extra_bits: slope and potential registers are this many bits wider than a weight.
        accuracy_tolerance: the largest accuracy loss (absolute, in [0, 1]) that still counts as
            "as accurate as float64".
        calibration_meshes: ``[rows, cols]`` of the meshes the calibration tries.
        calibration_images: the first ``n`` test images the calibration runs on (all of them when
            there are fewer).
        cnn_checkpoint: STDBP checkpoint of a ReL-PSP spiking CNN (conv + first-spike pooling
            layers, then fully connected ones).
        cnn_images: the first ``n`` test images the CNN runs on (None: the whole test split).
        cnn_mesh: ``[rows, cols]`` of the CNN's mesh.
        cnn_state_sram_words: state-SRAM words per PE on the CNN's accelerator (whole pooling
            windows and their flags must fit one PE: :mod:`snnbp.yoso.study.cnn`).
    """

    stdbp_checkpoint: str
    hm2bp_checkpoint: str
    yoso_params: str = "params/yoso/default.yaml"
    test_images: int | None = None
    hm2bp_images: int = 50
    mesh_sizes: tuple[tuple[int, int], ...] = ((3, 4), (4, 4), (6, 6), (8, 8))
    hidden_sizes: tuple[int, ...] = (100, 200, 400, 800)
    quantization_bits: tuple[int, ...] = (4, 6, 8, 12, 16)
    quantization_dt_ms: tuple[float, ...] = (0.05, 0.1, 0.2)
    state_extra_bits: int = 8
    accuracy_tolerance: float = 0.005
    calibration_meshes: tuple[tuple[int, int], ...] = ((4, 4), (8, 8))
    calibration_images: int = 1000
    cnn_checkpoint: str = "results/cpu/stdbp_mnist_cnn/best.pt"
    cnn_images: int | None = None
    cnn_mesh: tuple[int, int] = (12, 12)
    cnn_state_sram_words: int = 256


def params_from_mapping(mapping: dict[str, Any], source: str) -> StudyParams:
    """Validate the study's keys: types (:func:`snnbp.config.from_mapping`) and value ranges.

    Raises:
        ConfigError: naming ``source`` and the key.
    """
    params = from_mapping(StudyParams, mapping, source=source)
    for key in ("stdbp_checkpoint", "hm2bp_checkpoint", "yoso_params", "cnn_checkpoint"):
        if not getattr(params, key).strip():
            raise ConfigError(f"{source}: key '{key}' must be a path, got an empty string")
    if params.test_images is not None and params.test_images < 1:
        raise ConfigError(f"{source}: key 'test_images' must be >= 1 or null (all), got {params.test_images}")
    if params.hm2bp_images < 1:
        raise ConfigError(f"{source}: key 'hm2bp_images' must be >= 1, got {params.hm2bp_images}")
    if not params.mesh_sizes:
        raise ConfigError(f"{source}: key 'mesh_sizes' must list at least one [rows, cols]")
    for index, (rows, cols) in enumerate(params.mesh_sizes):
        if rows < 1 or cols < 1:
            raise ConfigError(f"{source}: key 'mesh_sizes[{index}]' must be [rows, cols] >= 1, got {[rows, cols]}")
    if not params.hidden_sizes:
        raise ConfigError(f"{source}: key 'hidden_sizes' must list at least one width")
    for index, width in enumerate(params.hidden_sizes):
        if width < 1:
            raise ConfigError(f"{source}: key 'hidden_sizes[{index}]' must be >= 1, got {width}")
    if not params.quantization_bits or min(params.quantization_bits) < 2:
        raise ConfigError(
            f"{source}: key 'quantization_bits' must list widths >= 2, got {list(params.quantization_bits)}"
        )
    if not params.quantization_dt_ms or min(params.quantization_dt_ms) <= 0:
        raise ConfigError(
            f"{source}: key 'quantization_dt_ms' must list time steps > 0, got {list(params.quantization_dt_ms)}"
        )
    if params.state_extra_bits < 0:
        raise ConfigError(f"{source}: key 'state_extra_bits' must be >= 0, got {params.state_extra_bits}")
    if not 0 < params.accuracy_tolerance < 1:
        raise ConfigError(f"{source}: key 'accuracy_tolerance' must be in (0, 1), got {params.accuracy_tolerance}")
    if not params.calibration_meshes or any(r < 1 or c < 1 for r, c in params.calibration_meshes):
        raise ConfigError(
            f"{source}: key 'calibration_meshes' must list [rows, cols] >= 1, got "
            f"{[list(m) for m in params.calibration_meshes]}"
        )
    if params.calibration_images < 1:
        raise ConfigError(f"{source}: key 'calibration_images' must be >= 1, got {params.calibration_images}")
    if params.cnn_images is not None and params.cnn_images < 1:
        raise ConfigError(f"{source}: key 'cnn_images' must be >= 1 or null (all), got {params.cnn_images}")
    if min(params.cnn_mesh) < 1 or params.cnn_state_sram_words < 1:
        raise ConfigError(
            f"{source}: keys 'cnn_mesh' and 'cnn_state_sram_words' must be >= 1, got "
            f"{list(params.cnn_mesh)} and {params.cnn_state_sram_words}"
        )
    if params.test_images is not None and params.hm2bp_images > params.test_images:
        raise ConfigError(
            f"{source}: key 'hm2bp_images' ({params.hm2bp_images}) must not exceed 'test_images' "
            f"({params.test_images}): both codings run on the same images"
        )
    return params


PATH_KEYS = ("stdbp_checkpoint", "hm2bp_checkpoint", "yoso_params", "cnn_checkpoint")
"""The study's keys that name files (relative to the project root, or absolute)."""


def eval_params_from_notebook(values: dict[str, Any]) -> EvalParams:
    """Validate the parameters the notebook received (its literals or Papermill's injection).

    Raises:
        ConfigError: a bad value, a name the notebook does not have, or parameters written for
            another notebook (:func:`snnbp.notebook.check_parameters`).
    """
    from snnbp.notebook import check_parameters

    check_parameters(values)
    keys = ["name", "method", "notebook", "seed", "profile"] + [f.name for f in dataclasses.fields(StudyParams)]
    return eval_params_from_dict({k: values[k] for k in keys if values.get(k, ...) is not ...}, "notebook parameters")


def record_params(params: EvalParams) -> dict[str, Any]:
    """The params as the run's records hold them: flat (:func:`snnbp.config.params_to_dict`), the file
    paths in :func:`snnbp.paths.record_form` (relative to ``notebooks/``, as every record since the
    first), so that the same files give the same identity whichever way the params file writes them."""
    flat = params_to_dict(params)
    return {k: record_form(v) if k in PATH_KEYS else v for k, v in flat.items()}


DEPLOYMENT_KEYS = (
    "quantization_bits",
    "quantization_dt_ms",
    "state_extra_bits",
    "accuracy_tolerance",
    "calibration_meshes",
    "calibration_images",
    "cnn_checkpoint",
    "cnn_images",
    "cnn_mesh",
    "cnn_state_sram_words",
)


def identity_params(params: EvalParams) -> dict[str, Any]:
    """:func:`record_params` without the keys that do not change results (``notebook``, ``profile``).

    The deployment keys (:data:`DEPLOYMENT_KEYS`, added after the first recorded runs) count only
    where a params file sets them away from their defaults, so older runs keep their identity.
    """
    defaults = {
        name: _record_value(field.default)
        for name, field in StudyParams.__dataclass_fields__.items()
        if name in DEPLOYMENT_KEYS
    }
    return {
        k: v
        for k, v in record_params(params).items()
        if k not in NOT_IDENTITY and not (k in defaults and _record_value(v) == defaults[k])
    }


def _record_value(value: Any) -> Any:
    """Tuples as the records' lists (nested), so that defaults compare with recorded values."""
    return [_record_value(item) for item in value] if isinstance(value, (tuple, list)) else value
