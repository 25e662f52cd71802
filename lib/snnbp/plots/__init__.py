"""Figures (matplotlib + seaborn): they take arrays and tables and draw; every figure names its dataset.

The package sets the project's seaborn theme once, on import. Here: the figures shared by the
training notebooks (learning curves, confusion matrices, sample grids) and :func:`save`; per
subject: :mod:`snnbp.plots.data` (datasets and encodings, notebook 00), :mod:`snnbp.plots.analysis`
(the problem analysis, notebook 01), :mod:`snnbp.plots.hm2bp` (notebook 02),
:mod:`snnbp.plots.stdbp` (notebook 03), :mod:`snnbp.plots.yoso` (notebook 30) and
:mod:`snnbp.plots.results` (notebook 90).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator

from snnbp.io import atomic_write_bytes

sns.set_theme(context="notebook", style="whitegrid")


def save(fig: plt.Figure, path: str | Path) -> None:
    """Save ``fig`` under ``path`` (folders created), atomically: a reader never sees a half-written figure.

    The format follows the name's suffix (PNG at 150 dpi when it has none).
    """
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=150, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def _wrap(title: str, width: int) -> str:
    """``title`` broken into lines of at most ``width`` characters (long run titles stay inside the figure)."""
    return "\n".join(textwrap.fill(line, width) for line in title.splitlines())


def learning_curves(
    history: Sequence[dict[str, Any]], title: str, *, loss_name: str | None = None, selected_epoch: int | None = None
) -> plt.Figure:
    """Training loss and train/(validation/)test accuracy per epoch, on integer epoch ticks.

    Args:
        history: the run's per-epoch records (``train_loss``, ``*_accuracy``).
        title: the figure's title (:func:`snnbp.results_view.figure_title`).
        loss_name: what ``train_loss`` is (:data:`snnbp.results_view.LOSS_NAMES`); the loss axis says it.
        selected_epoch: the epoch a validation hold-out chose (default: the best validation epoch when
            the history has a validation curve); marked on both panels.
    """
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax_loss.set(
        xlabel="epoch",
        ylabel=_wrap(f"training loss: {loss_name}" if loss_name else "training loss", 45),
        title="training loss",
    )
    if all(h.get("train_accuracy") is not None for h in history):
        ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], marker="o", label="train")
    chosen = selected_epoch
    if history and all(h.get("validation_accuracy") is not None for h in history):
        validation = [100 * h["validation_accuracy"] for h in history]
        ax_acc.plot(epochs, validation, marker="o", label="validation (hold-out)")
        chosen = chosen if chosen is not None else epochs[validation.index(max(validation))]
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", label="test")
    if chosen is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(chosen, color="grey", linestyle=":", label=f"selected on validation (epoch {chosen})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.legend(fontsize=9)
    fig.suptitle(_wrap(title, 80))
    return fig


def confusion_matrix(
    predictions: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    title: str,
    class_names: Sequence[str] | None = None,
) -> plt.Figure:
    """Row-normalised confusion matrix (rows: true class) as a heat map, classes by name when given.

    The title sits above the whole figure (constrained layout), never over the colour bar.

    Shape:
        - predictions, labels: ``[N]`` class indices in ``0 .. num_classes - 1``.
    """
    predictions, labels = torch.as_tensor(predictions).long(), torch.as_tensor(labels).long()
    counts = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    counts.index_put_((labels, predictions), torch.ones(len(labels), dtype=torch.float64), accumulate=True)
    normalised = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    names = (
        list(class_names)
        if class_names is not None and len(class_names) == num_classes
        else [str(i) for i in range(num_classes)]
    )
    size = (5.5, 4.6) if num_classes <= 12 else (min(13.0, 3.5 + 0.2 * num_classes), min(12.0, 2.6 + 0.2 * num_classes))
    fig, ax = plt.subplots(figsize=size, layout="constrained")
    sns.heatmap(
        normalised.numpy(),
        ax=ax,
        cmap="viridis",
        vmin=0,
        vmax=1,
        square=True,
        xticklabels=names,
        yticklabels=names,
        cbar_kws={"label": "fraction of the true class", "shrink": 0.8},
    )
    fontsize = 9 if num_classes <= 12 else 7
    ax.tick_params(
        axis="x", labelrotation=90 if max(len(n) for n in names) > 3 or num_classes > 30 else 0, labelsize=fontsize
    )
    ax.tick_params(axis="y", labelrotation=0, labelsize=fontsize)
    ax.set(xlabel="predicted class", ylabel="true class")
    correct = int(counts.diagonal().sum())
    fig.suptitle(
        _wrap(f"{title}\n{correct:,} of {len(labels):,} test images correct", 70 if num_classes <= 12 else 110)
    )
    return fig


def image_grid(
    images: torch.Tensor, labels: torch.Tensor, title: str, columns: int = 10, class_names: Sequence[str] | None = None
) -> plt.Figure:
    """The first ``columns * k`` images of ``[N, H, W]`` with their labels (class names when given)."""
    count = min(len(images), columns * max(1, (len(images) + columns - 1) // columns))
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.1 * columns, 1.25 * rows + 0.4), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < count:
            ax.imshow(np.asarray(images[index]), cmap="gray")
            label = int(labels[index])
            ax.set_title(class_names[label] if class_names else str(label), fontsize=8)
    fig.suptitle(_wrap(title, 12 * columns))
    fig.tight_layout()
    return fig


def label_counts(
    labels_by_split: dict[str, torch.Tensor], title: str, class_names: Sequence[str] | None = None
) -> plt.Figure:
    """Bar chart of samples per class, one bar group per split; classes by name when given."""
    size = max((int(labels.max()) + 1 for labels in labels_by_split.values() if len(labels)), default=0)
    if class_names is not None:
        size = max(size, len(class_names))
    fig, ax = plt.subplots(
        figsize=(8.0 if size <= 26 else 0.2 * size * max(1, len(labels_by_split)), 3.0), layout="constrained"
    )
    width = 0.8 / max(1, len(labels_by_split))
    for offset, (split, labels) in enumerate(labels_by_split.items()):
        counts = torch.bincount(labels.long(), minlength=size).numpy()
        ax.bar(np.arange(size) + offset * width, counts, width=width, label=split)
    names = list(class_names[:size]) if class_names else [str(i) for i in range(size)]
    ax.set_xticks(
        np.arange(size) + 0.4 - width / 2,
        names,
        fontsize=8 if size > 26 else 9,
        rotation=90 if max((len(n) for n in names), default=1) > 3 else 0,
    )
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="class", ylabel="samples")
    ax.legend()
    fig.suptitle(_wrap(title, 110))
    return fig


def spike_raster(raster: torch.Tensor, title: str, dt_ms: float = 1.0, ylabel: str = "input neuron") -> plt.Figure:
    """Dots at (time, neuron) for a binary raster ``[T, N]``."""
    times, neurons = torch.nonzero(raster > 0, as_tuple=True)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.scatter(times.numpy() * dt_ms, neurons.numpy(), s=1.5, color="black")
    ax.set(
        xlabel="time (ms)", ylabel=ylabel, title=title, xlim=(0, raster.shape[0] * dt_ms), ylim=(-1, raster.shape[1])
    )
    return fig


def latency_image(times: torch.Tensor, shape: tuple[int, int], title: str) -> plt.Figure:
    """Spike times ``[H*W]`` drawn as an image (silent pixels blank), with a colour bar in ms."""
    image = times.reshape(shape).numpy().copy()
    image[~np.isfinite(image)] = np.nan
    fig, ax = plt.subplots(figsize=(4, 3.4))
    shown = ax.imshow(image, cmap="magma")
    fig.colorbar(shown, ax=ax, label="first-spike time (ms)")
    ax.set(title=title)
    ax.axis("off")
    return fig
