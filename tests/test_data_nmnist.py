"""N-MNIST: real-layout loader on fake files, the saccade simulator against a slow reference, real data when present."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter, map_coordinates

from fakes import write_nmnist_tree
from snnbp.data.base import LabelledSplit, MissingDatasetError
from snnbp.data.nmnist import (
    DIGIT_ORIGIN,
    SaccadeSimParams,
    default_folder,
    list_recordings,
    load_nmnist,
    load_nmnist_simulated,
    recordings_to_rasters,
    simulate_nmnist,
    simulate_saccade_events,
)
from snnbp.encoding.events import SparseRasters, raster_indices, saccade_displacement
from snnbp.paths import data_dir
from snnbp.seeding import derive_seed


def test_load_fake_tree(tmp_path):
    written = write_nmnist_tree(tmp_path, {"Train": 2, "Test": 1})
    train, test, info = load_nmnist(tmp_path)
    assert (len(train), len(test)) == (20, 10)
    assert info.name == "N-MNIST (real, 30-sample subset)" and info.is_standin and info.input_shape == (540, 2312)
    assert train.labels.tolist() == [d for d in range(10) for _ in range(2)]
    first = sorted(p for p in written if p.parts[-3] == "Train")[0]
    ev = written[first]
    _, flat = raster_indices(ev["x"], ev["y"], ev["p"], ev["t"])
    expected = np.zeros(540 * 2312, dtype=bool)
    expected[flat] = True
    np.testing.assert_array_equal(train.inputs[0].numpy().ravel(), expected)
    assert train.inputs[torch.tensor([0, 1])].shape == (2, 540, 2312)


def test_missing_folder_names_path(tmp_path):
    with pytest.raises(MissingDatasetError, match=str(tmp_path / "nope" / "Train")):
        load_nmnist(tmp_path / "nope")


def _digits(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        r, c = rng.integers(6, 14, 2)
        img[i, r : r + 10, c : c + 4] = 255
        img[i, r : r + 3, c : c + 10] = 200
    return img


def test_simulation_deterministic_and_chunk_invariant():
    images = _digits(5)
    a = simulate_nmnist(images, seed=1, chunk=5)
    b = simulate_nmnist(images, seed=1, chunk=2)
    c = simulate_nmnist(images, seed=2, chunk=5)
    np.testing.assert_array_equal(a.flat, b.flat)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    assert not np.array_equal(a.flat, c.flat)
    assert a.shape == (5, 540, 2312) and (a.spike_counts() > 100).all()
    blank = simulate_nmnist(np.zeros((2, 28, 28), dtype=np.uint8), seed=0)
    assert blank.spike_counts().tolist() == [0, 0]


def test_polarity_bit_one_on_trailing_edge():
    """First saccade moves the digit by +x, +y: bit-1 (luminance decrease) events trail."""
    sample, x, y, p, t = simulate_saccade_events(_digits(3), SaccadeSimParams(), seed=0)
    first = t <= 105_000
    assert x[first & (p == 1)].mean() < x[first & (p == 0)].mean()
    assert y[first & (p == 1)].mean() < y[first & (p == 0)].mean()


def test_simulator_matches_per_pixel_reference():
    """Scalar per-pixel detector with scipy's bilinear interpolation, for a few pixels."""
    params = SaccadeSimParams(refractory_ms=1.5)
    image = _digits(1, seed=3)
    sample, x, y, p, t = simulate_saccade_events(image, params, seed=7, first_index=4)
    got = {(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(x, y, p, t)}
    rng = np.random.default_rng(derive_seed(7, "nmnist-simulated/4"))
    z, u = rng.standard_normal(1156), rng.uniform(-0.5, 0.5, 1156)
    lum = gaussian_filter(image[0].astype(np.float64) / 255.0, params.blur_px, mode="constant", truncate=3.0)
    bins = np.arange(526)
    dx, dy = saccade_displacement(bins * 600.0, smooth=True)
    checked = 0
    for py, px in [(12, 12), (15, 9), (20, 14), (9, 17), (17, 20), (25, 25)]:
        k = py * 34 + px
        theta = max(params.threshold * (1 + params.mismatch * z[k]), 1e-3)
        rows, cols = py - DIGIT_ORIGIN[0] - dy, px - DIGIT_ORIGIN[1] - dx
        trace = np.log(map_coordinates(lum, [rows, cols], order=1, mode="constant", cval=0.0) + params.dark_level)
        ref, last, expected = trace[0] + u[k] * theta, -np.inf, set()
        for b in range(1, 526):
            steps = np.trunc((trace[b] - ref) / theta)
            if steps != 0 and (b - last) > params.refractory_ms / 0.6:
                expected.add((px, py, int(steps < 0), b * 600))
                ref, last = ref + steps * theta, b
        mine = {e for e in got if e[0] == px and e[1] == py}
        assert mine == expected
        checked += len(expected)
    assert checked > 10


def test_simulated_loader_caches(tmp_path):
    images = torch.from_numpy(_digits(4))
    mnist = (LabelledSplit(images[:3], torch.tensor([0, 1, 2])), LabelledSplit(images[3:], torch.tensor([3])))
    train, test, info = load_nmnist_simulated(mnist, seed=0, cache_dir=tmp_path)
    assert info.name == "N-MNIST (simulated from MNIST)" and info.is_standin
    assert len(list(tmp_path.glob("*.npz"))) == 2
    again, _, _ = load_nmnist_simulated(mnist, seed=0, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.inputs.flat, train.inputs.flat)
    assert train.labels.tolist() == [0, 1, 2] and test.labels.tolist() == [3]


def _real_files(count: int):
    folder = default_folder()
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"real N-MNIST subset not present in {folder}")
    rows = list(csv.DictReader(open(folder / "labels.csv")))
    step = len(rows) // count
    return folder, rows[::step][:count]


def test_real_subset_layout_and_counts():
    folder, _ = _real_files(1)
    train_files, train_labels = list_recordings(folder, "Train")
    test_files, _ = list_recordings(folder, "Test")
    assert (len(train_files), len(test_files)) == (1000, 100)
    assert np.bincount(train_labels).tolist() == [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
    rasters = recordings_to_rasters(train_files[:5])
    assert rasters.shape == (5, 540, 2312) and (rasters.spike_counts() > 500).all()


def test_real_vs_simulated_spike_counts():
    """Simulating the very MNIST digits of real recordings gives similar spike counts."""
    folder, rows = _real_files(24)
    mnist = data_dir() / "mnist"
    if not (mnist / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"MNIST not present in {mnist}")
    from snnbp.data.idx import read_idx

    images = {"Train": read_idx(mnist / "train-images-idx3-ubyte"), "Test": read_idx(mnist / "t10k-images-idx3-ubyte")}
    digits = np.stack([images[r["split"]][int(r["mnist_index_1based"]) - 1] for r in rows])
    real = recordings_to_rasters([folder / r["path"] for r in rows]).spike_counts()
    sim = simulate_nmnist(digits, seed=0).spike_counts()
    assert 0.8 < sim.mean() / real.mean() < 1.25
    assert np.corrcoef(sim, real)[0, 1] > 0.6


def test_sparse_rasters_are_a_valid_split_input():
    rasters = SparseRasters.from_dense(np.zeros((3, 540, 2312), dtype=bool))
    split = LabelledSplit(rasters, torch.zeros(3, dtype=torch.int64))
    assert len(split.head(2)) == 2 and split.head(2).inputs.shape == (2, 540, 2312)
