"""Caltech-101 faces vs motorbikes in the split of Kheradpisheh et al. (2018, SDNN).

Layout (``<data_root>/caltech_face_motor``, from npvoid/SDNN_python)::

    {LearningSet,TrainingSet,TestingSet}/{Face,Motor}/*.jpg

LearningSet (237 + 237) and TestingSet (198 + 198) are disjoint; TrainingSet (200 + 200) is a
subset of LearningSet. SDNN learned its STDP features on LearningSet and fitted its SVM readout
on TrainingSet. A network trained end to end by backpropagation plays both roles, so the
training split here is **LearningSet** by default (the largest set disjoint from the test set);
``train_set="TrainingSet"`` gives SDNN's readout set. Labels: 0 = Face, 1 = Motor.

Images are read with Pillow, converted to grayscale and resized to 160 x 250 (height x width;
SDNN's size) with Lanczos filtering; :func:`load_caltech_face_motor` then applies the DoG ON/OFF
front end and the latency code of :mod:`snnbp.encoding.image`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from snnbp.data.base import DatasetInfo, LabelledSplit, MissingDatasetError, check_labels
from snnbp.encoding.image import DOG_THRESHOLD, IMAGE_SIZE, dog_responses, first_spike_pooling, response_latencies
from snnbp.paths import data_root

CLASSES = ("Face", "Motor")
SPLITS = ("LearningSet", "TrainingSet", "TestingSet")
T_MAX_MS = 100.0


def default_folder() -> Path:
    """``<data_root>/caltech_face_motor``."""
    return data_root() / "caltech_face_motor"


def list_images(folder: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Sorted JPEGs of ``folder/split/{Face,Motor}`` and labels (0 face, 1 motorbike).

    Raises:
        MissingDatasetError: naming the folder and where the images come from.
    """
    files, labels = [], []
    for label, name in enumerate(CLASSES):
        found = sorted((folder / split / name).glob("*.jpg"))
        files += found
        labels += [label] * len(found)
    if not files:
        raise MissingDatasetError(
            f"Caltech face/motorbike images not found in {folder / split} (expected {split}/Face/*.jpg and "
            f"{split}/Motor/*.jpg, the layout of github.com/npvoid/SDNN_python datasets/); point SNNBP_DATA_ROOT at "
            f"the folder holding caltech_face_motor/"
        )
    return files, np.asarray(labels, dtype=np.int64)


def read_images(files: list[Path], size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """Grayscale images resized to ``size`` = (height, width) with Lanczos resampling.

    Shape:
        - Output: ``[len(files), height, width]`` uint8.
    """
    out = np.zeros((len(files), *size), dtype=np.uint8)
    for i, path in enumerate(files):
        with Image.open(path) as image:
            out[i] = np.asarray(image.convert("L").resize((size[1], size[0]), Image.Resampling.LANCZOS))
    return out


def load_caltech_images(
    folder: Path | None = None, *, train_set: str = "LearningSet", size: tuple[int, int] = IMAGE_SIZE
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Grayscale uint8 images ``[N, H, W]`` (kind "image"): ``train_set`` and TestingSet.

    Raises:
        MissingDatasetError: a split folder holds no images.
        DataIntegrityError: an image's class (its folder) is not one of the dataset's classes, naming the file.
    """
    folder = Path(folder) if folder is not None else default_folder()
    info = DatasetInfo(
        name="Caltech-101 face/motorbike (SDNN split)",
        key="caltech_face_motor_images",
        num_classes=2,
        input_shape=size,
        kind="image",
    )
    listed = [list_images(folder, split) for split in (train_set, "TestingSet")]
    for files, labels in listed:
        check_labels(labels, info.num_classes, [str(f) for f in files])
    splits = [
        LabelledSplit(torch.from_numpy(read_images(files, size)), torch.from_numpy(labels)) for files, labels in listed
    ]
    return splits[0], splits[1], info


def load_caltech_face_motor(
    folder: Path | None = None,
    *,
    train_set: str = "LearningSet",
    size: tuple[int, int] = IMAGE_SIZE,
    t_max: float = T_MAX_MS,
    threshold: float = DOG_THRESHOLD,
    pool: int = 1,
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """DoG ON/OFF latency-coded images: spike times ``[N, 2*H*W]`` in ms, ``inf`` = silent.

    Input index ``c * H * W + h * W + w`` (channel 0 = ON-centre, 1 = OFF-centre). Kind
    ``"spike_times"``. ``pool`` > 1: each map keeps the earliest spike of every ``pool x pool``
    window (:func:`snnbp.encoding.image.first_spike_pooling`), ``2 * (H // pool) * (W // pool)``
    inputs, under the key ``caltech_face_motor_pool<pool>``.
    """
    train, test, _ = load_caltech_images(folder, train_set=train_set, size=size)
    map_shape = (2, *size)

    def encode(split: LabelledSplit) -> LabelledSplit:
        times = response_latencies(dog_responses(split.inputs.numpy()), t_max, threshold)
        return LabelledSplit(first_spike_pooling(times, map_shape, pool), split.labels)

    pooled = (size[0] // pool, size[1] // pool)
    info = DatasetInfo(
        name="Caltech-101 face/motorbike (SDNN split, DoG latency code"
        + (f", {pool}x{pool} first-spike pooling)" if pool > 1 else ")"),
        key="caltech_face_motor" + (f"_pool{pool}" if pool > 1 else ""),
        num_classes=2,
        input_shape=(2 * pooled[0] * pooled[1],),
        kind="spike_times",
    )
    return encode(train), encode(test), info
