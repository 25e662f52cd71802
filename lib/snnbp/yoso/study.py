"""The YOSO study (``notebooks/30_yoso.ipynb``): trained checkpoints through the accelerator model.

From an STDBP checkpoint (a fully connected ReL-PSP network) to the simulator's inputs
(:func:`load_stdbp`), the accelerator against the model (:func:`fidelity_table`), the comparison
with YOSO's published numbers (:func:`paper_comparison_lines`, :func:`timing_variants`), sweeps over
mesh size (:func:`mesh_sweep`) and network size (:func:`size_sweep`), per-image energy against spike
counts (:func:`per_image_frame`), the HM2-BP rate-coded network of the same size through the same
cost model (:func:`evaluate_rate_coded`, :func:`rate_vs_temporal`), and the run's records
(:func:`open_results`, :class:`ResultsWriter`: ``metrics.json``, ``run.json``, ``figures/``).

This module is also the ``yoso`` evaluation of :data:`snnbp.methods.EVALUATIONS`: its
:class:`StudyParams` are the top-level keys of ``params/cpu/yoso_mnist.yaml`` (validated by
:func:`params_from_mapping`).

Units: time in ms, energy in uJ (per image), power in mW. Accuracies and fractions are in [0, 1].
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from snnbp.config import (
    NOT_IDENTITY,
    ConfigError,
    DataParams,
    EvalParams,
    RunParams,
    eval_params_from_dict,
    from_mapping,
    params_to_dict,
)
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.io import atomic_write_json
from snnbp.learner import Batch
from snnbp.notation import layer_sizes_name
from snnbp.paths import record_form, resolve, results_dir
from snnbp.progress import bar as progress_bar
from snnbp.provenance import RunRecord
from snnbp.yoso.arch import YosoArch, with_changes
from snnbp.yoso.energy import (
    BREAKDOWN,
    PAPER_LATENCY_MS,
    PAPER_POWER_MW,
    EnergyParams,
    EnergyReport,
    energy_report,
    fifo_kbytes,
)
from snnbp.yoso.mapping import Mapping, MappingError, map_network
from snnbp.yoso.report import YosoRun, evaluate
from snnbp.yoso.sim import Counts, concat_counts, rate_coded_counts

SMOKE_PROFILE = "smoke"

GROUPS = tuple(BREAKDOWN) + ("leakage",)
"""Energy groups of the breakdown, in display order."""

PAPER_ENERGY_UJ = PAPER_POWER_MW * PAPER_LATENCY_MS
"""YOSO's energy per image derived from its published power and latency (mW x ms = uJ)."""


# ------------------------------------------------------------------------------------- params


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


def params_from_mapping(mapping: dict[str, Any], source: str) -> StudyParams:
    """Validate the study's keys: types (:func:`snnbp.config.from_mapping`) and value ranges.

    Raises:
        ConfigError: naming ``source`` and the key.
    """
    params = from_mapping(StudyParams, mapping, source=source)
    for key in ("stdbp_checkpoint", "hm2bp_checkpoint", "yoso_params"):
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
    if params.test_images is not None and params.hm2bp_images > params.test_images:
        raise ConfigError(
            f"{source}: key 'hm2bp_images' ({params.hm2bp_images}) must not exceed 'test_images' "
            f"({params.test_images}): both codings run on the same images"
        )
    return params


PATH_KEYS = ("stdbp_checkpoint", "hm2bp_checkpoint", "yoso_params")
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


# ------------------------------------------------------------------------------ checkpoints


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


TRAIN_HINT = "train it first: snnbp run params/<profile>/<run>.yaml"


