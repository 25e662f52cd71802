"""MNIST / Fashion-MNIST loading, sha256 verification and the missing-dataset error."""

from __future__ import annotations

import numpy as np
import pytest

from snnbp.config import DataParams
from snnbp.data import fetch as fetch_module
from snnbp.data.base import MissingDatasetError
from snnbp.data.idx import write_idx
from snnbp.data.mnist import load_idx_dataset
from snnbp.datasets import load_dataset


def test_missing_dataset_names_folder_and_command(tmp_path):
    with pytest.raises(MissingDatasetError) as error:
        load_idx_dataset("mnist", tmp_path / "nowhere")
    assert "nowhere" in str(error.value) and "make data" in str(error.value)


def test_loads_fake_files_in_the_real_layout(tmp_path):
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 6), ("t10k", 3)):
        write_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), tmp_path / f"{prefix}-images-idx3-ubyte")
        write_idx(rng.integers(0, 10, n, dtype=np.uint8), tmp_path / f"{prefix}-labels-idx1-ubyte")
    train, test, info = load_idx_dataset("fashion_mnist", tmp_path)
    assert len(train) == 6 and len(test) == 3 and info.name == "Fashion-MNIST"
    assert train.inputs.shape == (6, 28, 28) and str(train.labels.dtype) == "torch.int64"


def test_fetch_rejects_a_file_with_the_wrong_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBP_DATA_DIR", str(tmp_path / "data"))
    source = tmp_path / "registry"
    source.mkdir()
    (source / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    monkeypatch.setattr(fetch_module, "FASHION_MNIST_DEBIAN_DIR", source)
    with pytest.raises(ValueError, match="does not match the expected"):
        fetch_module.fetch("fashion_mnist", allow_download=False)
    assert not (tmp_path / "data" / "fashion_mnist" / "train-images-idx3-ubyte").exists()


def test_unknown_dataset_key_lists_the_known_ones():
    with pytest.raises(KeyError, match="known datasets"):
        load_dataset(DataParams(dataset="cifar100"))


@pytest.mark.skipif(not fetch_module.is_complete("mnist"), reason="MNIST not fetched (make data)")
def test_real_mnist_is_full_size():
    train, test, info = load_dataset(DataParams(dataset="mnist"))
    assert (len(train), len(test)) == (60000, 10000)
    assert train.labels.bincount().tolist()[:3] == [5923, 6742, 5958]
