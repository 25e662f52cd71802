"""EMNIST (Cohen, Afshar, Tapson, van Schaik 2017): the official gzip IDX files, and the packed test sets.

Official files (NIST's ``gzip.zip``, members ``gzip/emnist-<split>-...``), placed in
``<data_dir>/emnist``::

    emnist-<split>-train-images-idx3-ubyte.gz   emnist-<split>-train-labels-idx1-ubyte.gz
    emnist-<split>-test-images-idx3-ubyte.gz    emnist-<split>-test-labels-idx1-ubyte.gz

``<split>`` is one of balanced (47 classes, the HM2-BP paper's), byclass, bymerge, digits,
letters, mnist. The raw images are stored transposed (column-major); :func:`read_emnist_images`
transposes them back so that digits are upright, as in MNIST. Labels are 0-based except in the
letters split (1..26), which is shifted to 0..25.

Packed test sets (``<data_root>/emnist_packed_test``): the EMNIST-MNIST and EMNIST-ByMerge
*test* splits as lossless WebP sprite sheets of upright 28 x 28 tiles (row-major, a sheet
``X_test_A_to_B.webp`` holds images A..B) with ``test.json`` (``id``: label per image,
``mapping``: ASCII code per label). With no training split available, :func:`load_emnist_bymerge_resplit`
splits the 116,323 ByMerge test images into a stratified 80/20 train/test re-split.
"""

from __future__ import annotations

import json
import re
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from snnbp.data.base import DatasetInfo, LabelledSplit, MissingDatasetError, check_labels
from snnbp.data.idx import read_idx
from snnbp.io import atomic_write_bytes
from snnbp.paths import data_dir, data_root
from snnbp.seeding import numpy_generator

OFFICIAL_ZIP_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
NUM_CLASSES = {"balanced": 47, "byclass": 62, "bymerge": 47, "digits": 10, "letters": 26, "mnist": 10}
SIDE = 28
RESPLIT_TRAIN_FRACTION = 0.8
RESPLIT_SEED = 0


def default_folder() -> Path:
    """``<data_dir>/emnist``: where the official gzip IDX files go."""
    return data_dir() / "emnist"


def packed_folder() -> Path:
    """``<data_root>/emnist_packed_test``: the packed test splits."""
    return data_root() / "emnist_packed_test"


def official_file(folder: Path, split: str, part: str, kind: str) -> Path:
    """``folder/emnist-<split>-<part>-<kind>-idx<d>-ubyte.gz`` (kind: images or labels)."""
    return folder / f"emnist-{split}-{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"


def download_emnist(folder: Path | None = None, splits: tuple[str, ...] = ("balanced",)) -> Path:
    """Download NIST's ``gzip.zip`` (about 560 MB) and extract ``splits`` into ``folder`` (needs internet; not used in tests)."""
    folder = Path(folder) if folder is not None else default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "gzip.zip"
        urllib.request.urlretrieve(OFFICIAL_ZIP_URL, archive)
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if any(Path(member).name.startswith(f"emnist-{s}-") for s in splits):
                    atomic_write_bytes(folder / Path(member).name, zf.read(member))
    return folder


def read_emnist_images(path: Path) -> np.ndarray:
    """Official EMNIST images, transposed back to upright: ``out[n, r, c] = raw[n, c, r]``.

    Shape:
        - Output: ``[N, 28, 28]`` uint8.
    """
    return np.ascontiguousarray(read_idx(path).transpose(0, 2, 1))


