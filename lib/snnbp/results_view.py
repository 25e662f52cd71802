"""Recorded runs as tables: every ``results/<profile>/<run>/metrics.json`` with its paper number.

Read-only: nothing here trains, evaluates or writes, and no method package is imported; the
figures of :mod:`snnbp.plots.results` draw these tables and ``notebooks/90_results.ipynb`` shows
them. Every number comes from a recorded file (``metrics.json``, ``run.json``, the run's stored
test predictions ``test_predictions.json``) or from :mod:`snnbp.targets`.

Also the shared wording of figures: :func:`method_label` (method and PSP kernel),
:func:`figure_title` (method, network, dataset with its subset, test images, profile) and
:data:`LOSS_NAMES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from snnbp.classes import base_dataset
from snnbp.paths import results_dir
from snnbp.table import dataset_label, seed_group, seed_summary
from snnbp.targets import OTHER_CHIPS, PAPER_DATASET, YOSO_PAPER_CHIP, ChipFigure, find_target

PREDICTIONS_NAME = "test_predictions.json"
"""A training run's test-set predictions and labels (``{"predictions": [...], "labels": [...]}``),
the input of its confusion matrix."""

TRAINING_METHODS = ("ann", "hm2bp", "stdbp")

TEST_SPLIT_SIZES = {
    "mnist": 10000,
    "fashion_mnist": 10000,
    "nmnist_subset": 100,
    "caltech_face_motor": 396,
}
"""Test-split sizes of the datasets whose test split is fixed, as their loaders document them (MNIST
and Fashion-MNIST 10,000; the real N-MNIST subset 100; Caltech face/motorbike's TestingSet 198 + 198)."""

KERNEL_LABELS = {"relpsp": "ReL-PSP", "alpha": "alpha-PSP"}
"""STDBP's PSP kernels (``model.kernel``) as figures name them."""

LOSS_NAMES = {
    "hm2bp": "margin loss on output spike counts, Σ d² (ALGORITHMS.md 1.5)",
    "stdbp": "cross-entropy of the output spike times (ALGORITHMS.md 2.4)",
    "ann": "softmax cross-entropy",
}
"""The training loss each method's history records as ``train_loss``."""

RUN_COLUMNS = [
    "profile",
    "run",
    "method",
    "label",
    "dataset",
    "dataset_key",
    "is_standin",
    "network",
    "epochs",
    "test_images",
    "test_accuracy",
    "best_test_accuracy",
    "best_epoch",
    "selected_epoch",
    "validation_accuracy",
    "paper_dataset",
    "paper_network",
    "paper_best",
    "paper_provenance",
    "status",
    "seed",
    "seed_group",
]

SEED_AVERAGED = ["test_accuracy", "best_test_accuracy", "validation_accuracy"]
"""The accuracies :func:`by_seed` averages over the seeds of a run."""


def method_label(method: str, model: Mapping[str, Any] | None = None) -> str:
    """The method as a figure names it: ``"HM2-BP"``, ``"ReL-PSP + STDBP"``, ``"alpha-PSP + STDBP"``, ``"ANN"``.

    >>> method_label("stdbp", {"kernel": "alpha"})
    'alpha-PSP + STDBP'
    """
    if method == "stdbp":
        kernel = (model or {}).get("kernel") or "relpsp"
        return f"{KERNEL_LABELS.get(kernel, kernel)} + STDBP"
    return {"hm2bp": "HM2-BP", "ann": "ANN", "yoso": "YOSO"}.get(method, method)


def figure_title(
    method: str,
    model: Mapping[str, Any] | None,
    dataset: str | None,
    data: Mapping[str, Any] | None,
    network: str | None,
    *,
    test_images: int | None = None,
    profile: str | None = None,
) -> str:
    """A run's figure title, built from its params and metrics.

    >>> figure_title("stdbp", {"kernel": "alpha"}, "MNIST", {"train_limit": 20000}, "784-400-10",
    ...              test_images=10000, profile="cpu")
    'alpha-PSP + STDBP 784-400-10 on MNIST (first 20,000 train), 10,000 test images (cpu profile)'
    """
    parts = [method_label(method, model)]
    if network:
        parts.append(str(network))
    title = " ".join(parts) + f" on {dataset_label(dataset, dict(data or {})) or 'unknown data'}"
    if test_images is not None:
        title += f", {test_images:,} test images"
    if profile:
        title += f" ({profile} profile)"
    return title


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_predictions(run_dir: str | Path) -> tuple[list[int], list[int]] | None:
    """``(predictions, labels)`` stored in ``run_dir``, or None when the run stored none."""
    stored = _read_json(Path(run_dir) / PREDICTIONS_NAME)
    predictions, labels = stored.get("predictions"), stored.get("labels")
    if not isinstance(predictions, list) or not isinstance(labels, list) or len(predictions) != len(labels):
        return None
    return [int(p) for p in predictions], [int(y) for y in labels]


@dataclass(frozen=True)
class RecordedRun:
    """One run folder as recorded: its ``metrics.json`` and ``run.json``.

    Attributes:
        run_dir: the folder.
        metrics: ``metrics.json`` (empty when absent).
        record: ``run.json`` (empty when absent).
    """

    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return self.run_dir.parent.name

    @property
    def params(self) -> dict[str, Any]:
        params = self.record.get("params")
        return params if isinstance(params, dict) else {}

    @property
    def method(self) -> str:
        return str(self.metrics.get("method") or self.params.get("method") or "")

    @property
    def status(self) -> str:
        return str(self.record.get("status", "unknown"))

    @property
    def history(self) -> list[dict[str, Any]]:
        history = self.metrics.get("history")
        return history if isinstance(history, list) else []

    @property
    def test_images(self) -> int | None:
        """Test images the recorded accuracy is over: recorded in the metrics, counted from the stored
        predictions, or the documented test split's size (:data:`TEST_SPLIT_SIZES`, cut to the params'
        ``data.test_limit``); None when none of these says."""
        if isinstance(self.metrics.get("test_samples"), int):
            return self.metrics["test_samples"]
        stored = read_predictions(self.run_dir)
        if stored is not None:
            return len(stored[1])
        size = TEST_SPLIT_SIZES.get(base_dataset(str(self.metrics.get("dataset_key"))))
        limit = (self.params.get("data") or {}).get("test_limit")
        return None if size is None else (size if limit is None else min(size, int(limit)))

    def title(self, *, with_profile: bool = True) -> str:
        """:func:`figure_title` of this run."""
        return figure_title(
            self.method,
            self.params.get("model"),
            self.metrics.get("dataset"),
            self.params.get("data"),
            self.metrics.get("network"),
            test_images=self.test_images,
            profile=self.profile if with_profile else None,
        )


def read_run(run_dir: str | Path) -> RecordedRun:
    """The records of one run folder (missing files read as empty)."""
    run_dir = Path(run_dir)
    return RecordedRun(run_dir, _read_json(run_dir / "metrics.json"), _read_json(run_dir / "run.json"))


def recorded_runs(
    root: str | Path | None = None, profiles: Sequence[str] | None = None, *, completed_only: bool = True
) -> list[RecordedRun]:
    """Every ``<root>/<profile>/<run>/`` with a ``metrics.json``, sorted by profile and run.

    Args:
        root: the results folder (default the project's ``results/``).
        profiles: the profiles to read (default all).
        completed_only: skip runs whose ``run.json`` does not say ``completed`` (a run in progress).
    """
    root = Path(root) if root is not None else results_dir()
    runs = []
    for path in sorted(root.glob("*/*/metrics.json")):
        run = read_run(path.parent)
        if profiles is not None and run.profile not in profiles:
            continue
        if completed_only and run.status != "completed":
            continue
        runs.append(run)
    return runs


def runs_table(runs: Sequence[RecordedRun]) -> pd.DataFrame:
    """One row per training run (columns :data:`RUN_COLUMNS`), joined with its paper number."""
    rows = []
    for run in runs:
        m = run.metrics
        if run.method not in TRAINING_METHODS or "test_accuracy" not in m:
            continue
        target = find_target(run.method, str(m.get("dataset_key", "")), str(m.get("network", "")))
        rows.append(
            {
                "profile": run.profile,
                "run": run.run_dir.name,
                "method": run.method,
                "label": method_label(run.method, run.params.get("model")),
                "dataset": dataset_label(m.get("dataset"), dict(run.params.get("data") or {})),
                "dataset_key": m.get("dataset_key"),
                "is_standin": bool(m.get("is_standin", False)),
                "network": m.get("network"),
                "epochs": m.get("epochs"),
                "test_images": run.test_images,
                "test_accuracy": m.get("test_accuracy"),
                "best_test_accuracy": m.get("best_test_accuracy"),
                "best_epoch": m.get("best_epoch"),
                "selected_epoch": m.get("selected_epoch"),
                "validation_accuracy": m.get("validation_accuracy"),
                "paper_dataset": target.paper_dataset
                if target
                else PAPER_DATASET.get(base_dataset(str(m.get("dataset_key")))),
                "paper_network": target.network if target else None,
                "paper_best": target.paper_best if target else None,
                "paper_provenance": target.provenance if target else "",
                "status": run.status,
                "seed": run.params.get("seed"),
                "seed_group": seed_group(run.params),
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def by_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`runs_table` with the runs that differ only in the seed as one row
    (:func:`snnbp.table.seed_summary`): :data:`SEED_AVERAGED` as mean with ``<column>_sd`` (sample
    standard deviation), ``seeds`` and ``runs``."""
    return seed_summary(frame, SEED_AVERAGED)


def histories_table(runs: Sequence[RecordedRun]) -> pd.DataFrame:
    """The per-epoch accuracies of every training run, long form.

    Columns: ``run, method, label, dataset, epoch, split`` (``train``, ``validation``, ``test``),
    ``accuracy``, ``selected_epoch`` (None unless a validation hold-out chose the model).
    """
    rows = []
    for run in runs:
        if run.method not in TRAINING_METHODS:
            continue
        label = method_label(run.method, run.params.get("model"))
        dataset = dataset_label(run.metrics.get("dataset"), dict(run.params.get("data") or {}))
        for entry in run.history:
            for split in ("train", "validation", "test"):
                value = entry.get(f"{split}_accuracy")
                if value is not None:
                    rows.append(
                        {
                            "run": run.run_dir.name,
                            "method": run.method,
                            "label": label,
                            "dataset": dataset,
                            "epoch": int(entry["epoch"]),
                            "split": split,
                            "accuracy": float(value),
                            "selected_epoch": run.metrics.get("selected_epoch"),
                        }
                    )
    return pd.DataFrame(
        rows, columns=["run", "method", "label", "dataset", "epoch", "split", "accuracy", "selected_epoch"]
    )


CHIP_COLUMNS = [
    "chip",
    "energy_low_uj",
    "energy_high_uj",
    "latency_low_ms",
    "latency_high_ms",
    "accuracy",
    "source",
    "provenance",
    "kind",
]


def _chip_row(chip: ChipFigure, kind: str, accuracy: float | None = None) -> dict[str, Any]:
    latency = chip.latency_ms or (None, None)
    return {
        "chip": chip.chip,
        "energy_low_uj": chip.energy_uj[0],
        "energy_high_uj": chip.energy_uj[1],
        "latency_low_ms": latency[0],
        "latency_high_ms": latency[1],
        "accuracy": accuracy,
        "source": chip.source,
        "provenance": chip.provenance,
        "kind": kind,
    }


def chips_table(runs: Sequence[RecordedRun]) -> pd.DataFrame:
    """MNIST energy and latency per image: the other chips, the YOSO paper, and every recorded YOSO model evaluation.

    ``kind`` is ``published`` (other chips), ``paper`` (YOSO's own numbers) or ``simulated`` (this
    project's YOSO model, from the evaluation's ``metrics.json``; ``accuracy`` its test accuracy).
    """
    rows = [_chip_row(chip, "published") for chip in OTHER_CHIPS] + [_chip_row(YOSO_PAPER_CHIP, "paper")]
    for run in runs:
        m = run.metrics
        if run.method != "yoso" or m.get("energy_per_image_uj") is None:
            continue
        energy, latency = float(m["energy_per_image_uj"]), m.get("latency_ms")
        name = f"YOSO model, simulated ({m.get('network', '?')}, {run.profile}/{run.run_dir.name})"
        chip = ChipFigure(
            name,
            (energy, energy),
            None if latency is None else (float(latency), float(latency)),
            f"{run.run_dir.name}/metrics.json",
            "simulated",
        )
        rows.append(_chip_row(chip, "simulated", m.get("test_accuracy")))
    return pd.DataFrame(rows, columns=CHIP_COLUMNS)


def format_runs(frame: pd.DataFrame) -> str:
    """:func:`runs_table` or :func:`by_seed` as fixed-width text (accuracies in percent, ``mean ± sd``
    over the seeds where a row has several), the same on every machine."""

    def percent(value: Any, sd: Any = None) -> str:
        if value is None or pd.isna(value):
            return ""
        return f"{100 * float(value):.2f}" + ("" if sd is None or pd.isna(sd) else f" ± {100 * float(sd):.2f}")

    def spread(column: str) -> list[Any]:
        return list(frame[f"{column}_sd"]) if f"{column}_sd" in frame else [None] * len(frame)

    shown = pd.DataFrame(
        {
            "run": frame["run"],
            "method": frame["label"],
            "data": [f"{d}{' [stand-in]' if s else ''}" for d, s in zip(frame["dataset"], frame["is_standin"])],
            "network": frame["network"],
            "epochs": frame["epochs"],
            **({"seeds": frame["seeds"]} if "seeds" in frame else {}),
            "test %": [percent(v, sd) for v, sd in zip(frame["test_accuracy"], spread("test_accuracy"))],
            "best %": [percent(v, sd) for v, sd in zip(frame["best_test_accuracy"], spread("best_test_accuracy"))],
            "paper %": [percent(v) for v in frame["paper_best"]],
            "prov.": frame["paper_provenance"],
        }
    )
    return shown.to_string(index=False)


def format_chips(frame: pd.DataFrame) -> str:
    """:func:`chips_table` as fixed-width text (µJ and ms, three significant digits)."""

    def number(value: float) -> str:
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"

    def span(low: Any, high: Any) -> str:
        if low is None or pd.isna(low):
            return "not given"
        return number(low) if low == high else f"{number(low)}-{number(high)}"

    shown = pd.DataFrame(
        {
            "chip": frame["chip"],
            "energy (µJ)": [span(lo, hi) for lo, hi in zip(frame["energy_low_uj"], frame["energy_high_uj"])],
            "latency (ms)": [span(lo, hi) for lo, hi in zip(frame["latency_low_ms"], frame["latency_high_ms"])],
            "prov.": frame["provenance"],
            "source": frame["source"],
        }
    )
    return shown.to_string(index=False)
