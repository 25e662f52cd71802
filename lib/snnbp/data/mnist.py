"""MNIST and Fashion-MNIST, full size, from the verified IDX files in the data folder."""

from __future__ import annotations

from pathlib import Path

import torch

from snnbp.data.base import DataIntegrityError, DatasetInfo, LabelledSplit, MissingDatasetError, check_labels
from snnbp.data.fetch import FETCH_COMMAND, FILES, dataset_folder, verify_files
from snnbp.data.idx import read_idx

NUM_CLASSES = 10

DISPLAY_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def _split(folder: Path, prefix: str) -> LabelledSplit:
    images_path, labels_path = folder / f"{prefix}-images-idx3-ubyte", folder / f"{prefix}-labels-idx1-ubyte"
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != "uint8":
        raise DataIntegrityError(
            f"{images_path}: expected uint8 images [N, 28, 28], got {images.dtype} {list(images.shape)}"
        )
    if labels.ndim != 1:
        raise DataIntegrityError(f"{labels_path}: expected a vector of labels, got shape {list(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise DataIntegrityError(f"{folder}: {images.shape[0]} {prefix} images but {labels.shape[0]} labels")
    check_labels(labels, NUM_CLASSES, str(labels_path))
    return LabelledSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype("int64")))


def load_idx_dataset(
    dataset: str, folder: Path | None = None, *, verify: bool | None = None
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Load ``dataset`` ("mnist" or "fashion_mnist"): uint8 images ``[N, 28, 28]`` and int64 labels.

    Args:
        folder: default the data folder's copy (:func:`snnbp.data.fetch.dataset_folder`).
        verify: check the files' sha256 (cached by size and modification time,
            :func:`snnbp.data.fetch.verify_files`); default: for the data folder's copy, not for
            another ``folder``.

    Raises:
        MissingDatasetError: naming the folder and the command that fetches the files.
        DataIntegrityError: a damaged file, a label outside 0..9, naming the file.
    """
    if verify is None:
        verify = folder is None
    folder = Path(folder) if folder is not None else dataset_folder(dataset)
    absent = [f.name for f in FILES[dataset] if not (folder / f.name).is_file()]
    if absent:
        raise MissingDatasetError(
            f"{DISPLAY_NAMES[dataset]} is missing from {folder} ({', '.join(absent)}); get it with: {FETCH_COMMAND}"
        )
    if verify:
        verify_files(folder, FILES[dataset])
    info = DatasetInfo(
        name=DISPLAY_NAMES[dataset], key=dataset, num_classes=NUM_CLASSES, input_shape=(28, 28), kind="image"
    )
    return _split(folder, "train"), _split(folder, "t10k"), info


def load_mnist(folder: Path | None = None) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Full MNIST: 60000 training and 10000 test images."""
    return load_idx_dataset("mnist", folder)


def load_fashion_mnist(folder: Path | None = None) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Full Fashion-MNIST: 60000 training and 10000 test images."""
    return load_idx_dataset("fashion_mnist", folder)