def existing_file(path: str | Path, what: str, hint: str = "") -> Path:
    """``path`` (relative to the project root, or absolute) as an absolute :class:`Path`, checked to be a file.

    Raises:
        FileNotFoundError: naming ``what``, the path (resolved) and the ``hint``.
    """
    path = resolve(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    return path


def _restore(
    checkpoint: str | Path, method: str, test: tuple[LabelledSplit, DatasetInfo] | None, n_images: int | None
) -> tuple[RunParams, dict[str, Any], Any, LabelledSplit, DatasetInfo]:
    """Read ``checkpoint`` (of ``method``), rebuild its learner and take the first ``n_images`` test
    samples (of ``test`` when given, else of the checkpoint's dataset, ignoring its ``test_limit``)."""
    from snnbp.datasets import load_dataset
    from snnbp.train import read_checkpoint, restore_learner

    path = existing_file(checkpoint, f"{method} checkpoint", TRAIN_HINT)
    state, params = read_checkpoint(path)
    if params.method != method:
        raise ValueError(f"{path}: a {params.method!r} checkpoint, expected {method!r}")
    if test is None:
        _, split, info = load_dataset(DataParams(params.data.dataset, train_limit=0, test_limit=n_images))
    else:
        split, info = test
    if n_images is not None and n_images > len(split):
        raise ValueError(f"{n_images} test images requested but the {info.name} test split has {len(split)}")
    return params, state, restore_learner(state, params, info), split.head(n_images), info


def _recorded_accuracy(state: dict[str, Any]) -> float | None:
    history = state.get("history") or []
    return history[-1].get("test_accuracy") if history else None


@dataclass(frozen=True)
class TtfsNetwork:
    """A trained fully connected ReL-PSP network as the accelerator takes it, with its test inputs.

    Attributes:
        weights: per layer ``[N_out, N_in]`` float64 (model units).
        theta: the firing threshold of every neuron.
        t_in: latency-coded test images in ms (``inf``: silent pixel), float64.
        labels: the images' classes.
        model_prediction: the trained model's own prediction (exact spike times, float32).
        network: e.g. ``"784-800-10"``.
        dataset: the dataset's display name.
        dataset_key: its params-file key (e.g. ``"mnist"``).
        t_max: the latency code's window (ms).
        epoch: the checkpoint's epoch.
        recorded_test_accuracy: the test accuracy the training run recorded (its whole test split).

    Shape:
        - t_in: ``[B, N_0]``; labels, model_prediction: ``[B]``.
    """

    weights: tuple[torch.Tensor, ...]
    theta: float
    t_in: torch.Tensor
    labels: torch.Tensor
    model_prediction: torch.Tensor
    network: str
    dataset: str
    dataset_key: str
    t_max: float
    epoch: int
    recorded_test_accuracy: float | None

    @property
    def n_images(self) -> int:
        """Test images held."""
        return int(self.labels.shape[0])

    @property
    def layer_sizes(self) -> list[int]:
        """``[N_0, N_1, ..., N_L]``."""
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def model_accuracy(self) -> float:
        """The trained model's accuracy on these images."""
        return float((self.model_prediction == self.labels).double().mean())


def load_stdbp(
    checkpoint: str | Path,
    n_images: int | None = None,
    *,
    test: tuple[LabelledSplit, DatasetInfo] | None = None,
    batch_size: int = 1000,
) -> TtfsNetwork:
    """Load an STDBP checkpoint into the simulator's weights, threshold and latency-coded inputs.

    The inputs are the learner's own latency code of the first ``n_images`` test images; the
    model's predictions come from the learner's exact (float32) forward pass on the same images.

    Args:
        checkpoint: an ``snnbp.train`` checkpoint of method ``stdbp``.
        n_images: test images to take (None: the whole test split).
        test: ``(split, info)`` to use instead of loading the checkpoint's dataset (tests).
        batch_size: images per model forward pass.

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: not an STDBP checkpoint, not the ReL-PSP kernel, a convolutional network, or
            more images requested than the test split has.
    """
    params, state, learner, split, info = _restore(checkpoint, "stdbp", test, n_images)
    if params.model.kernel != "relpsp":
        raise ValueError(f"{checkpoint}: kernel {params.model.kernel!r}; the accelerator implements the ReL-PSP neuron")
    if any(spec.kind != "fc" for spec in learner.specs):
        raise ValueError(
            f"{checkpoint}: network {learner.network} is not fully connected; the simulator maps FC layers only"
        )
    predictions = [
        learner.predict(
            Batch(
                split.inputs[i : i + batch_size],
                split.labels[i : i + batch_size],
                torch.arange(i, min(i + batch_size, len(split))),
                "test",
            )
        )
        for i in range(0, len(split), batch_size)
    ]
    return TtfsNetwork(
        weights=tuple(w.detach().to(torch.float64).cpu() for w in learner.weights),
        theta=float(params.model.theta),
        t_in=learner.encode(split.inputs).to(torch.float64).cpu(),
        labels=split.labels.clone(),
        model_prediction=torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long),
        network=learner.network,
        dataset=info.name,
        dataset_key=info.key,
        t_max=float(params.model.t_max),
        epoch=int(state["epoch"]),
        recorded_test_accuracy=_recorded_accuracy(state),
    )


def subset(net: TtfsNetwork, n_images: int) -> TtfsNetwork:
    """The same network with only its first ``n_images`` test images."""
    return dataclasses.replace(
        net, t_in=net.t_in[:n_images], labels=net.labels[:n_images], model_prediction=net.model_prediction[:n_images]
    )


