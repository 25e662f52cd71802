"""Shared data containers, the missing-dataset error and the corrupt-data error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


class MissingDatasetError(FileNotFoundError):
    """A dataset is not where it should be; the message names the path and the command that gets it."""


class DataIntegrityError(ValueError):
    """A data file is damaged or not the expected one (checksum, format, label range); the message names the file."""


def check_labels(
    labels: np.ndarray | torch.Tensor | Sequence[int], num_classes: int, source: str | Sequence[str], *, first: int = 0
) -> None:
    """Refuse labels outside ``[first, first + num_classes)`` before anything trains on them.

    Args:
        labels: the class labels as stored (``[N]``).
        num_classes: how many classes the dataset has.
        source: the file the labels come from, or one file per label (datasets of one file per sample).
        first: the smallest valid label as stored (EMNIST Letters stores 1..26).

    Raises:
        DataIntegrityError: one line naming the file, the first offending value (and its index in
            the file) and the valid range.
    """
    values = np.asarray(labels, dtype=np.int64).reshape(-1)
    bad = (values < first) | (values >= first + num_classes)
    if not bad.any():
        return
    index = int(bad.argmax())
    allowed = f"outside {first}..{first + num_classes - 1} ({num_classes} classes)"
    if isinstance(source, str):
        raise DataIntegrityError(f"{source}: label {int(values[index])} at index {index} is {allowed}")
    raise DataIntegrityError(f"{source[index]}: label {int(values[index])} is {allowed}")


@dataclass(frozen=True)
class DatasetInfo:
    """What a method needs to know about a dataset to build a model.

    Attributes:
        name: the honest display name (a stand-in says so, e.g. ``"N-MNIST (simulated from MNIST)"``).
        key: the params-file key (``"mnist"``, ``"nmnist_simulated"``, ...).
        num_classes: number of classes.
        input_shape: shape of one raw sample (``(28, 28)`` for images, ``(T, N)`` for rasters).
        kind: ``"image"`` (uint8 intensities, the method encodes them) or ``"raster"``
            (binary spike raster ``[T, N]`` per sample, already encoded).
        is_standin: True when the data is not the paper's own dataset.
    """

    name: str
    key: str
    num_classes: int
    input_shape: tuple[int, ...]
    kind: str
    is_standin: bool = False


@dataclass(frozen=True)
class LabelledSplit:
    """One split of a dataset.

    Attributes:
        inputs: ``[N, *input_shape]`` (uint8 images, or bool/uint8 rasters ``[N, T, C]``).
        labels: ``[N]`` int64.
    """

    inputs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def head(self, limit: int | None) -> LabelledSplit:
        """The first ``limit`` samples (all of them when ``limit`` is None)."""
        if limit is None or limit >= len(self):
            return self
        return LabelledSplit(self.inputs[:limit], self.labels[:limit])

    def split_last(self, count: int | None) -> tuple[LabelledSplit, LabelledSplit]:
        """``(the first len - count samples, the last count samples)``; ``count`` None or 0: ``(self, empty)``.

        Raises:
            ValueError: when ``count`` leaves no sample before it.
        """
        count = count or 0
        if count < 0 or count >= len(self):
            raise ValueError(f"cannot hold out {count} of {len(self)} samples (need 0 <= count < {len(self)})")
        cut = len(self) - count
        return LabelledSplit(self.inputs[:cut], self.labels[:cut]), LabelledSplit(self.inputs[cut:], self.labels[cut:])

    def hold_out(self, count: int | None, *, stratified: bool = False) -> tuple[LabelledSplit, LabelledSplit]:
        """``(training part, held-out part)`` of ``count`` samples (None or 0: nothing held out).

        ``stratified`` false: the last ``count`` samples (:meth:`split_last`). True: ``k_c`` samples of
        every class ``c``, ``k_c`` the whole part of ``count n_c / N`` (``n_c`` samples of ``N``) plus
        one for the classes with the largest remainders (ties: the lower class) until the ``k_c`` sum
        to ``count``; of the class's samples in stored order ``s_0 .. s_{n_c - 1}`` it holds out
        ``s_m`` for ``m = floor((j + 1) n_c / k_c) - 1``, ``j = 0 .. k_c - 1`` (evenly spaced, the
        last one included), so that an order within the class (speakers, voices) is spread over both
        parts. Both parts keep the stored order. For data stored class by class, where the last
        samples are one class.

        Raises:
            ValueError: when ``count`` leaves no sample to train on.
        """
        if not stratified or not count:
            return self.split_last(count)
        if count < 0 or count >= len(self):
            raise ValueError(f"cannot hold out {count} of {len(self)} samples (need 0 <= count < {len(self)})")
        classes, sizes = torch.unique(self.labels, return_counts=True)
        quota = sizes.to(torch.float64) * count / len(self)
        take = torch.floor(quota).to(torch.int64)
        order = sorted(range(len(classes)), key=lambda k: (-float(quota[k] - take[k]), int(classes[k])))
        for k in order[: count - int(take.sum())]:
            take[k] += 1
        held = torch.zeros(len(self), dtype=torch.bool)
        for c, k in zip(classes.tolist(), take.tolist()):
            if k:
                members = torch.nonzero(self.labels == c).flatten()
                held[members[(torch.arange(1, k + 1) * len(members)) // k - 1]] = True
        return self._take(torch.nonzero(~held).flatten()), self._take(torch.nonzero(held).flatten())

    def _take(self, index: torch.Tensor) -> LabelledSplit:
        """The samples at ``index`` (sparse rasters stay sparse)."""
        inputs = self.inputs.subset(index.numpy()) if hasattr(self.inputs, "subset") else self.inputs[index]
        return LabelledSplit(inputs, self.labels[index])
