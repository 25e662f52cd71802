"""Caltech face/motorbike: SDNN layout on fake JPEGs, DoG latency code, real images when present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakes import write_caltech_tree
from snnbp.data.base import MissingDatasetError
from snnbp.data.caltech import default_folder, list_images, load_caltech_face_motor, load_caltech_images, read_images


def test_fake_tree_images_and_latencies(tmp_path):
    write_caltech_tree(tmp_path, {"LearningSet": 3, "TrainingSet": 2, "TestingSet": 2})
    train, test, info = load_caltech_images(tmp_path, size=(40, 60))
    assert train.inputs.shape == (6, 40, 60) and train.inputs.dtype == torch.uint8
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1] and len(test) == 4
    train2, _, _ = load_caltech_images(tmp_path, train_set="TrainingSet", size=(40, 60))
    assert len(train2) == 4
    spikes, _, info = load_caltech_face_motor(tmp_path, size=(40, 60), t_max=50.0)
    assert spikes.inputs.shape == (6, 2 * 40 * 60) and info.kind == "spike_times" and info.input_shape == (4800,)
    finite = torch.isfinite(spikes.inputs)
    assert finite.any(1).all() and (~finite).any()
    assert spikes.inputs[finite].min() == 0.0 and spikes.inputs[finite].max() <= 50.0


def test_missing_caltech(tmp_path):
    with pytest.raises(MissingDatasetError, match="LearningSet"):
        list_images(tmp_path, "LearningSet")


def test_real_images_few_files():
    folder = default_folder()
    if not (folder / "TestingSet").is_dir():
        pytest.skip(f"Caltech face/motorbike not present in {folder}")
    counts = {
        split: np.bincount(list_images(folder, split)[1]).tolist()
        for split in ("LearningSet", "TrainingSet", "TestingSet")
    }
    assert counts == {"LearningSet": [237, 237], "TrainingSet": [200, 200], "TestingSet": [198, 198]}
    files, labels = list_images(folder, "TestingSet")
    pick = [0, len(files) - 1]
    images = read_images([files[i] for i in pick])
    assert images.shape == (2, 160, 250) and labels[pick].tolist() == [0, 1] and images.std() > 10
