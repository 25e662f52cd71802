"""Display names of every dataset's classes, by the params file's ``data.dataset`` key.

Figures label their classes with these (confusion matrices, image grids, label counts) instead of
indices. Pure data; nothing here reads files.
"""

from __future__ import annotations

DIGITS = tuple("0123456789")
LETTERS = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
FASHION_MNIST = (
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
"""Fashion-MNIST's ten labels in label order (Xiao, Rasul & Vollgraf 2017)."""
EMNIST_BYMERGE = DIGITS + LETTERS + tuple("abdefghnqrt")
"""EMNIST ByMerge and Balanced (47 classes): digits, upper-case letters, then the eleven lower-case
letters whose shape differs from their capital (the files' mapping, in label order)."""
CALTECH_FACE_MOTOR = ("face", "motorbike")

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": DIGITS,
    "fashion_mnist": FASHION_MNIST,
    "nmnist": DIGITS,
    "nmnist_subset": DIGITS,
    "nmnist_simulated": DIGITS,
    "emnist_balanced": EMNIST_BYMERGE,
    "emnist_bymerge": EMNIST_BYMERGE,
    "emnist_bymerge_resplit": EMNIST_BYMERGE,
    "emnist_mnist": DIGITS,
    "emnist_mnist_resplit": DIGITS,
    "emnist_digits": DIGITS,
    "emnist_letters": LETTERS,
    "fsdd": DIGITS,
    "letters_synthetic": LETTERS,
    "ti46_ti_alpha": LETTERS,
    "caltech_face_motor": CALTECH_FACE_MOTOR,
}

FRONT_ENDS = {"caltech_face_motor_pool4": "caltech_face_motor"}
"""Dataset keys that are another front end of a dataset (same samples, classes and test split) ->
that dataset's key."""


def base_dataset(dataset_key: str) -> str:
    """The key of the dataset that ``dataset_key`` is a front end of (itself when it is none)."""
    return FRONT_ENDS.get(dataset_key, dataset_key)


def class_names(dataset_key: str | None, num_classes: int | None = None) -> tuple[str, ...] | None:
    """The class names of dataset ``dataset_key``; None when unknown or when ``num_classes`` disagrees.

    >>> class_names("caltech_face_motor")
    ('face', 'motorbike')
    >>> class_names("letters_synthetic")[:3]
    ('A', 'B', 'C')
    """
    names = CLASS_NAMES.get(base_dataset(dataset_key or ""))
    if names is None or (num_classes is not None and len(names) != num_classes):
        return None
    return names
