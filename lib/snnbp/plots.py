"""Figures shared by the notebooks (matplotlib + seaborn). Every figure names its dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

sns.set_theme(context="notebook", style="whitegrid")


def save(fig: plt.Figure, path: str | Path) -> None:
    """Save ``fig`` as PNG (150 dpi) under ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")


def learning_curves(history: Sequence[dict[str, Any]], title: str) -> plt.Figure:
    """Training loss and train/(validation/)test accuracy per epoch; the selected epoch marked when a validation split chose it."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    if all(h.get("train_accuracy") is not None for h in history):
        ax_acc.plot(epochs, [100 * h["train_accuracy"] for h in history], marker="o", label="train")
    if all(h.get("validation_accuracy") is not None for h in history):
        validation = [100 * h["validation_accuracy"] for h in history]
        ax_acc.plot(epochs, validation, marker="o", label="validation")
        chosen = epochs[validation.index(max(validation))]
        ax_acc.axvline(chosen, color="grey", linestyle=":", label=f"selected (epoch {chosen})")
    ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in history], marker="o", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int, title: str) -> plt.Figure:
    """Row-normalised confusion matrix (rows: true class) as a heat map."""
    counts = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    counts.index_put_((labels.long(), predictions.long()), torch.ones(len(labels), dtype=torch.float64), accumulate=True)
    normalised = counts / counts.sum(dim=1, keepdim=True).clamp_min(1)
    fig, ax = plt.subplots(figsize=(5.5, 4.6))
    sns.heatmap(normalised.numpy(), ax=ax, cmap="viridis", vmin=0, vmax=1, square=True, cbar_kws={"label": "fraction of true class"})
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    return fig


def image_grid(images: torch.Tensor, labels: torch.Tensor, title: str, columns: int = 10, class_names: Sequence[str] | None = None) -> plt.Figure:
    """The first ``columns * k`` images of ``[N, H, W]`` with their labels."""
    count = min(len(images), columns * max(1, (len(images) + columns - 1) // columns))
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(1.1 * columns, 1.25 * rows + 0.4), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < count:
            ax.imshow(np.asarray(images[index]), cmap="gray")
            label = int(labels[index])
            ax.set_title(class_names[label] if class_names else str(label), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def label_counts(labels_by_split: dict[str, torch.Tensor], title: str, class_names: Sequence[str] | None = None) -> plt.Figure:
    """Bar chart of samples per class, one bar group per split."""
    fig, ax = plt.subplots(figsize=(8, 3))
    width = 0.8 / max(1, len(labels_by_split))
    for offset, (split, labels) in enumerate(labels_by_split.items()):
        counts = torch.bincount(labels.long()).numpy()
        ax.bar(np.arange(len(counts)) + offset * width, counts, width=width, label=split)
        if class_names:
            ax.set_xticks(np.arange(len(counts)) + 0.4 - width / 2, class_names[: len(counts)])
    ax.set(xlabel="class", ylabel="samples", title=title)
    ax.legend()
    return fig


def spike_raster(raster: torch.Tensor, title: str, dt_ms: float = 1.0, ylabel: str = "input neuron") -> plt.Figure:
    """Dots at (time, neuron) for a binary raster ``[T, N]``."""
    times, neurons = torch.nonzero(raster > 0, as_tuple=True)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.scatter(times.numpy() * dt_ms, neurons.numpy(), s=1.5, color="black")
    ax.set(xlabel="time (ms)", ylabel=ylabel, title=title, xlim=(0, raster.shape[0] * dt_ms), ylim=(-1, raster.shape[1]))
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