def truncate_hidden(net: TtfsNetwork, width: int) -> TtfsNetwork:
    """The network with every hidden layer cut to its first ``width`` neurons (not retrained).

    Hidden neurons are exchangeable at initialisation, so the first ``width`` are a random subset.
    The model predictions are kept from the full network (they are not those of the truncation).

    Raises:
        ValueError: ``width`` exceeds a hidden layer's width, or the network has no hidden layer.
    """
    if len(net.weights) < 2:
        raise ValueError(f"network {net.network} has no hidden layer to truncate")
    widths = [w.shape[0] for w in net.weights[:-1]]
    if width > min(widths):
        raise ValueError(f"cannot truncate hidden layers of widths {widths} to {width} neurons")
    weights = [net.weights[0][:width]]
    weights += [w[:width, :width] for w in net.weights[1:-1]]
    weights.append(net.weights[-1][:, :width])
    sizes = [net.layer_sizes[0]] + [width] * (len(net.weights) - 1) + [net.layer_sizes[-1]]
    return dataclasses.replace(net, weights=tuple(weights), network=layer_sizes_name(sizes))


# ----------------------------------------------------------------------- the accelerator run


def run_accelerator(
    net: TtfsNetwork,
    arch: YosoArch,
    energy: EnergyParams,
    *,
    quantise: bool = True,
    pes_per_layer: Sequence[int] | None = None,
) -> YosoRun:
    """:func:`snnbp.yoso.evaluate` of ``net`` on its test images (with their labels)."""
    return evaluate(
        net.weights,
        net.theta,
        net.t_in,
        labels=net.labels,
        arch=arch,
        energy=energy,
        quantise=quantise,
        pes_per_layer=pes_per_layer,
    )


def decision_agreement(run: YosoRun, net: TtfsNetwork) -> float:
    """Fraction of images where the accelerator predicts what the trained model predicts (an
    image without an output spike on the accelerator counts as a disagreement)."""
    return float((run.sim.prediction.cpu() == net.model_prediction).double().mean())


def describe_setup(net: TtfsNetwork, arch: YosoArch, mapping: Mapping) -> str:
    """Network, data and accelerator in a few deterministic lines."""
    layers = ", ".join(f"layer {l.index}: {l.n_out} neurons on {len(l.pe_ids)} PE(s)" for l in mapping.layers)
    return "\n".join(
        [
            f"network: ReL-PSP {net.network} (STDBP checkpoint, epoch {net.epoch}), theta {net.theta:g}, t_max {net.t_max:g} ms",
            f"data: {net.dataset} test set, first {net.n_images} images, latency code",
            f"accelerator: {arch.mesh_rows}x{arch.mesh_cols} mesh, {arch.clock_mhz:g} MHz, dt {arch.dt_ms:g} ms, "
            f"{arch.weight_bits}-bit weights, window {arch.t_window_ms:g} ms",
            f"mapping: {layers}; {len(mapping.used_pes)} of {arch.n_pes} PEs used, "
            + ("the others power-gated" if arch.power_gate_unused_pes else "all powered"),
        ]
    )


def headline_lines(run: YosoRun, net: TtfsNetwork) -> str:
    """Accuracy of model and accelerator, their agreement, power, latency and energy, rounded."""
    m = run.metrics
    lines = [
        f"accuracy, trained model (exact spike times): {100 * net.model_accuracy:.2f} %",
        f"accuracy, simulated accelerator: {100 * m['accuracy']:.2f} %",
        f"agreement of the two predictions: {100 * decision_agreement(run, net):.2f} %",
        f"images without an output spike on the accelerator: {100 * m['no_output_spike']:.2f} %",
        f"power: {m['power_mw']:.4g} mW",
        f"latency per image: {m['latency_ms']:.4g} ms",
        f"energy per image: {m['energy_per_image_uj']:.4g} uJ",
    ]
    if net.recorded_test_accuracy is not None:
        lines.insert(
            1, f"  (recorded by the training run on its whole test split: {100 * net.recorded_test_accuracy:.2f} %)"
        )
    return "\n".join(lines)


def fidelity_table(net: TtfsNetwork, run: YosoRun, arch: YosoArch, energy: EnergyParams) -> pd.DataFrame:
    """Accuracy and agreement with the model: the model, the accelerator with float64 weights (time
    quantisation only) and with fixed-point weights (``run``, time + weight quantisation)."""
    exact = run_accelerator(net, arch, energy, quantise=False)
    rows = [("trained model (exact spike times)", net.model_accuracy, 1.0, 0.0)]
    for label, r in (
        (f"accelerator, float64 weights, dt {arch.dt_ms:g} ms", exact),
        (f"accelerator, {arch.weight_bits}-bit weights, dt {arch.dt_ms:g} ms", run),
    ):
        rows.append((label, r.metrics["accuracy"], decision_agreement(r, net), r.metrics["no_output_spike"]))
    return pd.DataFrame(rows, columns=["what", "accuracy", "agreement_with_model", "no_output_spike"])


def breakdown_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """Energy per image by group (uJ and fraction), in :data:`GROUPS` order."""
    return pd.DataFrame(
        {
            "group": list(GROUPS),
            "energy_uj": [metrics["breakdown_uj"][g] for g in GROUPS],
            "fraction": [metrics["breakdown_fraction"][g] for g in GROUPS],
        }
    )


# ---------------------------------------------------------------------- the paper comparison


