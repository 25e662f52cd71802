"""The IDX reader on small fake files (raw and gzip), and its errors."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from snnbp.data.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip(tmp_path, name):
    array = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    write_idx(array, tmp_path / name)
    loaded = read_idx(tmp_path / name)
    assert loaded.dtype == np.uint8 and loaded.shape == (7, 28, 28)
    np.testing.assert_array_equal(loaded, array)


def test_labels_file_written_by_hand(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 0, 9]))
    np.testing.assert_array_equal(read_idx(path), [5, 0, 9])


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]))
    with pytest.raises(ValueError, match="truncated or corrupt") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_not_idx_is_named(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"PK\x03\x04 zip")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)
