"""Caltech face/motorbike: SDNN layout on fake JPEGs, DoG latency code, real images when present."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fakes import write_caltech_tree
from snnbp.config import DataParams
from snnbp.data.base import MissingDatasetError
from snnbp.data.caltech import default_folder, list_images, load_caltech_face_motor, load_caltech_images, read_images
from snnbp.datasets import LOADERS
from snnbp.encoding.image import first_spike_pooling


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


def loop_first_spike_pooling(times, map_shape, size):
    """The earliest time of each window by explicit loops (``inf`` when the window is silent)."""
    channels, height, width = map_shape
    out = []
    for sample in times.tolist():
        pooled = []
        for c in range(channels):
            for h in range(height // size):
                for w in range(width // size):
                    window = [
                        sample[c * height * width + (size * h + a) * width + size * w + b]
                        for a in range(size)
                        for b in range(size)
                    ]
                    pooled.append(min(window))
        out.append(pooled)
    return torch.tensor(out)


def test_first_spike_pooling_matches_loops_with_silent_windows_and_dropped_edges():
    generator = torch.Generator().manual_seed(0)
    times = torch.rand(3, 2 * 9 * 11, generator=generator) * 100
    times[torch.rand(times.shape, generator=generator) < 0.7] = math.inf
    times[0, :44] = math.inf  # the first four rows of map 0: silent windows
    pooled = first_spike_pooling(times, (2, 9, 11), 4)
    assert pooled.shape == (3, 2 * 2 * 2)
    assert torch.equal(pooled, loop_first_spike_pooling(times, (2, 9, 11), 4))
    assert torch.isinf(pooled).any() and torch.isfinite(pooled).any()
    assert torch.equal(first_spike_pooling(times, (2, 9, 11), 1), times)


def test_pooled_front_end_keeps_the_earliest_spike_of_each_window(tmp_path):
    write_caltech_tree(tmp_path, {"LearningSet": 2, "TrainingSet": 1, "TestingSet": 1})
    full, _, _ = load_caltech_face_motor(tmp_path, size=(40, 60))
    pooled, test, info = load_caltech_face_motor(tmp_path, size=(40, 60), pool=4)
    assert info.key == "caltech_face_motor_pool4" and "4x4 first-spike pooling" in info.name
    assert info.input_shape == (2 * 10 * 15,) and pooled.inputs.shape == (4, 300) and len(test) == 2
    assert torch.equal(pooled.inputs, loop_first_spike_pooling(full.inputs, (2, 40, 60), 4))
    assert torch.equal(pooled.labels, full.labels)
    assert LOADERS["caltech_face_motor_pool4"] == ("snnbp.data.caltech", "load_caltech_face_motor", {"pool": 4})
    assert DataParams("caltech_face_motor_pool4").dataset in LOADERS


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