def powered_kbytes(mapping: Mapping) -> float:
    """SRAM + FIFO capacity (KB) of the PEs that leak (all PEs unless unused ones are power-gated)."""
    arch = mapping.arch
    n_powered = len(mapping.used_pes) if arch.power_gate_unused_pes else arch.n_pes
    return n_powered * (arch.weight_sram.kbytes + arch.state_sram.kbytes + arch.route_sram.kbytes + fifo_kbytes(arch))


def paper_comparison_lines(run: YosoRun, energy: EnergyParams) -> str:
    """This model against YOSO's published 0.751 mW and 47.71 ms per MNIST image, with the
    leakage bound the published numbers imply; every number generated, rounded."""
    m = run.metrics
    kbytes = powered_kbytes(run.mapping)
    leak_mw = m["leakage_uw"] * 1e-3
    bound = PAPER_POWER_MW * 1e3 / kbytes  # uW per KB if all of the published power were leakage
    dynamic = {g: m["breakdown_fraction"][g] for g in BREAKDOWN}
    top = max(dynamic, key=dynamic.get)
    return "\n".join(
        [
            f"power: {m['power_mw']:.4g} mW modelled vs {PAPER_POWER_MW} mW reported (ratio {m['power_ratio']:.3g})",
            f"latency per image: {m['latency_ms']:.4g} ms vs {PAPER_LATENCY_MS} ms (ratio {m['latency_ratio']:.3g})",
            f"energy per image: {m['energy_per_image_uj']:.4g} uJ vs {PAPER_ENERGY_UJ:.4g} uJ derived from the two "
            f"(ratio {m['energy_ratio']:.3g})",
            f"leakage: {leak_mw:.4g} mW from {len(run.mapping.used_pes)} powered PEs ({kbytes:.1f} KB of SRAM and FIFO), "
            f"{100 * m['breakdown_fraction']['leakage']:.1f} % of the energy per image",
            f"largest dynamic share: {top} ({100 * dynamic[top]:.1f} %)",
            f"the reported {PAPER_POWER_MW} mW bounds the leakage: with {kbytes:.1f} KB powered that is at most "
            f"{bound:.3g} uW/KB, {bound / energy.sram_leak_uw_per_kb:.3g} x the {energy.sram_leak_uw_per_kb:g} uW/KB assumed here",
        ]
    )


TIMING_VARIANTS = {
    "as modelled: steps as fast as the pipeline, stop at the first output spike": {},
    "real-time steps (one dt of wall-clock each), stop at the first output spike": {"real_time": True},
    "steps as fast as the pipeline, whole window": {"stop_at_first_output": False},
    "real-time steps, whole window": {"real_time": True, "stop_at_first_output": False},
}
"""Timing assumptions of :func:`timing_variants` and the :class:`YosoArch` changes that make them."""


def timing_variants(net: TtfsNetwork, arch: YosoArch, energy: EnergyParams, *, progress: bool = True) -> pd.DataFrame:
    """Latency, power and energy per image under each of :data:`TIMING_VARIANTS`, with the ratios
    to the published numbers: which assumption about time steps the published latency suggests.
    ``progress``: a bar over the variants (:mod:`snnbp.progress`)."""
    rows = []
    for label, changes in progress_bar(
        TIMING_VARIANTS.items(), progress=progress, desc="timing variants", total=len(TIMING_VARIANTS), leave=False
    ):
        m = run_accelerator(net, with_changes(arch, **changes), energy).metrics
        rows.append(
            {
                "timing": label,
                "latency_ms": m["latency_ms"],
                "power_mw": m["power_mw"],
                "energy_per_image_uj": m["energy_per_image_uj"],
                "latency_ratio": m["latency_ratio"],
                "power_ratio": m["power_ratio"],
            }
        )
    return pd.DataFrame(rows)


def closest_timing_line(timing: pd.DataFrame) -> str:
    """Which row of :func:`timing_variants` comes closest to the published latency (in log ratio)."""
    best = timing.iloc[int(np.argmin(np.abs(np.log(timing["latency_ratio"].to_numpy(float)))))]
    return (
        f"closest to the published {PAPER_LATENCY_MS} ms: '{best['timing']}' ({best['latency_ms']:.4g} ms, "
        f"ratio {best['latency_ratio']:.3g}; power ratio {best['power_ratio']:.3g})"
    )


# ------------------------------------------------------------------------------------ sweeps


