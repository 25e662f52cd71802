"""Corrupt data is caught when it is loaded or fetched, and every data error names the file."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from fakes import write_nmnist_tree
from snnbp.data import fetch as fetch_module
from snnbp.data import mnist as mnist_module
from snnbp.data.base import DataIntegrityError
from snnbp.data.idx import read_idx, read_idx_bytes, write_idx
from snnbp.data.nmnist import default_folder, load_nmnist, verify_recordings


@pytest.fixture()
def fake_mnist(tmp_path, monkeypatch):
    """Small IDX files in the data folder's layout, with their sha256 as the expected ones."""
    monkeypatch.setenv("SNNBP_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), folder / f"{prefix}-images-idx3-ubyte")
        write_idx(rng.integers(0, 10, n, dtype=np.uint8), folder / f"{prefix}-labels-idx1-ubyte")
    files = tuple(
        fetch_module.IdxFile(f.name, hashlib.sha256((folder / f.name).read_bytes()).hexdigest())
        for f in fetch_module.MNIST_FILES
    )
    monkeypatch.setitem(fetch_module.FILES, "mnist", files)
    return folder


def _flip_a_byte_keeping_the_size(path, offset=-1):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_same_size_corrupt_file_is_caught_at_load_time(fake_mnist):
    train, _, _ = mnist_module.load_mnist()
    assert len(train) == 12
    _flip_a_byte_keeping_the_size(fake_mnist / "t10k-images-idx3-ubyte")
    with pytest.raises(DataIntegrityError, match=r"t10k-images-idx3-ubyte: sha256 \w+ does not match the expected"):
        mnist_module.load_mnist()


def test_verified_files_are_not_hashed_again_until_they_change(fake_mnist, monkeypatch):
    mnist_module.load_mnist()
    calls = []
    real = fetch_module.sha256_path
    monkeypatch.setattr(fetch_module, "sha256_path", lambda path: calls.append(path.name) or real(path))
    mnist_module.load_mnist()
    assert calls == []
    os.utime(fake_mnist / "train-labels-idx1-ubyte", ns=(1, 1))
    mnist_module.load_mnist()
    assert calls == ["train-labels-idx1-ubyte"]


def test_fetch_verifies_files_already_in_place(fake_mnist):
    assert fetch_module.fetch("mnist", allow_download=False) == fake_mnist
    path = fake_mnist / "train-images-idx3-ubyte"
    stat = path.stat()
    _flip_a_byte_keeping_the_size(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time: only a full hash sees it
    mnist_module.load_mnist()  # the cheap check at load time trusts size + time
    with pytest.raises(DataIntegrityError, match="train-images-idx3-ubyte: sha256 .* delete it and fetch it again"):
        fetch_module.fetch("mnist", allow_download=False)


def test_fetch_of_an_unknown_dataset_is_refused():
    with pytest.raises(KeyError, match="unknown dataset 'cifar'"):
        fetch_module.main(["cifar"])


def test_labels_out_of_range_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 4), ("t10k", 3)):
        write_idx(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), tmp_path / f"{prefix}-images-idx3-ubyte")
    write_idx(np.array([1, 2, 3, 4], dtype=np.uint8), tmp_path / "train-labels-idx1-ubyte")
    write_idx(np.array([0, 12, 1], dtype=np.uint8), tmp_path / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataIntegrityError, match=r"t10k-labels-idx1-ubyte: label 12 at index 1 is outside 0..9"):
        mnist_module.load_idx_dataset("mnist", tmp_path)


def test_images_of_the_wrong_shape_name_the_file(tmp_path):
    for prefix in ("train", "t10k"):
        write_idx(np.zeros((2, 14, 14), dtype=np.uint8), tmp_path / f"{prefix}-images-idx3-ubyte")
        write_idx(np.zeros(2, dtype=np.uint8), tmp_path / f"{prefix}-labels-idx1-ubyte")
    with pytest.raises(DataIntegrityError, match=r"train-images-idx3-ubyte: expected uint8 images \[N, 28, 28\]"):
        mnist_module.load_idx_dataset("mnist", tmp_path)


def test_damaged_gzip_and_short_headers_name_the_file(tmp_path):
    path = tmp_path / "x-idx1-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataIntegrityError, match="x-idx1-ubyte.gz: damaged gzip file"):
        read_idx(path)
    with pytest.raises(DataIntegrityError, match="src: the IDX header announces 3 dimensions but the file ends"):
        read_idx_bytes(bytes([0, 0, 8, 3, 0, 0]), "src")


def _sums(folder):
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}"
        for p in sorted(folder.glob("*/*/*.bin"))
    ]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def test_nmnist_recordings_are_checked_against_sha256sums(tmp_path):
    written = write_nmnist_tree(tmp_path, {"Train": 1, "Test": 1})
    _sums(tmp_path)
    assert verify_recordings(tmp_path) == 20
    train, test, _ = load_nmnist(tmp_path)
    assert (len(train), len(test)) == (10, 10)
    victim = sorted(written)[3]
    victim.write_bytes(victim.read_bytes()[:-5])  # truncated by one event: still a valid length
    with pytest.raises(DataIntegrityError, match=f"{victim}: sha256 .* does not match .* in .*SHA256SUMS"):
        load_nmnist(tmp_path)


def test_nmnist_files_missing_from_or_absent_in_sha256sums_are_refused(tmp_path):
    written = write_nmnist_tree(tmp_path, {"Train": 1, "Test": 1})
    _sums(tmp_path)
    extra = tmp_path / "Train" / "3" / "99999.bin"
    extra.write_bytes(b"\x00" * 10)
    with pytest.raises(DataIntegrityError, match=f"{extra}: a recording not listed in"):
        verify_recordings(tmp_path)
    extra.unlink()
    gone = sorted(written)[0]
    gone.unlink()
    with pytest.raises(DataIntegrityError, match=f"{gone}: listed in .* but missing"):
        verify_recordings(tmp_path)
    (tmp_path / "SHA256SUMS").write_text("not a checksum line\n")
    with pytest.raises(DataIntegrityError, match="SHA256SUMS: line 1 is not"):
        verify_recordings(tmp_path)


def test_an_odd_length_recording_names_its_file(tmp_path):
    written = write_nmnist_tree(tmp_path, {"Train": 1, "Test": 1})
    victim = sorted(written)[2]
    victim.write_bytes(victim.read_bytes() + b"\x01\x02")
    with pytest.raises(DataIntegrityError, match=f"{victim}: N-MNIST event data must be a multiple of 5 bytes"):
        load_nmnist(tmp_path)


@pytest.mark.skipif(not (default_folder() / "SHA256SUMS").is_file(), reason="real N-MNIST subset not present")
def test_the_real_nmnist_subset_matches_its_sha256sums():
    assert verify_recordings(default_folder()) >= 1100
