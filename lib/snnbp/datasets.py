"""The dataset registry: the params file's ``data.dataset`` key -> its loader.

An entry is ``(module, function)`` or ``(module, function, keyword arguments)``. Every loader
returns ``(train, test, info)`` (:class:`snnbp.data.base.LabelledSplit` twice and a
:class:`snnbp.data.base.DatasetInfo`). Loaders are imported lazily so that a dataset's optional
requirements never affect the others.
"""

from __future__ import annotations

import importlib

from snnbp.config import DataParams
from snnbp.data.base import DatasetInfo, LabelledSplit

LOADERS: dict[str, tuple[str, str] | tuple[str, str, dict]] = {
    "mnist": ("snnbp.data.mnist", "load_mnist"),
    "fashion_mnist": ("snnbp.data.mnist", "load_fashion_mnist"),
}


def load_dataset(data: DataParams) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Load the dataset named in ``data`` and apply its train/test limits.

    Raises:
        KeyError: for an unknown dataset key (listing the known ones).
        snnbp.data.base.MissingDatasetError: when the files are absent (names the command).
    """
    if data.dataset not in LOADERS:
        raise KeyError(f"unknown dataset {data.dataset!r}; known datasets: {sorted(LOADERS)}")
    module_name, function_name, *options = LOADERS[data.dataset]
    loader = getattr(importlib.import_module(module_name), function_name)
    train, test, info = loader(**(options[0] if options else {}))
    return train.head(data.train_limit), test.head(data.test_limit), info


LOADERS.update(
    {
        "nmnist_subset": ("snnbp.data.nmnist", "load_nmnist"),
        "nmnist_simulated": ("snnbp.data.nmnist", "load_nmnist_simulated"),
        "emnist_balanced": ("snnbp.data.emnist", "load_emnist"),
        "emnist_bymerge_resplit": ("snnbp.data.emnist", "load_emnist_bymerge_resplit"),
        "emnist_mnist_resplit": ("snnbp.data.emnist", "load_emnist_mnist_resplit"),
        "fsdd": ("snnbp.data.speech", "load_fsdd"),
        "letters_synthetic": ("snnbp.data.speech", "load_synthetic_letters"),
        "ti46_ti_alpha": ("snnbp.data.speech", "load_ti46"),
        "caltech_face_motor": ("snnbp.data.caltech", "load_caltech_face_motor"),
        "caltech_face_motor_pool4": ("snnbp.data.caltech", "load_caltech_face_motor", {"pool": 4}),
    }
)
