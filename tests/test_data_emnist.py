"""EMNIST: official gz IDX files (transposed) and the packed WebP test sets, on fake files and real ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import write_emnist_official, write_emnist_packed
from snnbp.data.base import MissingDatasetError
from snnbp.data.emnist import (
    decode_sheet,
    load_emnist,
    load_emnist_bymerge_resplit,
    load_emnist_mnist_test,
    load_packed_resplit,
    packed_folder,
    read_emnist_packed,
    sheet_range,
    stratified_split,
)


def _upright(n: int, seed: int) -> np.ndarray:
    """Asymmetric images (a vertical bar at a random column), so a missing transpose shows."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 28, 28), dtype=np.uint8)
    for i, col in enumerate(rng.integers(2, 10, n)):
        img[i, 4:24, col] = 255
    return img


def test_official_gz_files_are_transposed_back(tmp_path):
    upright = {"train": _upright(6, 0), "test": _upright(3, 1)}
    labels = {"train": np.arange(6, dtype=np.uint8), "test": np.array([46, 0, 5], dtype=np.uint8)}
    write_emnist_official(tmp_path, "balanced", upright, labels)
    train, test, info = load_emnist("balanced", tmp_path)
    np.testing.assert_array_equal(train.inputs.numpy(), upright["train"])
    np.testing.assert_array_equal(test.labels.numpy(), [46, 0, 5])
    assert info.name == "EMNIST-Balanced" and info.num_classes == 47 and not info.is_standin


def test_letters_labels_shifted_to_zero(tmp_path):
    upright = {"train": _upright(2, 0), "test": _upright(2, 1)}
    labels = {"train": np.array([1, 26], dtype=np.uint8), "test": np.array([2, 3], dtype=np.uint8)}
    write_emnist_official(tmp_path, "letters", upright, labels)
    train, _, info = load_emnist("letters", tmp_path)
    assert train.labels.tolist() == [0, 25] and info.num_classes == 26


def test_missing_official_files(tmp_path):
    with pytest.raises(MissingDatasetError, match="emnist-balanced-train-images-idx3-ubyte.gz"):
        load_emnist("balanced", tmp_path)


def test_packed_sheets_roundtrip_and_resplit(tmp_path):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (23, 28, 28), dtype=np.uint8)
    labels = np.array([0] * 10 + [1] * 8 + [2] * 5)
    write_emnist_packed(tmp_path / "emnist-bymerge", images, labels, classes="0AB", per_sheet=10)
    data, classes = read_emnist_packed(tmp_path / "emnist-bymerge")
    np.testing.assert_array_equal(data.inputs.numpy(), images)
    assert classes == ["0", "A", "B"]
    train, test, info = load_emnist_bymerge_resplit(tmp_path)
    assert info.name == "EMNIST-ByMerge-test (re-split)" and info.is_standin and info.num_classes == 3
    assert np.bincount(train.labels.numpy()).tolist() == [8, 6, 4]
    assert np.bincount(test.labels.numpy()).tolist() == [2, 2, 1]
    again, _, _ = load_emnist_bymerge_resplit(tmp_path)
    np.testing.assert_array_equal(again.inputs.numpy(), train.inputs.numpy())


def test_stratified_split_is_a_partition():
    labels = np.random.default_rng(3).integers(0, 5, 200)
    tr, te = stratified_split(labels, 0.8, seed=0)
    assert np.intersect1d(tr, te).size == 0 and np.union1d(tr, te).size == 200
    tr2, _ = stratified_split(labels, 0.8, seed=1)
    assert not np.array_equal(tr, tr2)


def test_missing_packed(tmp_path):
    with pytest.raises(MissingDatasetError, match="test.json"):
        load_packed_resplit("emnist-mnist", "x", "x", tmp_path)


def test_real_emnist_mnist_test_set():
    if not (packed_folder() / "emnist-mnist" / "test.json").is_file():
        pytest.skip(f"packed EMNIST not present in {packed_folder()}")
    data = load_emnist_mnist_test()
    assert data.inputs.shape == (10000, 28, 28)
    assert np.bincount(data.labels.numpy()).tolist() == [1000] * 10
    # upright: a "1" is a vertical stroke, more ink spread over rows than over columns
    ones = data.inputs[data.labels == 1].float().mean(0)
    assert (ones.sum(1) > 0.1 * ones.sum(1).max()).sum() > (ones.sum(0) > 0.1 * ones.sum(0).max()).sum()


def test_real_bymerge_labels_and_one_sheet():
    folder = packed_folder() / "emnist-bymerge"
    if not (folder / "test.json").is_file():
        pytest.skip(f"packed EMNIST not present in {packed_folder()}")
    meta = json.loads((folder / "test.json").read_text())
    labels = np.asarray(meta["id"])
    assert labels.size == 116323 and len(meta["mapping"]) == 47
    train, test = stratified_split(labels, 0.8, seed=0)
    assert abs(train.size / labels.size - 0.8) < 0.001
    sheet = folder / "X_test_112903_to_116322.webp"
    first, last = sheet_range(sheet)
    tiles = decode_sheet(sheet, last - first + 1)
    assert tiles.shape == (3420, 28, 28) and tiles.reshape(3420, -1).max(1).min() > 0