def spread_pes_per_layer(layer_sizes: Sequence[int], arch: YosoArch) -> tuple[int, ...]:
    """PEs per layer that use the whole mesh: the output layer keeps the fewest PEs that hold it and
    the hidden layers share the rest in proportion to their widths (at most one PE per neuron); a
    network without hidden layers spreads its output layer.

    Raises:
        MappingError: the network does not fit the mesh even compactly.
    """
    counts = [len(layer.pe_ids) for layer in map_network(layer_sizes, arch).layers]
    spread = list(range(len(counts) - 1)) or [0]
    spare = arch.n_pes - sum(counts)
    widths = [layer_sizes[i + 1] for i in spread]
    for i, width in zip(spread, widths):
        counts[i] = min(width, counts[i] + spare * width // sum(widths))
    return tuple(counts)


def _sweep_row(run: YosoRun) -> dict[str, Any]:
    m = run.metrics
    return {
        "pes_used": m["pes_used"],
        "accuracy": m["accuracy"],
        "energy_per_image_uj": m["energy_per_image_uj"],
        "latency_ms": m["latency_ms"],
        "power_mw": m["power_mw"],
        "leakage_fraction": m["breakdown_fraction"]["leakage"],
    }


def mesh_sweep(
    net: TtfsNetwork, arch: YosoArch, energy: EnergyParams, meshes: Sequence[Sequence[int]], *, progress: bool = True
) -> pd.DataFrame:
    """Energy, latency and power on each ``[rows, cols]`` mesh, with the compact mapping (fewest PEs)
    and the spread one (:func:`spread_pes_per_layer`). A mesh the network does not fit gives a row
    with ``fits = False`` and NaN numbers. ``progress``: a bar over the meshes (:mod:`snnbp.progress`)."""
    rows = []
    for n_rows, n_cols in progress_bar(meshes, progress=progress, desc="mesh sweep", leave=False):
        mesh = with_changes(arch, mesh_rows=int(n_rows), mesh_cols=int(n_cols))
        for placement in ("compact", "spread"):
            row = {"mesh": f"{n_rows}x{n_cols}", "n_pes": mesh.n_pes, "placement": placement}
            try:
                pes = None if placement == "compact" else spread_pes_per_layer(net.layer_sizes, mesh)
                row.update(fits=True, **_sweep_row(run_accelerator(net, mesh, energy, pes_per_layer=pes)))
            except MappingError:
                row.update(
                    fits=False,
                    pes_used=0,
                    accuracy=math.nan,
                    energy_per_image_uj=math.nan,
                    latency_ms=math.nan,
                    power_mw=math.nan,
                    leakage_fraction=math.nan,
                )
            rows.append(row)
    return pd.DataFrame(rows)


def size_sweep(
    net: TtfsNetwork, arch: YosoArch, energy: EnergyParams, widths: Sequence[int], *, progress: bool = True
) -> pd.DataFrame:
    """Energy, latency, power, accuracy and hidden spikes processed per image of the network
    truncated to each hidden width (:func:`truncate_hidden`; the trained width itself is the full
    network), compact mapping. ``progress``: a bar over the widths (:mod:`snnbp.progress`)."""
    rows = []
    for width in progress_bar(widths, progress=progress, desc="size sweep", leave=False):
        small = truncate_hidden(net, int(width))
        run = run_accelerator(small, arch, energy)
        hidden = spikes_processed(run.sim.counts, run.mapping)[:, 1:-1].sum(1)
        rows.append(
            {"hidden": int(width), "network": small.network, "hidden_spikes": float(hidden.mean()), **_sweep_row(run)}
        )
    return pd.DataFrame(rows)


def spikes_processed(counts: Counts, mapping: Mapping) -> torch.Tensor:
    """Spikes per image that the accelerator processed (up to each image's stop step): the input
    spikes (column 0) and the spikes every layer emitted (columns 1..L).

    Shape:
        - Output: ``[B, L + 1]`` float64.
    """
    first = mapping.layers[0].pe_ids[0]
    inputs = counts.ops["spikes_in"][:, 0, first]
    return torch.cat([inputs.unsqueeze(1), counts.per_layer("spikes_out")], 1)


def per_image_frame(run: YosoRun, net: TtfsNetwork) -> pd.DataFrame:
    """One row per image: input spikes (all, and processed), hidden and output spikes processed,
    energy (uJ), latency (ms) and whether the accelerator classified it correctly."""
    spikes = spikes_processed(run.sim.counts, run.mapping).cpu()
    return pd.DataFrame(
        {
            "input_spikes": torch.isfinite(net.t_in).sum(1).numpy(),
            "input_spikes_processed": spikes[:, 0].numpy(),
            "hidden_spikes": spikes[:, 1:-1].sum(1).numpy(),
            "output_spikes": spikes[:, -1].numpy(),
            "energy_uj": (run.energy.total_pj * 1e-6).cpu().numpy(),
            "latency_ms": run.energy.latency_ms.cpu().numpy(),
            "correct": (run.sim.prediction.cpu() == net.labels).numpy(),
        }
    )


def spike_fits(frame: pd.DataFrame) -> pd.DataFrame:
    """Least-squares line ``energy = a + b * spikes`` and Pearson ``r`` for each spike count of
    :func:`per_image_frame` (``b`` in nJ per spike)."""
    rows = []
    for column in ("input_spikes", "input_spikes_processed", "hidden_spikes"):
        x, y = frame[column].to_numpy(float), frame["energy_uj"].to_numpy(float)
        if len(x) > 1 and np.ptp(x) > 0:
            slope, intercept = np.polyfit(x, y, 1)
            r = float(np.corrcoef(x, y)[0, 1])
        else:
            slope = intercept = r = math.nan
        rows.append(
            {
                "spikes": column,
                "mean_spikes": float(x.mean()) if len(x) else math.nan,
                "nj_per_spike": 1e3 * slope,
                "intercept_uj": intercept,
                "pearson_r": r,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- rate vs temporal coding


@dataclass(frozen=True)
class RateRun:
    """The HM2-BP rate-coded network's spikes through the accelerator's cost model.

    Attributes:
        counts: operation counts (whole window).
        energy: per-image energy by group.
        mapping: the placement (the same layer sizes, the same arch as the temporal network).
        metrics: ``power_mw``, ``latency_ms``, ``energy_per_image_uj``, ``breakdown_uj``,
            ``breakdown_fraction``, ``accuracy`` (the HM2-BP model's, spike-count arg-max),
            ``n_images``, ``time_steps``, ``spikes_per_layer`` (mean per image, input first).
        network: e.g. ``"784-800-10"``.
    """

    counts: Counts
    energy: EnergyReport
    mapping: Mapping
    metrics: dict[str, Any]
    network: str


def evaluate_rate_coded(
    checkpoint: str | Path,
    n_images: int,
    arch: YosoArch,
    energy: EnergyParams,
    *,
    test: tuple[LabelledSplit, DatasetInfo] | None = None,
    chunk_size: int = 50,
    progress: bool = True,
) -> RateRun:
    """Run an HM2-BP checkpoint's LIF network on its fixed rate code of the first ``n_images`` test
    images and charge its spike rasters on the accelerator (:func:`snnbp.yoso.rate_coded_counts`).

    The function (spike rasters, prediction) is the HM2-BP model's own; the accelerator only adds
    the cost of those spikes (one raster step = one accelerator time step, every neuron swept at
    every step, the whole window processed). Images go through in chunks (rasters are
    ``[T, chunk, N]``); ``progress``: a bar over the chunks (:mod:`snnbp.progress`).

    Raises:
        FileNotFoundError: no such checkpoint.
        ValueError: not an HM2-BP checkpoint, or a network with convolution or pooling layers.
    """
    from snnbp.hm2bp.model import forward

    _, _, learner, split, _ = _restore(checkpoint, "hm2bp", test, n_images)
    if any(layer.kind != "fc" for layer in learner.layers):
        raise ValueError(
            f"{checkpoint}: network {learner.network} is not fully connected; the simulator maps FC layers only"
        )
    sizes = [math.prod(learner.layers[0].in_shape)] + [math.prod(layer.out_shape) for layer in learner.layers]
    mapping = map_network(sizes, arch)
    parts, correct, spikes = [], 0.0, torch.zeros(len(sizes), dtype=torch.float64)
    with torch.no_grad():
        starts = range(0, len(split), chunk_size)
        for start in progress_bar(starts, progress=progress, desc="rate-coded HM2-BP", leave=False):
            index = torch.arange(start, min(start + chunk_size, len(split)))
            batch = Batch(split.inputs[index], split.labels[index], index, "test")
            rasters, _ = forward(learner.layers, learner.weights, learner.encode(batch), learner.model)
            rasters = [r.reshape(r.shape[0], r.shape[1], -1).cpu() for r in rasters]
            parts.append(rate_coded_counts(rasters, mapping))
            correct += float((rasters[-1].sum(0).argmax(1) == batch.labels).sum())
            spikes += torch.stack([r.sum((0, 2)).double() for r in rasters], 1).sum(0)
    counts = concat_counts(parts)
    report = energy_report(counts, mapping, energy)
    metrics = report.metrics()
    metrics.update(
        accuracy=correct / len(split),
        n_images=len(split),
        time_steps=int(learner.model.time_steps),
        spikes_per_layer=(spikes / len(split)).tolist(),
    )
    return RateRun(counts, report, mapping, metrics, learner.network)


def rate_vs_temporal(temporal: YosoRun, temporal_network: str, rate: RateRun) -> pd.DataFrame:
    """One row per coding: accuracy, spikes processed per image by layer, energy (total and by
    group, uJ), latency (ms) and power (mW).

    Raises:
        ValueError: the two runs cover different numbers of images or different layer sizes.
    """
    if temporal.metrics["n_images"] != rate.metrics["n_images"]:
        raise ValueError(
            f"temporal run on {temporal.metrics['n_images']} images, rate run on {rate.metrics['n_images']}"
        )
    if temporal_network != rate.network:
        raise ValueError(f"the codings must run networks of the same size, got {temporal_network} and {rate.network}")
    rows = []
    for coding, counts, mapping, metrics in (
        ("temporal (ReL-PSP, TTFS)", temporal.sim.counts, temporal.mapping, temporal.metrics),
        ("rate (HM2-BP)", rate.counts, rate.mapping, rate.metrics),
    ):
        spikes = spikes_processed(counts, mapping).mean(0).tolist()
        row = {
            "coding": coding,
            "network": temporal_network,
            "n_images": int(counts.cycles.shape[0]),
            "accuracy": metrics["accuracy"],
            "input_spikes": spikes[0],
            "hidden_spikes": sum(spikes[1:-1]),
            "output_spikes": spikes[-1],
            "energy_per_image_uj": metrics["energy_per_image_uj"],
            "latency_ms": metrics["latency_ms"],
            "power_mw": metrics["power_mw"],
        }
        row.update({f"{g}_uj": metrics["breakdown_uj"][g] for g in GROUPS})
        rows.append(row)
    return pd.DataFrame(rows)


def rate_ratio_lines(frame: pd.DataFrame) -> str:
    """The rate-coded network's energy, latency and spikes over the temporal one's, rounded."""
    temporal, rate = frame.iloc[0], frame.iloc[1]
    spikes = [row.input_spikes + row.hidden_spikes + row.output_spikes for row in (rate, temporal)]
    return "\n".join(
        [
            f"energy per image: rate {rate.energy_per_image_uj:.4g} uJ / temporal {temporal.energy_per_image_uj:.4g} uJ "
            f"= {rate.energy_per_image_uj / temporal.energy_per_image_uj:.3g} x",
            f"latency per image: {rate.latency_ms / temporal.latency_ms:.3g} x",
            f"spikes processed per image (input + hidden + output): {spikes[0]:.0f} vs {spikes[1]:.0f}",
            f"accuracy on these {int(temporal.n_images)} images: rate {100 * rate.accuracy:.2f} %, "
            f"temporal {100 * temporal.accuracy:.2f} %",
        ]
    )


# ------------------------------------------------------------------------------- the records


def round_frame(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Every float rounded to ``digits`` significant digits (also floats in object columns)."""

    def sig(value: Any) -> Any:
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and value != 0:
            return float(f"{value:.{digits}g}")
        return value

    return frame.apply(lambda column: column.map(sig))


def table_text(frame: pd.DataFrame, *, index: bool = False, digits: int = 4) -> str:
    """``frame`` as deterministic text, floats to ``digits`` significant digits (safe to pin in nbval)."""
    return round_frame(frame, digits).to_string(index=index, float_format=lambda v: f"{v:.{digits}g}")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


class ResultsMismatchError(RuntimeError):
    """A run folder holds a ``metrics.json`` made from other params or other inputs."""


@dataclass
class ResultsWriter:
    """Where a full run's results go: ``metrics.json``, ``run.json`` and ``figures/`` in ``run_dir``;
    with ``run_dir`` None (the smoke run) nothing is written.

    ``run.json`` says ``running`` from :func:`open_results` until :meth:`finish` (a run whose
    notebook stopped on an error keeps ``running`` and no stop time).

    Attributes:
        run_dir: the run folder, or None.
        params_hash: sha256 of the params and of the inputs' contents (see :func:`open_results`).
        inputs: ``{name: {"path", "sha256"}}`` of the checkpoints and the accelerator's params file.
        record: the ``run.json`` record (None without ``run_dir``).
    """

    run_dir: Path | None
    params_hash: str
    inputs: dict[str, dict[str, str]]
    record: RunRecord | None = None

    def save_figure(self, fig: Any, name: str) -> None:
        """Save ``fig`` as ``figures/<name>`` in the run folder (nothing without one)."""
        if self.run_dir is not None:
            from snnbp.plots import save

            save(fig, self.run_dir / "figures" / name)

    def finish(self, metrics: dict[str, Any]) -> None:
        """Write ``metrics.json`` (with the params hash and the inputs) and complete ``run.json``."""
        if self.run_dir is None:
            return
        payload = {**metrics, "params_hash": self.params_hash, "inputs": self.inputs}
        atomic_write_json(self.run_dir / "metrics.json", payload)
        if self.record is not None:
            summary = {k: v for k, v in payload.items() if not isinstance(v, (list, dict)) or k == "breakdown_uj"}
            self.record.finish(metrics=summary)


def study_inputs(params: EvalParams) -> dict[str, dict[str, str]]:
    """``{key: {"path", "sha256"}}`` of the study's input files (paths in :func:`snnbp.paths.record_form`).

    Raises:
        FileNotFoundError: a checkpoint or the accelerator's params file is missing.
    """
    own = params.study
    inputs = {}
    for name, path, what, hint in (
        ("stdbp_checkpoint", own.stdbp_checkpoint, "STDBP checkpoint", TRAIN_HINT),
        ("hm2bp_checkpoint", own.hm2bp_checkpoint, "HM2-BP checkpoint", TRAIN_HINT),
        ("yoso_params", own.yoso_params, "accelerator params file", ""),
    ):
        inputs[name] = {"path": record_form(path), "sha256": sha256_file(existing_file(path, what, hint))}
    return inputs


def open_results(output_dir: str | Path | None, params: EvalParams) -> ResultsWriter:
    """Check the inputs exist, hash them with the params, refuse to overwrite other results, and
    start ``run.json``.

    Where the results go: ``output_dir`` when given, else ``results/<profile>/<name>`` for a params
    file's profile (e.g. ``papermill ... -f params/cpu/yoso_mnist.yaml``); a smoke run (profile
    ``smoke``, the notebook's defaults) writes nothing.

    The params hash covers the params (:func:`identity_params`: minus ``notebook`` and ``profile``,
    the file paths relative to ``notebooks/``) and the sha256 of both checkpoints and of the
    accelerator's params file, so a retrained checkpoint or changed constants never silently
    replace earlier results.

    Raises:
        FileNotFoundError: a checkpoint or the accelerator's params file is missing.
        ResultsMismatchError: ``output_dir/metrics.json`` exists with another params hash.
    """
    inputs = study_inputs(params)
    digest = hashlib.sha256(
        json.dumps({"params": identity_params(params), "inputs": inputs}, sort_keys=True).encode()
    ).hexdigest()
    if output_dir is None and params.profile not in (None, SMOKE_PROFILE):
        output_dir = results_dir() / params.profile / params.name
    if output_dir is None:
        return ResultsWriter(None, digest, inputs)
    run_dir = Path(output_dir)
    existing = run_dir / "metrics.json"
    if existing.exists():
        try:
            stored = json.loads(existing.read_text()).get("params_hash")
        except (OSError, json.JSONDecodeError, AttributeError):
            stored = None
        if stored != digest:
            raise ResultsMismatchError(
                f"{existing} holds results of other params or inputs (hash {str(stored)[:12]} vs {digest[:12]}); "
                "move the folder away or rename the run so nothing is overwritten"
            )
    record = RunRecord(run_dir / "run.json", record_params(params), params.seed)
    record.start(params_hash=digest, inputs=inputs, run_dir=str(run_dir))
    return ResultsWriter(run_dir, digest, inputs, record)


def collect_metrics(
    *,
    params: EvalParams,
    net: TtfsNetwork,
    run: YosoRun,
    fidelity: pd.DataFrame,
    timing: pd.DataFrame,
    meshes: pd.DataFrame,
    sizes: pd.DataFrame,
    fits: pd.DataFrame,
    rate: pd.DataFrame,
) -> dict[str, Any]:
    """Everything the study measured, as JSON-ready data (the content of ``metrics.json``).

    ``test_accuracy`` is the simulated accelerator's; ``model_accuracy`` the trained model's on the
    same images; ``agreement`` the fraction of equal predictions.
    """
    m = run.metrics
    temporal, rated = rate.iloc[0], rate.iloc[1]
    return {
        "name": params.name,
        "method": params.method,
        "dataset": net.dataset,
        "dataset_key": net.dataset_key,
        "network": net.network,
        "n_images": net.n_images,
        "test_accuracy": m["accuracy"],
        "model_accuracy": net.model_accuracy,
        "agreement": decision_agreement(run, net),
        "checkpoint_epoch": net.epoch,
        "checkpoint_recorded_test_accuracy": net.recorded_test_accuracy,
        "power_mw": m["power_mw"],
        "latency_ms": m["latency_ms"],
        "energy_per_image_uj": m["energy_per_image_uj"],
        "breakdown_uj": m["breakdown_uj"],
        "breakdown_fraction": m["breakdown_fraction"],
        "power_ratio": m["power_ratio"],
        "latency_ratio": m["latency_ratio"],
        "energy_ratio": m["energy_ratio"],
        "paper": {"power_mw": PAPER_POWER_MW, "latency_ms": PAPER_LATENCY_MS, "energy_per_image_uj": PAPER_ENERGY_UJ},
        "simulator": {
            k: m[k]
            for k in ("pes_used", "leakage_uw", "spikes_per_layer", "no_output_spike", "overflow_risk_neurons", "ops")
        },
        "fidelity": _records(fidelity),
        "timing_variants": _records(timing),
        "mesh_sweep": _records(meshes),
        "size_sweep": _records(sizes),
        "spike_fits": _records(fits),
        "rate_vs_temporal": {
            "n_images": int(temporal.n_images),
            "rows": _records(rate),
            "energy_ratio": float(rated.energy_per_image_uj / temporal.energy_per_image_uj),
            "latency_ratio": float(rated.latency_ms / temporal.latency_ms),
        },
    }