def load_emnist(
    split: str = "balanced", folder: Path | None = None
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """An official EMNIST split: uint8 images ``[N, 28, 28]`` (upright) and int64 labels from 0.

    Raises:
        MissingDatasetError: naming the files expected and how to get them.
        DataIntegrityError: a label outside the split's classes (Letters: 1..26 as stored), naming the file.
    """
    folder = Path(folder) if folder is not None else default_folder()
    files = [official_file(folder, split, part, kind) for part in ("train", "test") for kind in ("images", "labels")]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        raise MissingDatasetError(
            f"EMNIST-{split} is missing from {folder} ({', '.join(absent)}); put NIST's gzip files there "
            f"(https://www.nist.gov/itl/products-and-services/emnist-dataset, archive gzip.zip) or run "
            f"python -c 'from snnbp.data.emnist import download_emnist; download_emnist()'"
        )
    offset = 1 if split == "letters" else 0
    splits = []
    for part in ("train", "test"):
        images = read_emnist_images(official_file(folder, split, part, "images"))
        labels_path = official_file(folder, split, part, "labels")
        labels = read_idx(labels_path).astype(np.int64)
        check_labels(labels, NUM_CLASSES[split], str(labels_path), first=offset)
        splits.append(LabelledSplit(torch.from_numpy(images), torch.from_numpy(labels - offset)))
    info = DatasetInfo(
        name=f"EMNIST-{split.capitalize()}",
        key=f"emnist_{split}",
        num_classes=NUM_CLASSES[split],
        input_shape=(SIDE, SIDE),
        kind="image",
    )
    return splits[0], splits[1], info


def sheet_range(path: Path) -> tuple[int, int]:
    """``(first, last)`` image indices of a sheet named ``X_test_<first>_to_<last>.webp``."""
    match = re.fullmatch(r"X_\w+?_(\d+)_to_(\d+)\.webp", path.name)
    if match is None:
        raise ValueError(f"{path}: not a sprite-sheet name X_<part>_<first>_to_<last>.webp")
    return int(match.group(1)), int(match.group(2))


def decode_sheet(path: Path, count: int) -> np.ndarray:
    """The first ``count`` 28 x 28 tiles (row-major) of a grey sprite sheet.

    Shape:
        - Output: ``[count, 28, 28]`` uint8.
    """
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"))
    per_row = pixels.shape[1] // SIDE
    tiles = (
        pixels[: (pixels.shape[0] // SIDE) * SIDE, : per_row * SIDE]
        .reshape(-1, SIDE, per_row, SIDE)
        .transpose(0, 2, 1, 3)
    )
    tiles = tiles.reshape(-1, SIDE, SIDE)
    if tiles.shape[0] < count:
        raise ValueError(f"{path}: {tiles.shape[0]} tiles, fewer than the {count} its name promises")
    return np.ascontiguousarray(tiles[:count])


def read_emnist_packed(folder: Path) -> tuple[LabelledSplit, list[str]]:
    """One packed split folder (sheets + ``test.json``): all images, labels and class characters.

    Raises:
        MissingDatasetError: when ``test.json`` or a listed sheet is absent.
        ValueError: when the sheets do not cover exactly the labelled images.
        DataIntegrityError: a label of ``test.json`` outside its ``mapping``'s classes, naming the file.
    """
    meta_path = folder / "test.json"
    if not meta_path.is_file():
        raise MissingDatasetError(
            f"packed EMNIST split missing: {meta_path} (set SNNBP_DATA_ROOT to the folder holding emnist_packed_test/)"
        )
    meta = json.loads(meta_path.read_text())
    labels = np.asarray(meta["id"], dtype=np.int64)
    check_labels(labels, len(meta["mapping"]), str(meta_path))
    images = np.zeros((labels.size, SIDE, SIDE), dtype=np.uint8)
    covered = 0
    for name in meta["files"]:
        path = folder / name
        if not path.is_file():
            raise MissingDatasetError(f"packed EMNIST sheet missing: {path}")
        first, last = sheet_range(path)
        images[first : last + 1] = decode_sheet(path, last - first + 1)
        covered += last - first + 1
    if covered != labels.size:
        raise ValueError(f"{folder}: sheets hold {covered} images but test.json labels {labels.size}")
    classes = [chr(code) for code in meta["mapping"]]
    return LabelledSplit(torch.from_numpy(images), torch.from_numpy(labels)), classes


def stratified_split(labels: np.ndarray, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: per class, a seeded permutation; the first ``round(f n_c)`` train.

    Returns:
        Sorted ``(train_index, test_index)``.
    """
    rng = numpy_generator(seed, "emnist-resplit")
    train = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        train.append(members[: int(round(train_fraction * members.size))])
    train_index = np.sort(np.concatenate(train))
    return train_index, np.setdiff1d(np.arange(labels.size), train_index)


def load_packed_resplit(
    subset: str,
    display: str,
    key: str,
    folder: Path | None = None,
    *,
    train_fraction: float = RESPLIT_TRAIN_FRACTION,
    seed: int = RESPLIT_SEED,
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """A packed EMNIST test set re-split into stratified train/test parts (a stand-in)."""
    folder = Path(folder) if folder is not None else packed_folder()
    data, classes = read_emnist_packed(folder / subset)
    train_index, test_index = stratified_split(data.labels.numpy(), train_fraction, seed)
    pick = lambda idx: LabelledSplit(data.inputs[torch.from_numpy(idx)], data.labels[torch.from_numpy(idx)])  # noqa: E731
    info = DatasetInfo(
        name=display, key=key, num_classes=len(classes), input_shape=(SIDE, SIDE), kind="image", is_standin=True
    )
    return pick(train_index), pick(test_index), info


def load_emnist_bymerge_resplit(
    folder: Path | None = None, *, train_fraction: float = RESPLIT_TRAIN_FRACTION, seed: int = RESPLIT_SEED
):
    """EMNIST-ByMerge test set (116,323 images, 47 classes) re-split 80/20, stratified, seed 0.

    The 47 ByMerge classes are the Balanced classes; the class frequencies are not balanced.
    """
    return load_packed_resplit(
        "emnist-bymerge",
        "EMNIST-ByMerge-test (re-split)",
        "emnist_bymerge_resplit",
        folder,
        train_fraction=train_fraction,
        seed=seed,
    )


def load_emnist_mnist_resplit(
    folder: Path | None = None, *, train_fraction: float = RESPLIT_TRAIN_FRACTION, seed: int = RESPLIT_SEED
):
    """EMNIST-MNIST test set (10,000 digits) re-split 80/20, stratified, seed 0."""
    return load_packed_resplit(
        "emnist-mnist",
        "EMNIST-MNIST-test (re-split)",
        "emnist_mnist_resplit",
        folder,
        train_fraction=train_fraction,
        seed=seed,
    )


def load_emnist_mnist_test(folder: Path | None = None) -> LabelledSplit:
    """The whole EMNIST-MNIST test set (10,000 upright digits, labels 0-9), e.g. to test an MNIST model."""
    folder = Path(folder) if folder is not None else packed_folder()
    return read_emnist_packed(folder / "emnist-mnist")[0]
