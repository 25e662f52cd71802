"""MNIST and Fashion-MNIST, full size, from the verified IDX files in the data folder."""

from __future__ import annotations

from pathlib import Path

import torch

from snnbp.data.base import DatasetInfo, LabelledSplit, MissingDatasetError
from snnbp.data.fetch import FETCH_COMMAND, FILES, dataset_folder
from snnbp.data.idx import read_idx

DISPLAY_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def _split(folder: Path, prefix: str) -> LabelledSplit:
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: {images.shape[0]} {prefix} images but {labels.shape[0]} labels")
    return LabelledSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype("int64")))


def load_idx_dataset(dataset: str, folder: Path | None = None) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Load ``dataset`` ("mnist" or "fashion_mnist"): uint8 images ``[N, 28, 28]`` and int64 labels.

    Raises:
        MissingDatasetError: naming the folder and the command that fetches the files.
    """
    folder = Path(folder) if folder is not None else dataset_folder(dataset)
    absent = [f.name for f in FILES[dataset] if not (folder / f.name).is_file()]
    if absent:
        raise MissingDatasetError(
            f"{DISPLAY_NAMES[dataset]} is missing from {folder} ({', '.join(absent)}); get it with: {FETCH_COMMAND}"
        )
    info = DatasetInfo(name=DISPLAY_NAMES[dataset], key=dataset, num_classes=10, input_shape=(28, 28), kind="image")
    return _split(folder, "train"), _split(folder, "t10k"), info


def load_mnist(folder: Path | None = None) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Full MNIST: 60000 training and 10000 test images."""
    return load_idx_dataset("mnist", folder)


def load_fashion_mnist(folder: Path | None = None) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Full Fashion-MNIST: 60000 training and 10000 test images."""
    return load_idx_dataset("fashion_mnist", folder)
